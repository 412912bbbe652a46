"""Create and upgrade the registry schema on start, without losing data.

The database records its version in `schema_version`. `migrate` runs, in one transaction, every
step above that version, then records the new version. Steps are frozen: each one describes the
change as it was made (its own table definitions), never today's `schema.py`, so an old database
always walks the same path a new one did. Each step is also idempotent (creates check first,
columns are added only when missing), so a half-applied step from a crash is harmless.

Several processes may start at once: the transaction takes the write lock first (SQLite
`BEGIN IMMEDIATE`; PostgreSQL a transaction-level advisory lock), so exactly one migrates and the
others then see the new version. DDL is transactional on both backends.

To change the schema: add a step with the next version number and update `schema.py` to match
(tests/unit/test_registry_migrations.py checks they agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
)

from greenshift.errors import ServiceUnavailable
from greenshift.registry import schema
from greenshift.registry.database import write_transaction
from greenshift.registry.schema import UtcDateTime

# pg_advisory_xact_lock key: "greenshift registry migrations".
_PG_LOCK_KEY = 0x6772656E73686674


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _json() -> JSON:
    return JSON(none_as_null=True)


def _v1_tables() -> MetaData:
    """The first schema: specs, endpoints, deployments and their events, fleets, instances and
    routing (without the router controller's applied version)."""
    md = MetaData()
    for table_name in ("models", "endpoint_configs"):
        Table(
            table_name,
            md,
            Column("name_lower", String(64), primary_key=True),
            Column("name", String(64), nullable=False),
            Column("arn", String(256), nullable=False),
            Column("created_at", UtcDateTime, nullable=False),
            Column("spec", _json(), nullable=False),
        )
    Table(
        "endpoints",
        md,
        Column("name_lower", String(64), primary_key=True),
        Column("name", String(64), nullable=False),
        Column("arn", String(256), nullable=False),
        Column("status", String(32), nullable=False),
        Column("config_name", String(64), nullable=False),
        Column("config_snapshot", _json(), nullable=False),
        Column("variants", _json(), nullable=False),
        Column("pending", _json(), nullable=True),
        Column("failure_reason", Text, nullable=True),
        Column("last_deployment_config", _json(), nullable=True),
        Column("current_deployment_id", String(256), nullable=True),
        Column("revision", Integer, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("last_modified", UtcDateTime, nullable=False),
    )
    Table(
        "deployments",
        md,
        Column("deployment_id", String(256), primary_key=True),
        Column("endpoint", String(64), nullable=False),
        Column("endpoint_lower", String(64), nullable=False),
        Column("operation", String(64), nullable=False),
        Column("workflow_id", String(256), nullable=False),
        Column("request", _json(), nullable=False),
        Column("plan", _json(), nullable=True),
        Column("alarms", _json(), nullable=False),
        Column("outcome", String(32), nullable=False),
        Column("failure_reason", Text, nullable=True),
        Column("from_config", String(64), nullable=True),
        Column("to_config", String(64), nullable=True),
        Column("started_at", UtcDateTime, nullable=False),
        Column("ended_at", UtcDateTime, nullable=True),
        Index("ix_deployments_endpoint", "endpoint_lower", "started_at"),
    )
    Table(
        "deployment_events",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("deployment_id", String(256), nullable=False),
        Column("endpoint", String(64), nullable=False),
        Column("at", UtcDateTime, nullable=False),
        Column("type", String(64), nullable=False),
        Column("message", Text, nullable=False),
        Column("detail", _json(), nullable=False),
        Column("key", String(256), nullable=True),
        Index("ix_deployment_events_deployment", "deployment_id", "seq"),
        Index("ux_deployment_events_key", "key", unique=True),
        sqlite_autoincrement=True,
    )
    Table(
        "fleets",
        md,
        Column("fleet_id", String(256), primary_key=True),
        Column("endpoint", String(64), nullable=False),
        Column("endpoint_lower", String(64), nullable=False),
        Column("deployment_id", String(256), nullable=False),
        Column("variant", String(64), nullable=False),
        Column("config_name", String(64), nullable=False),
        Column("model_name", String(64), nullable=False),
        Column("instance_type", String(64), nullable=False),
        Column("model_spec", _json(), nullable=False),
        Column("startup_timeout_seconds", Integer, nullable=False),
        Column("desired_count", Integer, nullable=False),
        Column("retired", Boolean, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Index("ix_fleets_endpoint", "endpoint_lower"),
    )
    Table(
        "instances",
        md,
        Column("instance_id", String(256), primary_key=True),
        Column("fleet_id", String(256), nullable=False),
        Column("endpoint", String(64), nullable=False),
        Column("endpoint_lower", String(64), nullable=False),
        Column("variant", String(64), nullable=False),
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
    Table(
        "routing",
        md,
        Column("endpoint_lower", String(64), primary_key=True),
        Column("endpoint", String(64), nullable=False),
        Column("version", Integer, nullable=False),
        Column("doc", _json(), nullable=False),
    )
    return md


def _step_1_initial(conn: Connection) -> None:
    _v1_tables().create_all(conn, checkfirst=True)


def _add_column(conn: Connection, table: str, column: str, ddl_type: str) -> None:
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl_type}"))


def _step_2_router_handshake(conn: Connection) -> None:
    """Who paused / promoted / aborted; the routing version the data plane has; the generation
    counter the router controller polls."""
    _add_column(conn, "deployment_events", "actor", "VARCHAR(256)")
    _add_column(conn, "routing", "applied_version", "INTEGER NOT NULL DEFAULT 0")
    md = MetaData()
    generation = Table(
        "generation",
        md,
        Column("id", Integer, primary_key=True),
        Column("value", BigInteger, nullable=False),
        Column("applied", BigInteger, nullable=False),
    )
    generation.create(conn, checkfirst=True)
    if conn.execute(select(generation.c.id).where(generation.c.id == 1)).first() is None:
        conn.execute(generation.insert().values(id=1, value=0, applied=0))


def _step_3_endpoint_holds(conn: Connection) -> None:
    """Rollout groups hold their endpoints (issue 18)."""
    md = MetaData()
    Table(
        "endpoint_holds",
        md,
        Column("endpoint_lower", String(64), primary_key=True),
        Column("endpoint", String(64), nullable=False),
        Column("group_name", String(64), nullable=False),
        Column("held_at", UtcDateTime, nullable=False),
        Index("ix_endpoint_holds_group", "group_name"),
    )
    md.create_all(conn, checkfirst=True)


def _step_4_tags(conn: Connection) -> None:
    """Tags by resource ARN (AddTags, ListTags, DeleteTags; Tags of the create requests)."""
    md = MetaData()
    Table(
        "tags",
        md,
        Column("resource_arn", String(256), primary_key=True),
        Column("key", String(128), primary_key=True),
        Column("value", String(256), nullable=False),
        Column("seq", Integer, nullable=False),
    ).create(conn, checkfirst=True)


def _step_5_download_timeout(conn: Connection) -> None:
    """Each fleet's ModelDataDownloadTimeoutInSeconds (AWS's default, 3600, for older fleets)."""
    _add_column(
        conn, "fleets", "model_data_download_timeout_seconds", "INTEGER NOT NULL DEFAULT 3600"
    )


def _step_6_routing_fence(conn: Connection) -> None:
    """The fence of each endpoint's last fenced routing write (RoutingFence)."""
    _add_column(conn, "routing", "fence_deployment", "VARCHAR(256)")
    _add_column(conn, "routing", "fence_step", "INTEGER")


STEPS: tuple[Step, ...] = (
    Step(1, "initial schema", _step_1_initial),
    Step(
        2,
        "router controller handshake: applied versions, generation counter, event actor",
        _step_2_router_handshake,
    ),
    Step(3, "endpoint holds of rollout groups", _step_3_endpoint_holds),
    Step(4, "tags of models, endpoint configs and endpoints", _step_4_tags),
    Step(5, "fleets keep their model data download timeout", _step_5_download_timeout),
    Step(6, "routing writes fenced by deployment and step", _step_6_routing_fence),
)
LATEST = STEPS[-1].version


def migrate(engine: Engine, target: int = LATEST) -> int:
    """Bring the database to `target` (default: the latest) and return its version. Refuses a
    database newer than this code: running old code on it could lose data."""
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        schema.schema_version.create(conn, checkfirst=True)
        current = conn.execute(select(schema.schema_version.c.version)).scalar() or 0
        if current > LATEST:
            raise ServiceUnavailable(
                f"The registry database is at schema version {current}, newer than this "
                f"Greenshift understands ({LATEST}); upgrade Greenshift."
            )
        for step in STEPS:
            if current < step.version <= target:
                step.apply(conn)
                current = step.version
        table = schema.schema_version
        if conn.execute(select(table.c.id)).first() is None:
            conn.execute(table.insert().values(id=1, version=current))
        else:
            conn.execute(table.update().values(version=current))
        return current


def schema_version_of(engine: Engine) -> int:
    """The version recorded in the database (0 when it has none yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_version"):
            return 0
        return int(conn.execute(select(schema.schema_version.c.version)).scalar() or 0)
