"""EventBridge-shaped events: pure functions from registry records to event documents.

The shapes follow what SageMaker publishes to EventBridge (`source` `aws.sagemaker`, the detail
like DescribeEndpoint). Every event has a stable `id` derived from what it describes, so a
receiver that sees the same event twice (a retried delivery, an API restart) can drop the copy.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from greenshift.registry.records import DeploymentEvent, EndpointRecord
from greenshift.render import describe_endpoint, epoch
from greenshift.settings import Settings

SOURCE = "aws.sagemaker"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
DEPLOYMENT_STATE_CHANGE = "SageMaker Endpoint Deployment State Change"
# Our extension: the status an endpoint event carries once the endpoint is gone.
DELETED = "Deleted"

# Namespace of the stable event ids (uuid5): fixed forever, or receivers' de-duplication breaks.
_NAMESPACE = uuid.UUID("6c1f3f8e-5b7a-4d0e-9a43-1d6a8f0b2c55")


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(
    detail_type: str,
    event_id: str,
    at: datetime,
    arn: str,
    detail: dict[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": SOURCE,
        "account": settings.account_id,
        "time": _iso(at),
        "region": settings.region,
        "resources": [arn],
        "detail": detail,
    }


def endpoint_state_event(record: EndpointRecord, settings: Settings) -> dict[str, Any]:
    """ "SageMaker Endpoint State Change" for the endpoint as the record shows it.

    The id depends on the endpoint, its status and when it got there, so the same observed state
    always yields the same id.
    """
    event_id = _stable_id(
        "endpoint", record.arn, record.status.value, record.last_modified.isoformat()
    )
    return _envelope(
        ENDPOINT_STATE_CHANGE,
        event_id,
        record.last_modified,
        record.arn,
        describe_endpoint(record),
        settings,
    )


def endpoint_deleted_event(name: str, arn: str, at: datetime, settings: Settings) -> dict[str, Any]:
    """The last state change of an endpoint: it is gone (status `Deleted`, our extension)."""
    detail = {"EndpointName": name, "EndpointArn": arn, "EndpointStatus": DELETED}
    return _envelope(
        ENDPOINT_STATE_CHANGE,
        _stable_id("endpoint-deleted", arn, at.isoformat()),
        at,
        arn,
        detail,
        settings,
    )


def deployment_state_event(
    event: DeploymentEvent, record: EndpointRecord | None, settings: Settings
) -> dict[str, Any]:
    """ "SageMaker Endpoint Deployment State Change" for one entry of a deployment's event log.

    The detail is the endpoint as DescribeEndpoint shows it (when it still exists) plus the
    deployment step: id, type, message, actor and the step's own detail. The built-in judge's
    verdicts come this way too: `Type` `JudgeVerdict` (`BakeExtended`, `Paused` for what they
    led to) with the figures in `Detail` (greenshift.metrics.verdicts.Verdict.detail).
    """
    arn = record.arn if record is not None else settings.arn("endpoint", event.endpoint)
    detail: dict[str, Any] = (
        describe_endpoint(record)
        if record is not None
        else {
            "EndpointName": event.endpoint,
            "EndpointArn": arn,
        }
    )
    detail["Deployment"] = {
        "DeploymentId": event.deployment_id,
        "Sequence": event.seq,
        "Type": event.type,
        "Message": event.message,
        "Time": epoch(event.at),
        "Detail": event.detail,
        **({"Actor": event.actor} if event.actor else {}),
    }
    marker = event.key or str(event.seq) or event.at.isoformat()
    event_id = _stable_id("deployment", event.deployment_id, marker)
    return _envelope(DEPLOYMENT_STATE_CHANGE, event_id, event.at, arn, detail, settings)
