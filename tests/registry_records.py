"""Builders of registry records for the registry tests: valid defaults, override what matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from greenshift.registry.records import (
    DeploymentEvent,
    DeploymentRecord,
    EndpointConfigRecord,
    EndpointRecord,
    FleetRecord,
    InstanceRecord,
    ModelRecord,
    VariantState,
)
from greenshift.registry.sql import default_arn
from greenshift.status import EndpointStatus

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def model(name: str = "m", created: datetime = T0) -> ModelRecord:
    return ModelRecord(
        name=name,
        arn=default_arn("model", name),
        created_at=created,
        spec={"ModelName": name, "PrimaryContainer": {"Image": "img", "ModelDataUrl": "file:///m"}},
    )


def config(name: str = "c", created: datetime = T0) -> EndpointConfigRecord:
    return EndpointConfigRecord(
        name=name,
        arn=default_arn("endpoint-config", name),
        created_at=created,
        spec={"EndpointConfigName": name, "ProductionVariants": [{"VariantName": "A"}]},
    )


def variant(name: str = "A", count: int = 2) -> VariantState:
    return VariantState(
        variant=name,
        model_name="m",
        instance_type="ml.m5.large",
        current_weight=1.0,
        desired_weight=1.0,
        current_instance_count=count,
        desired_instance_count=count,
    )


def endpoint(
    name: str = "ep",
    status: EndpointStatus = EndpointStatus.CREATING,
    created: datetime = T0,
    **extra: Any,
) -> EndpointRecord:
    return EndpointRecord(
        name=name,
        arn=default_arn("endpoint", name),
        status=status,
        config_name="c",
        config_snapshot={"EndpointConfig": {"EndpointConfigName": "c"}, "Models": {}},
        variants=[variant()],
        created_at=created,
        last_modified=created,
        **extra,
    )


def deployment(
    deployment_id: str = "d1",
    endpoint: str = "ep",
    operation: str = "UpdateEndpoint",
    started: datetime = T0,
    **extra: Any,
) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id=deployment_id,
        endpoint=endpoint,
        operation=operation,
        workflow_id=f"endpoint/{endpoint}",
        request={"EndpointName": endpoint},
        started_at=started,
        **extra,
    )


def event(
    deployment_id: str = "d1", type_: str = "StepStarted", key: str | None = None, n: int = 0
) -> DeploymentEvent:
    return DeploymentEvent(
        deployment_id=deployment_id,
        endpoint="ep",
        at=at(n),
        type=type_,
        message=f"event {n}",
        detail={"n": n},
        key=key,
    )


def fleet(fleet_id: str = "ep.A.d1", endpoint: str = "ep", **extra: Any) -> FleetRecord:
    values: dict[str, Any] = {
        "desired_count": 2,
        "created_at": T0,
        "model_spec": {"Image": "img"},
        **extra,
    }
    return FleetRecord(
        fleet_id=fleet_id,
        endpoint=endpoint,
        deployment_id="d1",
        variant="A",
        config_name="c",
        model_name="m",
        instance_type="ml.m5.large",
        **values,
    )


def instance(
    fleet_id: str = "ep.A.d1", index: int = 0, endpoint: str = "ep", **extra: Any
) -> InstanceRecord:
    values: dict[str, Any] = {"state": "InService", "updated_at": T0, **extra}
    return InstanceRecord(
        instance_id=f"{fleet_id}.{index}",
        fleet_id=fleet_id,
        endpoint=endpoint,
        variant="A",
        index=index,
        **values,
    )
