"""Typed records the registry stores and returns. Pure data: the API, the activities, the router
controller and the fleet agent all speak these, whatever database is underneath.

Specs (`spec`, `config_snapshot`) are kept as the SageMaker wire documents (PascalCase JSON), so a
record can always be turned back into the exact request that made it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from greenshift.status import DeploymentOutcome, EndpointStatus

T = TypeVar("T")


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRecord(Record):
    name: str
    arn: str
    created_at: datetime
    spec: dict[str, Any]  # the CreateModel request


class EndpointConfigRecord(Record):
    name: str
    arn: str
    created_at: datetime
    spec: dict[str, Any]  # the CreateEndpointConfig request


class VariantState(Record):
    """One production variant as DescribeEndpoint shows it at top level."""

    variant: str
    model_name: str
    instance_type: str
    fleet_id: str | None = None
    current_weight: float
    desired_weight: float
    current_instance_count: int
    desired_instance_count: int
    image: str | None = None


class VariantStatusEntry(Record):
    status: str  # greenshift.status.VariantStatus
    message: str
    start_time: datetime


class PendingVariant(Record):
    variant: str
    model_name: str
    instance_type: str
    current_weight: float
    desired_weight: float
    current_instance_count: int
    desired_instance_count: int
    statuses: list[VariantStatusEntry] = Field(default_factory=list)


class PendingDeployment(Record):
    """The deployment in flight: DescribeEndpoint's `PendingDeploymentSummary`."""

    config_name: str
    start_time: datetime
    variants: list[PendingVariant] = Field(default_factory=list)
    # Greenshift extras for `greenshift watch`: phase, bake deadline, alarm states.
    phase: str | None = None
    step_index: int | None = None
    step_count: int | None = None
    bake_ends_at: datetime | None = None
    alarm_states: dict[str, str] = Field(default_factory=dict)
    paused: bool = False


class EndpointRecord(Record):
    name: str
    arn: str
    status: EndpointStatus
    config_name: str
    # The serving config as it was deployed: the CreateEndpointConfig request plus the
    # CreateModel requests of its models ({"EndpointConfig": {...}, "Models": {name: {...}}}),
    # so nothing is lost if the config or a model is deleted later.
    config_snapshot: dict[str, Any]
    variants: list[VariantState] = Field(default_factory=list)
    pending: PendingDeployment | None = None
    failure_reason: str | None = None
    last_deployment_config: dict[str, Any] | None = None
    current_deployment_id: str | None = None
    created_at: datetime
    last_modified: datetime
    revision: int = 0  # compare-and-set token: bumped by every write


class FleetRecord(Record):
    """A set of identical model instances of one variant of one config, made by one deployment."""

    fleet_id: str
    endpoint: str
    deployment_id: str
    variant: str
    config_name: str
    model_name: str
    instance_type: str
    # What an instance runs: the CreateModel request of the variant's model (PrimaryContainer or
    # Containers[0]: Image, ModelDataUrl, Environment) and the startup health-check timeout.
    model_spec: dict[str, Any]
    startup_timeout_seconds: int = 600
    model_data_download_timeout_seconds: int = 3600  # AWS's default
    desired_count: int = 0
    retired: bool = False
    created_at: datetime


class InstanceRecord(Record):
    instance_id: str  # "<fleet_id>-<index>": derived, so a retried launch is a no-op
    fleet_id: str
    endpoint: str
    variant: str
    index: int
    host: str = "127.0.0.1"
    port: int | None = None
    pid: int | None = None
    state: str  # Launching | InService | Unhealthy | Stopping | Stopped | Failed
    state_reason: str | None = None
    restarts: int = 0
    started_at: datetime | None = None
    updated_at: datetime


class FleetRoute(Record):
    fleet_id: str
    share: float  # of the variant's traffic; the fleets of a variant sum to 1
    # How this fleet balances among its instances: the RoutingConfig of the config the fleet was
    # made from (blue and green may differ during a deployment). None: the variant's.
    routing_strategy: str | None = None


class VariantRoute(Record):
    variant: str
    weight: float  # absolute variant weight; the endpoint's traffic follows weight / sum(weights)
    routing_strategy: str = "LEAST_OUTSTANDING_REQUESTS"
    fleets: list[FleetRoute] = Field(default_factory=list)


class EndpointRouting(Record):
    """The desired routing of one endpoint. The router controller makes the data plane equal to it
    (instances come from the instance records of each fleet)."""

    endpoint: str
    variants: list[VariantRoute] = Field(default_factory=list)


class RoutingFence(Record):
    """Who writes a routing, and at which step of its deployment: a deployment's routing writes
    take effect in step order, and only while it holds the endpoint (a fencing token)."""

    deployment_id: str
    step: int  # forward steps by plan index; the rollback's after them; LAST_ROUTING_STEP

    @classmethod
    def last(cls, deployment_id: str) -> RoutingFence:
        """The deployment's last routing write (its routing cleared): after every step."""
        return cls(deployment_id=deployment_id, step=LAST_ROUTING_STEP)

    def overtaken_by(self, deployment_id: str | None, step: int | None) -> bool:
        """Whether a stored write (its fence's deployment and step) of the same deployment came
        from a later step: this write then outlived its step."""
        return deployment_id == self.deployment_id and step is not None and step > self.step

    def describe(self, step: int | None = None) -> str:
        """This write's step (or `step` of the same deployment), for messages."""
        step = self.step if step is None else step
        return "its last routing write" if step == LAST_ROUTING_STEP else f"step {step + 1} of it"


# The step of a deployment's last routing write (RoutingFence.last): the largest INTEGER.
LAST_ROUTING_STEP = 2**31 - 1


class RoutingRecord(Record):
    endpoint: str
    version: int  # bumped by every change of the desired routing
    applied_version: int = 0  # reported by the router controller once HAProxy has it
    routing: EndpointRouting


class DeploymentRecord(Record):
    deployment_id: str
    endpoint: str
    operation: (
        str  # CreateEndpoint | UpdateEndpoint | DeleteEndpoint | UpdateEndpointWeightsAndCapacities
    )
    workflow_id: str
    request: dict[str, Any]
    plan: dict[str, Any] | None = None
    alarms: list[str] = Field(default_factory=list)
    outcome: DeploymentOutcome = DeploymentOutcome.RUNNING
    failure_reason: str | None = None
    from_config: str | None = None
    to_config: str | None = None
    started_at: datetime
    ended_at: datetime | None = None


class DeploymentEvent(Record):
    seq: int | None = None
    deployment_id: str
    endpoint: str
    at: datetime
    type: str  # e.g. StepStarted, StepFinished, AlarmCheck, Paused, RollbackStarted, StatusChanged
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = None  # who paused / promoted / aborted
    # Idempotency: an activity retried after it wrote the event writes nothing new.
    key: str | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_token: str | None = None
