"""The RolloutGroup workflow's input, its events and its view. Pure pydantic, importable by the
workflow sandbox, the API and the CLI.

Input (the JSON a `temporal workflow start --type RolloutGroup` or `Greenshift.StartRolloutGroup`
takes):

    {"RolloutGroupName": "release-42",
     "Waves": [{"Updates": [<UpdateEndpoint request>, ...]}, ...],
     "Alarms": [{"AlarmName": "checkout-5xx"}]}

Each update is an UpdateEndpoint request exactly as for one endpoint. A wave starts when every
update of the previous one has succeeded. The group's alarms are watched throughout: they are
added to every update's AutoRollbackConfiguration (so the worker's alarm watcher signals the
update that runs when one trips) and checked before each wave and once at the end.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# Shorter than an endpoint name: a group's deployment ids carry it and must fit in 64 characters.
GroupName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")]
DEPLOYMENT_PREFIX = "group."
MAX_ALARMS = 10  # AutoRollbackConfiguration.Alarms holds at most 10 names


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupAlarm(_Shape):
    AlarmName: Annotated[str, StringConstraints(min_length=1, max_length=255)]


class Wave(_Shape):
    Updates: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=50)]


class RolloutGroupInput(_Shape):
    RolloutGroupName: GroupName
    Waves: Annotated[list[Wave], Field(min_length=1, max_length=20)]
    Alarms: Annotated[list[GroupAlarm], Field(max_length=MAX_ALARMS)] = []

    @model_validator(mode="after")
    def _each_endpoint_once(self) -> RolloutGroupInput:
        seen: set[str] = set()
        for number, wave in enumerate(self.Waves, start=1):
            for update in wave.Updates:
                name = update.get("EndpointName")
                if not isinstance(name, str) or not name:
                    raise ValueError(f"Waves[{number}]: every update needs an EndpointName")
                if name.lower() in seen:
                    raise ValueError(
                        f"Endpoint {name} appears more than once in the group; each endpoint "
                        "moves once"
                    )
                seen.add(name.lower())
                alarms = set(self.alarm_names()) | set(_alarms_of(update))
                if len(alarms) > MAX_ALARMS:
                    raise ValueError(
                        f"Endpoint {name} would watch {len(alarms)} alarms with the group's; "
                        f"AutoRollbackConfiguration holds at most {MAX_ALARMS}"
                    )
        return self

    def alarm_names(self) -> list[str]:
        return [a.AlarmName for a in self.Alarms]

    def endpoints(self) -> list[str]:
        return [str(u["EndpointName"]) for w in self.Waves for u in w.Updates]


class GroupStatus(StrEnum):
    RUNNING = "Running"
    ROLLING_BACK = "RollingBack"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_FAILED = "RollbackFailed"


class GroupEvent(_Shape):
    Time: datetime
    Type: str  # GroupStarted, WaveStarted, EndpointSucceeded, EndpointFailed, ...
    Message: str
    EndpointName: str | None = None


class EndpointOutcome(_Shape):
    EndpointName: str
    Wave: int
    FromEndpointConfigName: str
    ToEndpointConfigName: str
    Status: str  # Pending | Updating | Succeeded | RolledBack | Failed | Reverted | RevertFailed
    DeploymentId: str | None = None
    Message: str | None = None


class GroupView(_Shape):
    """The `group` query and the workflow's result: where the group is, what each endpoint did,
    and every event."""

    RolloutGroupName: str
    Status: GroupStatus
    Reason: str | None = None
    Wave: int = 0
    WaveCount: int = 0
    Endpoints: list[EndpointOutcome] = []
    Events: list[GroupEvent] = []


def with_group_alarms(update: dict[str, Any], alarms: list[str]) -> dict[str, Any]:
    """The update with the group's alarms added to its AutoRollbackConfiguration (only when it
    has a DeploymentConfig: without one, a SageMaker update is all-at-once and watches
    nothing; the group's own checks cover it)."""
    config = update.get("DeploymentConfig")
    if not alarms or not isinstance(config, dict):
        return update
    own = _alarms_of(update)
    merged = own + [a for a in alarms if a not in own]
    rollback = dict(config.get("AutoRollbackConfiguration") or {})
    rollback["Alarms"] = [{"AlarmName": a} for a in merged]
    return {**update, "DeploymentConfig": {**config, "AutoRollbackConfiguration": rollback}}


def _alarms_of(update: dict[str, Any]) -> list[str]:
    config = update.get("DeploymentConfig") or {}
    if not isinstance(config, dict):
        return []
    alarms = (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    return [str(a.get("AlarmName")) for a in alarms if isinstance(a, dict)]


def group_deployment_id(group: str, unique: str) -> str:
    """A deployment id that says which group runs it: the registry lets only that group's
    deployments take an endpoint the group holds."""
    return f"{DEPLOYMENT_PREFIX}{group}.{unique}"


def group_of(deployment_id: str) -> str | None:
    if not deployment_id.startswith(DEPLOYMENT_PREFIX):
        return None
    return deployment_id[len(DEPLOYMENT_PREFIX) :].split(".", 1)[0] or None


def group_workflow_id(group: str) -> str:
    return f"rollout-group/{group}"
