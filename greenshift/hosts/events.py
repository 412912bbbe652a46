"""The healer's and the replacements' reports: events in the log of the deployment that made the
fleet (`greenshift events` / DescribeEndpoint's timeline show them beside its steps)."""

from __future__ import annotations

from datetime import datetime

from greenshift.hosts.messages import HostEventInput
from greenshift.registry.api import Registry
from greenshift.registry.records import DeploymentEvent


def record_host_event(registry: Registry, data: HostEventInput, at: datetime) -> bool:
    """Append the event once (its key is stored); False when the fleet has no record."""
    fleet = registry.get_fleet(data.fleet_id)
    if fleet is None:
        return False
    registry.append_event(
        DeploymentEvent(
            deployment_id=fleet.deployment_id,
            endpoint=fleet.endpoint,
            at=at,
            type=data.type,
            message=data.message,
            detail={"fleet_id": data.fleet_id, **data.detail},
            actor="healer",
            key=f"{fleet.deployment_id}:{data.key}",
        )
    )
    return True
