"""The registry's tables as the code reads and writes them today (SQLAlchemy Core).

This module describes the *current* schema. It is never used to create tables: databases are
created and upgraded by the ordered steps in `greenshift.registry.migrations`, and a test checks
that the steps produce exactly these tables.

Names are unique case-insensitively but keep their case: each named table is keyed by
`name_lower` and stores `name` as given. Specs and snapshots are SageMaker wire documents (JSON).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

NAME = 64
ARN = 256
ID = 256


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are aware UTC datetimes in Python whatever the backend: SQLite has no time
    zones (stored as naive UTC, which also sorts correctly as text); PostgreSQL uses timestamptz.
    A naive datetime given to the registry is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def Json() -> JSON:  # noqa: N802 - reads like a type in the column lists
    """JSON where Python None is SQL NULL (not the JSON text 'null')."""
    return JSON(none_as_null=True)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("name_lower", String(NAME), primary_key=True),
    Column("name", String(NAME), nullable=False),
    Column("arn", String(ARN), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("spec", Json(), nullable=False),
)

endpoint_configs = Table(
    "endpoint_configs",
    metadata,
    Column("name_lower", String(NAME), primary_key=True),
    Column("name", String(NAME), nullable=False),
    Column("arn", String(ARN), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("spec", Json(), nullable=False),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("name_lower", String(NAME), primary_key=True),
    Column("name", String(NAME), nullable=False),
    Column("arn", String(ARN), nullable=False),
    Column("status", String(32), nullable=False),
    Column("config_name", String(NAME), nullable=False),
    Column("config_snapshot", Json(), nullable=False),
    Column("variants", Json(), nullable=False),
    Column("pending", Json(), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("last_deployment_config", Json(), nullable=True),
    Column("current_deployment_id", String(ID), nullable=True),
    Column("revision", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("deployment_id", String(ID), primary_key=True),
    Column("endpoint", String(NAME), nullable=False),
    Column("endpoint_lower", String(NAME), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("workflow_id", String(ID), nullable=False),
    Column("request", Json(), nullable=False),
    Column("plan", Json(), nullable=True),
    Column("alarms", Json(), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("failure_reason", Text, nullable=True),
    Column("from_config", String(NAME), nullable=True),
    Column("to_config", String(NAME), nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Index("ix_deployments_endpoint", "endpoint_lower", "started_at"),
)

deployment_events = Table(
    "deployment_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(ID), nullable=False),
    Column("endpoint", String(NAME), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("type", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("detail", Json(), nullable=False),
    Column("key", String(ID), nullable=True),
    Column("actor", String(ID), nullable=True),
    Index("ix_deployment_events_deployment", "deployment_id", "seq"),
    Index("ux_deployment_events_key", "key", unique=True),
    sqlite_autoincrement=True,
)

fleets = Table(
    "fleets",
    metadata,
    Column("fleet_id", String(ID), primary_key=True),
    Column("endpoint", String(NAME), nullable=False),
    Column("endpoint_lower", String(NAME), nullable=False),
    Column("deployment_id", String(ID), nullable=False),
    Column("variant", String(NAME), nullable=False),
    Column("config_name", String(NAME), nullable=False),
    Column("model_name", String(NAME), nullable=False),
    Column("instance_type", String(64), nullable=False),
    Column("model_spec", Json(), nullable=False),
    Column("startup_timeout_seconds", Integer, nullable=False),
    Column("model_data_download_timeout_seconds", Integer, nullable=False, server_default="3600"),
    Column("desired_count", Integer, nullable=False),
    Column("retired", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_fleets_endpoint", "endpoint_lower"),
)

instances = Table(
    "instances",
    metadata,
    Column("instance_id", String(ID), primary_key=True),
    Column("fleet_id", String(ID), nullable=False),
    Column("endpoint", String(NAME), nullable=False),
    Column("endpoint_lower", String(NAME), nullable=False),
    Column("variant", String(NAME), nullable=False),
    Column("index", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("state", String(32), nullable=False),
    Column("state_reason", Text, nullable=True),
    Column("restarts", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_instances_fleet", "fleet_id"),
    Index("ix_instances_endpoint", "endpoint_lower"),
)

routing = Table(
    "routing",
    metadata,
    Column("endpoint_lower", String(NAME), primary_key=True),
    Column("endpoint", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("doc", Json(), nullable=False),
    Column("applied_version", Integer, nullable=False),
    # The fence of the last fenced write (RoutingFence): a later write of the same deployment
    # with a lower step is refused.
    Column("fence_deployment", String(ID), nullable=True),
    Column("fence_step", Integer, nullable=True),
)

# One row (id 1): `value` is bumped by every routing, fleet or instance write; `applied` is what
# the router controller last reported.
generation = Table(
    "generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("applied", BigInteger, nullable=False),
)

# Endpoints a rollout group holds while it runs: only that group's deployments may take them.
endpoint_holds = Table(
    "endpoint_holds",
    metadata,
    Column("endpoint_lower", String(NAME), primary_key=True),
    Column("endpoint", String(NAME), nullable=False),
    Column("group_name", String(NAME), nullable=False),
    Column("held_at", UtcDateTime, nullable=False),
    Index("ix_endpoint_holds_group", "group_name"),
)

# Tags of models, endpoint configs and endpoints (AddTags / ListTags / DeleteTags), by ARN; `seq`
# keeps the order keys were first added.
tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(ARN), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("seq", Integer, nullable=False),
)
