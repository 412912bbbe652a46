"""The simulated fleet, traffic router, alarm source and judges of a rehearsal.

They do what the real ones promise, at once: a launch is healthy immediately unless a fault
says otherwise, a routing change is applied as soon as it is recorded. Every fleet change is
stamped with the activity's start time, which the time-skipping server gives in simulated time,
so instance-hours follow the simulated clock.
"""

from __future__ import annotations

import threading
from datetime import datetime

from temporalio import activity

from greenshift.metrics.judge import Z_BOUNDARY
from greenshift.metrics.judge_source import verdict_of
from greenshift.metrics.stats import Aggregate
from greenshift.metrics.verdicts import JudgeInput, Verdict
from greenshift.ports import AlarmState, FleetStatus, Progress, ProvisionFailed
from greenshift.registry.records import EndpointRouting, FleetRecord, RoutingFence


def _activity_time() -> datetime | None:
    try:
        return activity.info().started_time
    except RuntimeError:  # not called from an activity (a direct call in a test)
        return None


class SimFleet:
    """Fleet sizes per fleet id, the launches a fault says fail, and every change in time."""

    def __init__(self, failing_provisions: set[int] | None = None) -> None:
        self._lock = threading.Lock()
        self.sizes: dict[str, int] = {}
        self.changes: list[tuple[datetime | None, str, int]] = []  # (when, fleet, size after)
        self._failing = failing_provisions or set()
        self._armed_with: set[str] | None = None
        self._targets: list[tuple[str, int]] = []  # forward provision steps seen, in order

    def arm(self) -> None:
        """From now on, count provision steps (of fleets that do not exist yet) for faults."""
        with self._lock:
            self._armed_with = set(self.sizes)

    def scale_up(self, fleet: FleetRecord, count: int, progress: Progress) -> FleetStatus:
        with self._lock:
            before = self.sizes.get(fleet.fleet_id, 0)
            if self._armed_with is not None and fleet.fleet_id not in self._armed_with:
                target = (fleet.fleet_id, count)
                if target not in self._targets:
                    self._targets.append(target)
                # A retried launch of the same step fails the same way.
                if self._targets.index(target) + 1 in self._failing:
                    raise ProvisionFailed(
                        f"The primary container for production variant {fleet.variant} did "
                        "not pass the ping health check. (simulated fault)"
                    )
            if count > before:
                self.sizes[fleet.fleet_id] = count
                self.changes.append((_activity_time(), fleet.fleet_id, count))
        return self.status(fleet.fleet_id)

    def scale_down(self, fleet_id: str, count: int, progress: Progress) -> FleetStatus:
        with self._lock:
            if count < self.sizes.get(fleet_id, 0):
                self.sizes[fleet_id] = count
                self.changes.append((_activity_time(), fleet_id, count))
        return self.status(fleet_id)

    def status(self, fleet_id: str) -> FleetStatus:
        n = self.sizes.get(fleet_id, 0)
        return FleetStatus(fleet_id=fleet_id, desired=n, healthy=n, launching=0, failed=0)


class SimRouter:
    """Desired routing per endpoint; applied the moment it is recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._routing: dict[str, EndpointRouting] = {}

    def apply(self, routing: EndpointRouting, fence: RoutingFence | None = None) -> int:
        # A rehearsal runs each step once, in order, with no activity outliving its step: the
        # fence has nothing to refuse here.
        with self._lock:
            if self._routing.get(routing.endpoint) != routing:
                self._versions[routing.endpoint] = self._versions.get(routing.endpoint, 0) + 1
                self._routing[routing.endpoint] = routing
            return self._versions[routing.endpoint]

    def confirm(
        self, endpoint: str, version: int, timeout_seconds: float, progress: Progress
    ) -> None:
        return None


class SimAlarms:
    """Alarm states by name: every alarm the request names exists and is OK until a fault."""

    def __init__(self, names: list[str]) -> None:
        self._lock = threading.Lock()
        self._states = {n: AlarmState(name=n, state="OK") for n in names}

    def set_state(self, name: str, state: str, reason: str) -> None:
        with self._lock:
            self._states[name] = AlarmState(name=name, state=state, reason=reason)

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        with self._lock:
            return {n: self._states[n] for n in names if n in self._states}


class SimJudges:
    """Verdicts of the judge alarms a rehearsal names (a verdicts.JudgeSource): each look of
    each bake passes, except that a `quiet` bake (number from 1) lacks data for its first
    `looks` looks (None: for every look)."""

    def __init__(self, names: list[str], quiet: dict[int, int | None] | None = None) -> None:
        self._lock = threading.Lock()
        self.names = names
        self.quiet = quiet or {}
        self._bakes: list[int] = []  # the plan steps of the bakes seen, in order
        self.looks: dict[int, int] = {}  # bake number -> looks so far

    def judge_alarms(self, names: list[str]) -> list[str]:
        return [name for name in names if name in self.names]

    def verdicts(self, request: JudgeInput, now: datetime) -> list[Verdict]:
        with self._lock:
            if request.step_index not in self._bakes:
                self._bakes.append(request.step_index)
            bake = self._bakes.index(request.step_index) + 1
            look = self.looks[bake] = max(self.looks.get(bake, 0), request.look)
            limit = self.quiet.get(bake, 0)
            lacking = bake in self.quiet and (limit is None or look <= limit)
        requests = (40.0, 400.0) if lacking else (1000.0, 3000.0)
        errors = (0.0, 4.0) if lacking else (10.0, 30.0)
        return [
            verdict_of(
                name,
                "ERROR_JUDGE",
                Aggregate(count=requests[0], sum=errors[0]),
                Aggregate(count=requests[1], sum=errors[1]),
                Z_BOUNDARY,
                lambda z: z > Z_BOUNDARY,
            )
            for name in request.alarms
            if name in self.names
        ]
