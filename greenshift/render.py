"""Registry records as the SageMaker wire documents: pure functions, no I/O.

`describe_endpoint` is what DescribeEndpoint returns and what endpoint events carry. During a
deployment the serving (blue) fleet stays at top level and the deployment in flight is the
`PendingDeploymentSummary` (SEMANTICS.md section 3). Documents are built directly rather than
through the pydantic output shapes: this is the hottest read path, and the unit tests check the
result against botocore's output shapes instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from greenshift.registry.records import (
    DeploymentEvent,
    DeploymentRecord,
    EndpointConfigRecord,
    EndpointRecord,
    ModelRecord,
    PendingDeployment,
    PendingVariant,
    VariantState,
)

# botocore's ProductionVariantStatusList holds at most 5 entries: the latest ones are kept.
MAX_VARIANT_STATUSES = 5


def epoch(value: datetime) -> float:
    """JSON 1.1 timestamps are epoch seconds with a fraction."""
    return value.timestamp()


def _variant(v: VariantState) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "VariantName": v.variant,
        "CurrentWeight": v.current_weight,
        "DesiredWeight": v.desired_weight,
        "CurrentInstanceCount": v.current_instance_count,
        "DesiredInstanceCount": v.desired_instance_count,
    }
    if v.image:
        doc["DeployedImages"] = [{"SpecifiedImage": v.image, "ResolvedImage": v.image}]
    return doc


def _pending_variant(v: PendingVariant) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "VariantName": v.variant,
        "CurrentWeight": v.current_weight,
        "DesiredWeight": v.desired_weight,
        "CurrentInstanceCount": v.current_instance_count,
        "DesiredInstanceCount": v.desired_instance_count,
        "InstanceType": v.instance_type,
    }
    if v.statuses:
        doc["VariantStatus"] = [
            {"Status": s.status, "StatusMessage": s.message, "StartTime": epoch(s.start_time)}
            for s in v.statuses[-MAX_VARIANT_STATUSES:]
        ]
    return doc


def pending_summary(pending: PendingDeployment) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "EndpointConfigName": pending.config_name,
        "StartTime": epoch(pending.start_time),
    }
    if pending.variants:
        doc["ProductionVariants"] = [_pending_variant(v) for v in pending.variants]
    return doc


def describe_endpoint(record: EndpointRecord) -> dict[str, Any]:
    """DescribeEndpoint's output for a registry record."""
    doc: dict[str, Any] = {
        "EndpointName": record.name,
        "EndpointArn": record.arn,
        "EndpointConfigName": record.config_name,
        "EndpointStatus": record.status.value,
        "CreationTime": epoch(record.created_at),
        "LastModifiedTime": epoch(record.last_modified),
    }
    # botocore requires at least one entry when the list is present: a new endpoint has no
    # serving fleet until its first instances are up, so the member is left out.
    if record.variants:
        doc["ProductionVariants"] = [_variant(v) for v in record.variants]
    if record.failure_reason:
        doc["FailureReason"] = record.failure_reason[:1024]
    if record.last_deployment_config:
        doc["LastDeploymentConfig"] = record.last_deployment_config
    if record.pending is not None:
        doc["PendingDeploymentSummary"] = pending_summary(record.pending)
    return doc


def endpoint_summary(record: EndpointRecord) -> dict[str, Any]:
    return {
        "EndpointName": record.name,
        "EndpointArn": record.arn,
        "CreationTime": epoch(record.created_at),
        "LastModifiedTime": epoch(record.last_modified),
        "EndpointStatus": record.status.value,
    }


def describe_model(record: ModelRecord) -> dict[str, Any]:
    doc = {k: v for k, v in record.spec.items() if k != "Tags"}
    doc.update(ModelName=record.name, ModelArn=record.arn, CreationTime=epoch(record.created_at))
    return doc


def model_summary(record: ModelRecord) -> dict[str, Any]:
    return {
        "ModelName": record.name,
        "ModelArn": record.arn,
        "CreationTime": epoch(record.created_at),
    }


def describe_endpoint_config(record: EndpointConfigRecord) -> dict[str, Any]:
    doc = {k: v for k, v in record.spec.items() if k != "Tags"}
    doc.update(
        EndpointConfigName=record.name,
        EndpointConfigArn=record.arn,
        CreationTime=epoch(record.created_at),
    )
    return doc


def endpoint_config_summary(record: EndpointConfigRecord) -> dict[str, Any]:
    return {
        "EndpointConfigName": record.name,
        "EndpointConfigArn": record.arn,
        "CreationTime": epoch(record.created_at),
    }


def deployment_summary(record: DeploymentRecord) -> dict[str, Any]:
    """A deployment as the Greenshift extension operations show it (PascalCase, epoch times)."""
    doc: dict[str, Any] = {
        "DeploymentId": record.deployment_id,
        "EndpointName": record.endpoint,
        "Operation": record.operation,
        "WorkflowId": record.workflow_id,
        "Outcome": record.outcome.value,
        "StartTime": epoch(record.started_at),
        "Alarms": list(record.alarms),
    }
    if record.ended_at is not None:
        doc["EndTime"] = epoch(record.ended_at)
    if record.failure_reason:
        doc["FailureReason"] = record.failure_reason
    if record.from_config:
        doc["FromEndpointConfigName"] = record.from_config
    if record.to_config:
        doc["ToEndpointConfigName"] = record.to_config
    return doc


def deployment_progress(pending: PendingDeployment) -> dict[str, Any]:
    """What `greenshift watch` shows beyond PendingDeploymentSummary: phase, step, bake deadline,
    alarm states, paused."""
    doc: dict[str, Any] = {
        "Phase": pending.phase,
        "StepIndex": pending.step_index,
        "StepCount": pending.step_count,
        "AlarmStates": dict(pending.alarm_states),
        "Paused": pending.paused,
    }
    if pending.bake_ends_at is not None:
        doc["BakeEndsAt"] = epoch(pending.bake_ends_at)
    return doc


def deployment_event(event: DeploymentEvent) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Sequence": event.seq,
        "Time": epoch(event.at),
        "Type": event.type,
        "Message": event.message,
        "Detail": event.detail,
    }
    if event.actor:
        doc["Actor"] = event.actor
    return doc
