"""The narrow interfaces deployments drive: the fleet, the traffic router and the alarm source.

Activities receive implementations of these (habit 3). The real ones live in `greenshift.fleet`,
`greenshift.dataplane` and `greenshift.metrics`; tests pass fakes with fault injection. All
methods are blocking and idempotent: activities run them in threads and may retry them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from greenshift.errors import GreenshiftError
from greenshift.registry.records import EndpointRouting, FleetRecord, RoutingFence

# Called with a short progress message while a long call runs; activities turn it into a
# heartbeat, so it also tells the call to stop: it raises when the activity was cancelled.
Progress = Callable[[str], None]


class ProvisionFailed(GreenshiftError):
    """Instances did not pass /ping within ContainerStartupHealthCheckTimeoutInSeconds."""

    code = "ProvisionFailed"
    http_status = 400


class FleetStatus(BaseModel):
    fleet_id: str
    desired: int
    healthy: int
    launching: int
    failed: int


class Fleet(Protocol):
    def scale_up(self, fleet: FleetRecord, count: int, progress: Progress) -> FleetStatus:
        """Have `count` healthy instances of the fleet (absolute). Launches what is missing and
        waits until each passes /ping, within `fleet.startup_timeout_seconds`; raises
        ProvisionFailed with SEMANTICS.md's FailureReason otherwise. Instances already running
        count, so a retry launches nothing twice."""

    def scale_down(self, fleet_id: str, count: int, progress: Progress) -> FleetStatus:
        """Stop instances gracefully (out of rotation, in-flight requests finish, SIGTERM,
        SIGKILL after 30 s) until `count` remain. Unknown fleet or already small: success."""

    def status(self, fleet_id: str) -> FleetStatus: ...


class TrafficRouter(Protocol):
    def apply(self, routing: EndpointRouting, fence: RoutingFence | None = None) -> int:
        """Record the desired routing of an endpoint; returns its version. A `fence` (the
        deployment and step writing it) makes a write that outlived its step fail with
        StaleRouting instead of undoing a later one (Registry.set_routing)."""

    def confirm(
        self, endpoint: str, version: int, timeout_seconds: float, progress: Progress
    ) -> None:
        """Return once the data plane has applied `version` (or a later one); raise
        GreenshiftError after `timeout_seconds`."""


class AlarmState(BaseModel):
    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str = ""
    # When the evaluator last judged this alarm (None: not known, e.g. real CloudWatch). A state
    # that is not re-evaluated is a stale state: a hung evaluator must not pass for "all OK".
    evaluated_at: datetime | None = None


class AlarmSource(Protocol):
    def states(self, names: list[str]) -> dict[str, AlarmState]:
        """Current states of the named alarms. Names that do not exist are left out."""
