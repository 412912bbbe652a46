"""Rows of the registry's tables to records and back (greenshift.registry.schema <->
greenshift.registry.records): the lower-cased key columns exist only in the rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from greenshift.registry.records import (
    DeploymentEvent,
    DeploymentRecord,
    EndpointConfigRecord,
    EndpointRecord,
    EndpointRouting,
    FleetRecord,
    InstanceRecord,
    ModelRecord,
    RoutingRecord,
)
from greenshift.status import DeploymentOutcome, EndpointStatus


def spec_values(record: ModelRecord | EndpointConfigRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "arn": record.arn,
        "created_at": record.created_at,
        "spec": record.spec,
    }


def spec_dict(row: Row[Any]) -> dict[str, Any]:
    return {"name": row.name, "arn": row.arn, "created_at": row.created_at, "spec": row.spec}


def endpoint_values(record: EndpointRecord) -> dict[str, Any]:
    return {
        "name_lower": record.name.lower(),
        "name": record.name,
        "arn": record.arn,
        "status": EndpointStatus(record.status).value,
        "config_name": record.config_name,
        "config_snapshot": record.config_snapshot,
        "variants": [v.model_dump(mode="json") for v in record.variants],
        "pending": None if record.pending is None else record.pending.model_dump(mode="json"),
        "failure_reason": record.failure_reason,
        "last_deployment_config": record.last_deployment_config,
        "current_deployment_id": record.current_deployment_id,
        "revision": record.revision,
        "created_at": record.created_at,
        "last_modified": record.last_modified,
    }


def event_values(event: DeploymentEvent) -> dict[str, Any]:
    return event.model_dump(mode="python", exclude={"seq"})


def endpoint_record(row: Row[Any]) -> EndpointRecord:
    values = row._asdict()
    del values["name_lower"]
    return EndpointRecord.model_validate(values)


def deployment_values(record: DeploymentRecord) -> dict[str, Any]:
    values = record.model_dump(mode="python")
    values["endpoint_lower"] = record.endpoint.lower()
    values["outcome"] = DeploymentOutcome(record.outcome).value
    return values


def deployment_record(row: Row[Any]) -> DeploymentRecord:
    values = row._asdict()
    del values["endpoint_lower"]
    return DeploymentRecord.model_validate(values)


def fleet_record(row: Row[Any]) -> FleetRecord:
    values = row._asdict()
    del values["endpoint_lower"]
    return FleetRecord.model_validate(values)


def instance_record(row: Row[Any]) -> InstanceRecord:
    values = row._asdict()
    del values["endpoint_lower"]
    return InstanceRecord.model_validate(values)


def routing_record(row: Row[Any]) -> RoutingRecord:
    return RoutingRecord(
        endpoint=row.endpoint,
        version=row.version,
        applied_version=row.applied_version,
        routing=EndpointRouting.model_validate(row.doc),
    )
