"""Rollout-group activities: hold the group's endpoints in the registry for as long as it runs,
and release them. The registry is the lock (habit 7): while a group holds an endpoint, only the
group's own deployments may take it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities.errors import business_errors
from greenshift.names import HOLD_GROUP, RELEASE_GROUP
from greenshift.registry.api import Registry


class HoldInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: str
    endpoints: list[str]
    at: datetime


class HoldResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # EndpointConfigName of each endpoint when the group took it: what a rollback restores.
    configs: dict[str, str]


class ReleaseInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: str


class GroupActivities:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @activity.defn(name=HOLD_GROUP)
    @business_errors
    def hold(self, data: HoldInput) -> HoldResult:
        return HoldResult(configs=self.registry.hold_endpoints(data.group, data.endpoints, data.at))

    @activity.defn(name=RELEASE_GROUP)
    @business_errors
    def release(self, data: ReleaseInput) -> None:
        self.registry.release_endpoints(data.group)
