"""Fakes of the ports a deployment drives (Fleet, TrafficRouter, AlarmSource), with fault
injection. Passed to the activities like the real ones; nothing is monkey-patched.

Each fake can keep its state in a JSON file (`state_file`), so a worker process that is killed
and restarted finds the fleets and the routing where the first one left them, and a test can
count what really happened across processes.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from greenshift.errors import GreenshiftError, ServiceUnavailable
from greenshift.naming import instance_id
from greenshift.ports import AlarmState, FleetStatus, Progress, ProvisionFailed
from greenshift.registry.api import Registry
from greenshift.registry.records import EndpointRouting, FleetRecord, InstanceRecord, RoutingFence
from greenshift.status import InstanceState


class _FileState:
    """A dict persisted as JSON after every change (or only in memory)."""

    def __init__(self, path: Path | None, initial: dict[str, Any]) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data = initial
        if path is not None and path.exists():
            self.data = json.loads(path.read_text())

    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            tmp.replace(self.path)


@dataclass
class FleetFaults:
    never_healthy_models: set[str] = field(default_factory=set)  # ProvisionFailed
    failing_scale_down: set[str] = field(default_factory=set)  # fleet ids whose shrink fails
    launch_seconds: float = 0.0  # real time a launch takes (heartbeating meanwhile)


class FakeFleet:
    """Fleet sizes per fleet id. `changes` lists every effective change (a retry that finds the
    fleet already at its size changes nothing and is not listed)."""

    def __init__(self, state_file: Path | None = None, faults: FleetFaults | None = None) -> None:
        self.state = _FileState(state_file, {"sizes": {}, "changes": [], "calls": []})
        self.faults = faults or FleetFaults()

    def _call(self, *call: Any) -> None:
        with self.state.lock:
            self.state.data["calls"].append(list(call))
            self.state.save()

    @property
    def calls(self) -> list[list[Any]]:
        """Every call, effective or not: a step carried out twice shows here twice."""
        return [list(c) for c in self.state.data["calls"]]

    @property
    def sizes(self) -> dict[str, int]:
        return dict(self.state.data["sizes"])

    @property
    def changes(self) -> list[list[Any]]:
        return [list(c) for c in self.state.data["changes"]]

    def scale_up(self, fleet: FleetRecord, count: int, progress: Progress) -> FleetStatus:
        self._call("up", fleet.fleet_id, count)
        if fleet.model_name in self.faults.never_healthy_models:
            progress(f"waiting for {fleet.fleet_id}")
            raise ProvisionFailed(
                f"The primary container for production variant {fleet.variant} did not pass "
                "the ping health check."
            )
        deadline = time.monotonic() + self.faults.launch_seconds
        while time.monotonic() < deadline:
            progress(f"launching {fleet.fleet_id}")
            time.sleep(0.05)
        with self.state.lock:
            before = self.state.data["sizes"].get(fleet.fleet_id, 0)
            if count > before:
                self.state.data["sizes"][fleet.fleet_id] = count
                self.state.data["changes"].append(["up", fleet.fleet_id, before, count])
                self.state.save()
            now = self.state.data["sizes"][fleet.fleet_id] if count > before else before
        return FleetStatus(
            fleet_id=fleet.fleet_id, desired=count, healthy=now, launching=0, failed=0
        )

    def scale_down(self, fleet_id: str, count: int, progress: Progress) -> FleetStatus:
        self._call("down", fleet_id, count)
        progress(f"stopping {fleet_id}")
        if fleet_id in self.faults.failing_scale_down:
            raise GreenshiftError(f"injected failure stopping instances of {fleet_id}")
        with self.state.lock:
            before = self.state.data["sizes"].get(fleet_id, 0)
            if count < before:
                self.state.data["sizes"][fleet_id] = count
                self.state.data["changes"].append(["down", fleet_id, before, count])
                self.state.save()
        return self.status(fleet_id)

    def status(self, fleet_id: str) -> FleetStatus:
        n = self.state.data["sizes"].get(fleet_id, 0)
        return FleetStatus(fleet_id=fleet_id, desired=n, healthy=n, launching=0, failed=0)


class FakeHostAgent(FakeFleet):
    """FakeFleet as the agent of the one host `host` (greenshift.hosts.activities calls it with
    this host's share and the indices placement reserved). It keeps the instance records a real
    agent keeps, In service at once (together, as the agent writes the instances one look found
    healthy) and deleted once stopped, so placement sees what runs where;
    being the only host, its share is the fleet's count."""

    def __init__(self, registry: Registry, host: str, faults: FleetFaults | None = None) -> None:
        super().__init__(faults=faults)
        self.registry = registry
        self.host = host

    def scale_up(
        self,
        fleet: FleetRecord,
        count: int,
        progress: Progress,
        *,
        indices: list[int] | None = None,
        share: bool = False,
    ) -> FleetStatus:
        status = super().scale_up(fleet, count, progress)
        live = self.registry.list_instances(fleet_id=fleet.fleet_id, host=self.host)
        used = {r.index for r in live}
        free = [i for i in (indices or range(count + len(used))) if i not in used]
        now = datetime.now(UTC)
        # All healthy at the agent's first look: in service together, in one write.
        self.registry.upsert_instances(
            [
                InstanceRecord(
                    instance_id=instance_id(fleet.fleet_id, index),
                    fleet_id=fleet.fleet_id,
                    endpoint=fleet.endpoint,
                    variant=fleet.variant,
                    index=index,
                    host=self.host,
                    state=InstanceState.IN_SERVICE,
                    started_at=now,
                    updated_at=now,
                )
                for index in free[: max(0, count - len(live))]
            ]
        )
        return status

    def scale_down(
        self, fleet_id: str, count: int, progress: Progress, *, share: bool = False
    ) -> FleetStatus:
        status = super().scale_down(fleet_id, count, progress)
        live = self.registry.list_instances(fleet_id=fleet_id, host=self.host)
        stopped = sorted(live, key=lambda r: r.index)[max(0, count) :]
        self.registry.delete_instances([r.instance_id for r in stopped])
        return status

    def adopt(self) -> dict[str, int]:
        return {}  # a restarted agent's adoption: a fake runs nothing to adopt


class FakeRouter:
    """Desired routing per endpoint with versions; `applied` lists (wall time, routing) for
    every change, so a test can see when traffic moved."""

    def __init__(self, state_file: Path | None = None, confirm_failures: int = 0) -> None:
        self.state = _FileState(
            state_file, {"routing": {}, "versions": {}, "applied": [], "calls": 0}
        )
        self.confirm_failures = confirm_failures
        self.confirm_delay = 0.0  # seconds each confirm takes

    def apply(self, routing: EndpointRouting, fence: RoutingFence | None = None) -> int:
        doc = routing.model_dump(mode="json")
        with self.state.lock:
            self.state.data["calls"] += 1
            if fence is not None:  # which steps wrote, for tests that look
                self.state.data.setdefault("fences", []).append([fence.deployment_id, fence.step])
            versions = self.state.data["versions"]
            if self.state.data["routing"].get(routing.endpoint) == doc:
                return int(versions[routing.endpoint])
            versions[routing.endpoint] = versions.get(routing.endpoint, 0) + 1
            self.state.data["routing"][routing.endpoint] = doc
            self.state.data["applied"].append([time.time(), doc])
            self.state.save()
            return int(versions[routing.endpoint])

    def confirm(
        self, endpoint: str, version: int, timeout_seconds: float, progress: Progress
    ) -> None:
        progress(f"confirming {endpoint} v{version}")
        time.sleep(self.confirm_delay)
        if self.confirm_failures > 0:
            self.confirm_failures -= 1
            raise ServiceUnavailable("injected: the data plane did not answer")

    @property
    def calls(self) -> int:
        """How many times `apply` was called, effective or not."""
        return int(self.state.data["calls"])

    def routing(self, endpoint: str) -> EndpointRouting | None:
        doc = self.state.data["routing"].get(endpoint)
        return EndpointRouting.model_validate(doc) if doc else None

    @property
    def applied(self) -> list[tuple[float, EndpointRouting]]:
        return [(at, EndpointRouting.model_validate(doc)) for at, doc in self.state.data["applied"]]

    def shares(self, endpoint: str) -> dict[str, float]:
        """fleet id -> share of the variant's traffic, as routed now."""
        routing = self.routing(endpoint)
        if routing is None:
            return {}
        return {f.fleet_id: f.share for v in routing.variants for f in v.fleets}


class FakeAlarms:
    """Alarm states by name; `set_state` is what a test does to trip one."""

    def __init__(self, names: list[str] | None = None, fail_reads: int = 0) -> None:
        self._lock = threading.Lock()
        self._states = {n: AlarmState(name=n, state="OK") for n in names or []}
        self.fail_reads = fail_reads
        self.reads = 0
        # When set, every state says it was last evaluated then (a hung evaluator).
        self.evaluated_at: datetime | None = None

    def set_state(self, name: str, state: str, reason: str = "") -> None:
        with self._lock:
            self._states[name] = AlarmState(name=name, state=state, reason=reason)

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        with self._lock:
            self.reads += 1
            if self.fail_reads > 0:
                self.fail_reads -= 1
                raise ServiceUnavailable("injected: alarms unavailable")
            found = {n: self._states[n] for n in names if n in self._states}
            if self.evaluated_at is not None:
                stamp = {"evaluated_at": self.evaluated_at}
                found = {n: s.model_copy(update=stamp) for n, s in found.items()}
            return found
