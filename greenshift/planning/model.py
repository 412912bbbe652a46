"""The plan: what a deployment will do, step by step. Pure data, shared by the planner (which makes
it), the workflows (which carry it out), `greenshift plan` and `Greenshift.PlanDeployment` (which
show it).

Every step states absolute desired state ("green A at 3 instances", "A: blue 0.9 / green 0.1"),
never a delta, so carrying out a step twice is the same as carrying it out once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from greenshift.names import fleet_key


class Role(StrEnum):
    """Blue is the fleet serving before the deployment; green is the one it deploys."""

    BLUE = "blue"
    GREEN = "green"


class Strategy(StrEnum):
    NONE = "NONE"  # no DeploymentConfig: all at once, no bake, no alarms
    ALL_AT_ONCE = "ALL_AT_ONCE"
    CANARY = "CANARY"
    LINEAR = "LINEAR"
    ROLLING = "ROLLING"
    CREATE = "CREATE"  # CreateEndpoint: provision, then all traffic
    WEIGHTS = "WEIGHTS"  # UpdateEndpointWeightsAndCapacities: in place


class BakeReason(StrEnum):
    WAIT_INTERVAL = "WaitIntervalInSeconds"
    TERMINATION_WAIT = "TerminationWaitInSeconds"
    # The bake after the last traffic step and the final bake, back to back: one bake.
    FINAL = "WaitIntervalInSeconds + TerminationWaitInSeconds"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FleetRef(_Frozen):
    """One fleet of a deployment: a variant's instances on the old (blue) or new (green) config."""

    variant: str
    role: Role

    @property
    def key(self) -> str:
        return fleet_key(self.role, self.variant)


class VariantSpec(_Frozen):
    """What one variant runs on one side of the deployment."""

    variant: str
    model_name: str
    instance_type: str
    instance_count: int
    weight: float
    routing_strategy: str = "LEAST_OUTSTANDING_REQUESTS"
    startup_timeout_seconds: int = 600
    model_data_download_timeout_seconds: int = 3600  # AWS's default


class VariantTraffic(_Frozen):
    """Traffic of one variant: its absolute weight and how it splits between blue and green.

    `blue + green == 1` for every variant that carries traffic (weight > 0).
    """

    weight: float
    blue: float
    green: float


class ProvisionStep(_Frozen):
    """Bring a fleet up to `count` healthy instances (absolute; never fewer than it has)."""

    kind: Literal["provision"] = "provision"
    fleet: FleetRef
    count: int
    instance_type: str
    message: str


class TrafficStep(_Frozen):
    """Set the traffic of every variant to these absolute values, and confirm the data plane has
    applied them."""

    kind: Literal["traffic"] = "traffic"
    variants: dict[str, VariantTraffic]
    message: str


class BakeStep(_Frozen):
    """Wait `seconds` while watching `alarms`; any alarm in ALARM rolls the deployment back."""

    kind: Literal["bake"] = "bake"
    seconds: int
    reason: BakeReason
    alarms: tuple[str, ...] = ()
    message: str


class TerminateStep(_Frozen):
    """Shrink a fleet to `count` instances (absolute; 0 retires it), gracefully."""

    kind: Literal["terminate"] = "terminate"
    fleet: FleetRef
    count: int
    message: str


Step = Annotated[
    ProvisionStep | TrafficStep | BakeStep | TerminateStep, Field(discriminator="kind")
]


def drop_legacy_undo(data: Any) -> Any:
    """Accept, and drop, the `undo` key of payloads recorded before it was removed (issue 13).

    Every planned step once carried an undo step, and the rollback request the undo steps
    registered so far; the rollback never used them (it is planned from the state after the
    steps that began: `greenshift.planning.rollback`). Payloads recorded then still carry the
    key: the prepare activities' results in every deployment history in tests/histories, the
    `finish_deployment` and `plan_rollback` inputs in those recorded before the lean patch
    (no `lean` in the name), and the plans stored with deployments in the registry. Dropped by
    name, so any other unknown key is still refused (`extra="forbid"`).
    """
    if isinstance(data, dict) and "undo" in data:
        return {key: value for key, value in data.items() if key != "undo"}
    return data


class PlannedStep(_Frozen):
    """A step, and when it starts at the earliest (seconds from the deployment's start)."""

    index: int
    offset_seconds: int
    step: Step
    # Fleet sizes and traffic once this step is done: what `greenshift plan` prints.
    instances_after: dict[str, int]
    traffic_after: dict[str, VariantTraffic]

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_undo(cls, data: Any) -> Any:
        return drop_legacy_undo(data)


class Plan(_Frozen):
    """The whole deployment."""

    strategy: Strategy
    blue: tuple[VariantSpec, ...]
    green: tuple[VariantSpec, ...]
    steps: tuple[PlannedStep, ...]
    alarms: tuple[str, ...] = ()
    peak_instances: int
    min_duration_seconds: int
    max_execution_timeout_seconds: int | None = None
    rollback_max_batch_instances: int | None = None  # rolling only; None = all at once
    notes: tuple[str, ...] = ()  # our rules the plan applied, in words
    # Fleet sizes and traffic before the first step: where every rollback returns to.
    instances_before: dict[str, int] = Field(default_factory=dict)
    traffic_before: dict[str, VariantTraffic] = Field(default_factory=dict)

    def first_provision_count(self, key: str) -> int:
        """The count the first provision step of fleet `key` (`FleetRef.key`) brings it to; 0
        when the plan never provisions it."""
        for planned in self.steps:
            step = planned.step
            if isinstance(step, ProvisionStep) and step.fleet.key == key:
                return step.count
        return 0

    def routing_strategies(self) -> dict[str, str]:
        """Fleet key (`FleetRef.key`) -> the RoutingStrategy of the config that fleet runs."""
        return {
            FleetRef(variant=spec.variant, role=role).key: spec.routing_strategy
            for role, specs in ((Role.BLUE, self.blue), (Role.GREEN, self.green))
            for spec in specs
        }
