"""ReplaceInstances on the time-skipping server with fake placement, host and event activities: a
failed replacement is tried again after a durable backoff timer (a worker shut down while it
waits changes nothing: a new one replays the history and goes on), and gives up with a clear
event and failure when no host ever has room."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from greenshift.hosts import replacement
from greenshift.hosts.messages import (
    HostEventInput,
    HostScaleInput,
    HostShare,
    PlaceInput,
    Placement,
    ReplaceInput,
    ReplaceResult,
)
from greenshift.hosts.service import advertisement
from greenshift.hosts.store import HostStore
from greenshift.names import (
    HOST_SCALE_UP,
    PLACE_FLEET,
    RECORD_HOST_EVENT,
    REPLACE_INSTANCES,
    host_task_queue,
)
from greenshift.ports import FleetStatus
from greenshift.registry.sql import SqlRegistry
from tests.registry_records import fleet
from tests.workflow.test_dev_server import spawn_worker, stop, target_of
from workflows.replace_instances import ReplaceInstances

pytestmark = pytest.mark.timeout(60)

NO_ROOM = (
    "The hosts can hold 4 of the 6 ml.m5.large instance(s) requested (2 vCPU, 8 GiB each); "
    "2 more need room on a host that is not there."
)


@dataclass
class FakeHosts:
    """Placement answers from a script: "full" (ResourceLimitExceeded), "launch-fails" (the
    host's launch fails), "ok"; past the script, the last answer again."""

    queue: str
    script: list[str]
    placed_at: list[datetime] = field(default_factory=list)
    events: list[HostEventInput] = field(default_factory=list)
    launches: list[HostScaleInput] = field(default_factory=list)

    def host_queue(self) -> str:
        return host_task_queue(self.queue, "127.0.0.2")

    def _answer(self) -> str:
        return self.script[min(len(self.placed_at), len(self.script)) - 1]

    @activity.defn(name=PLACE_FLEET)
    async def place(self, data: PlaceInput) -> Placement:
        assert data.replace and data.grow
        self.placed_at.append(activity.info().scheduled_time)
        if self._answer() == "full":
            raise ApplicationError(NO_ROOM, type="ResourceLimitExceeded", non_retryable=True)
        share = HostShare(address="127.0.0.2", task_queue=self.host_queue(), count=2, indices=[4])
        return Placement(hosts_registered=True, shares=[share])

    @activity.defn(name=HOST_SCALE_UP)
    async def scale_up(self, data: HostScaleInput) -> FleetStatus:
        self.launches.append(data)
        if self._answer() == "launch-fails":
            raise ApplicationError(
                "The primary container for production variant AllTraffic did not pass the ping "
                "health check.",
                type="ProvisionFailed",
                non_retryable=True,
            )
        return FleetStatus(
            fleet_id=data.fleet_id, desired=data.count, healthy=data.count, launching=0, failed=0
        )

    @activity.defn(name=RECORD_HOST_EVENT)
    async def record(self, data: HostEventInput) -> bool:
        if all(e.key != data.key for e in self.events):
            self.events.append(data)
        return True

    def workers(self, env: WorkflowEnvironment) -> tuple[Worker, Worker]:
        # No workflow cache: every task replays the history, as a new worker process would.
        shared = Worker(
            env.client,
            task_queue=self.queue,
            workflows=[ReplaceInstances],
            activities=[self.place, self.record],
            max_cached_workflows=0,
        )
        host = Worker(env.client, task_queue=self.host_queue(), activities=[self.scale_up])
        return shared, host

    def types(self) -> list[str]:
        return [e.type for e in self.events]


def _gaps(times: list[datetime]) -> list[float]:
    """Seconds between consecutive placements, by the server's (skipped) clock."""
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


def _about(gaps: list[float], backoffs: list[float]) -> bool:
    """Each gap is its backoff plus the attempt's own (real, unskipped) run time, under 3 s even
    on a loaded machine."""
    return len(gaps) == len(backoffs) and all(
        b <= g < b + 3 for g, b in zip(gaps, backoffs, strict=True)
    )


async def test_a_failed_replacement_is_retried_after_a_backoff_that_survives_the_worker(
    env: WorkflowEnvironment,
) -> None:
    hosts = FakeHosts(f"q-{uuid.uuid4().hex[:8]}", ["full", "launch-fails", "ok"])
    data = ReplaceInput(fleet_id="ep.A.d1", lost_host="127.0.0.4", first_backoff_seconds=60)
    shared, host = hosts.workers(env)
    async with shared, host:
        handle = await env.client.start_workflow(
            REPLACE_INSTANCES,
            data,
            id=f"replace/{data.fleet_id}",
            task_queue=hosts.queue,
            result_type=ReplaceResult,
        )
        # Attempt 1 fails at once; its backoff (60 s) is a timer nobody skips while no client
        # waits on the result, so the workers stop in the middle of it.
        deadline = time.monotonic() + 20
        while replacement.REPLACEMENT_RETRYING not in hosts.types():
            assert time.monotonic() < deadline, hosts.events
            await asyncio.sleep(0.05)
    assert len(hosts.placed_at) == 1 and hosts.launches == []

    shared, host = hosts.workers(env)  # a new worker: no memory of the first but the history
    async with shared, host:
        result = await handle.result()
    assert result == ReplaceResult(fleet_id="ep.A.d1", attempts=3, healthy=2, desired=2)
    assert len(hosts.placed_at) == 3 and len(hosts.launches) == 2
    gaps = _gaps(hosts.placed_at)
    assert _about(gaps, [60, 60]), gaps  # 60, then min(60 cap, 120)
    assert hosts.types() == [
        replacement.REPLACEMENT_RETRYING,
        replacement.REPLACEMENT_RETRYING,
        replacement.INSTANCES_REPLACED,
    ]
    assert f"ResourceLimitExceeded: {NO_ROOM}" in hosts.events[0].message
    assert "ProvisionFailed: The primary container" in hosts.events[1].message
    assert "Trying again in 60 s." in hosts.events[1].message
    assert "back to 2 of 2 healthy instance(s)" in hosts.events[2].message
    assert "(attempt 3)" in hosts.events[2].message


async def test_no_host_with_room_gives_up_after_the_last_attempt_saying_why(
    env: WorkflowEnvironment,
) -> None:
    hosts = FakeHosts(f"q-{uuid.uuid4().hex[:8]}", ["full"])
    data = ReplaceInput(fleet_id="ep.A.d1", lost_host="127.0.0.4", attempts=4)
    shared, host = hosts.workers(env)
    async with shared, host:
        handle = await env.client.start_workflow(
            REPLACE_INSTANCES, data, id=f"replace/{data.fleet_id}", task_queue=hosts.queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == replacement.REPLACEMENT_ABANDONED
    assert cause.message.startswith(
        "Gave up replacing the instances of fleet ep.A.d1 lost with host 127.0.0.4 after 4 "
        f"attempt(s): ResourceLimitExceeded: {NO_ROOM}"
    ), cause.message
    assert hosts.launches == []
    gaps = _gaps(hosts.placed_at)
    assert _about(gaps, [2, 4, 8]), gaps
    assert hosts.types() == [replacement.REPLACEMENT_RETRYING] * 3 + [
        replacement.REPLACEMENT_ABANDONED
    ]
    assert hosts.events[-1].message == cause.message


async def _spawn(target: str, queue: str, state: Path) -> asyncio.subprocess.Process:
    return await spawn_worker(target, queue, state, "tests.workflow.replace_worker_proc")


@pytest.mark.timeout(120)
async def test_a_worker_sigkilled_in_the_backoff_leaves_the_replacement_to_the_next_one(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """On a real dev server, with the real placement on a SQLite registry: the only host has
    room for 1 of the 2 instances, so attempt 1 fails with ResourceLimitExceeded; the worker is
    SIGKILLed while it waits; the host gains room; a new worker process finishes the job."""
    queue = f"replace-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = SqlRegistry(url)
    store = HostStore(url)
    store.register(advertisement("127.0.0.2", queue, vcpus=2))  # one ml.m5.large
    registry.upsert_fleet(fleet(desired_count=2))
    launched: list[HostScaleInput] = []

    @activity.defn(name=HOST_SCALE_UP)
    async def scale_up(data: HostScaleInput) -> FleetStatus:
        launched.append(data)
        return FleetStatus(
            fleet_id=data.fleet_id, desired=data.count, healthy=data.count, launching=0, failed=0
        )

    host = Worker(
        dev_env.client, task_queue=host_task_queue(queue, "127.0.0.2"), activities=[scale_up]
    )
    procs = [await _spawn(target_of(dev_env), queue, tmp_path)]
    try:
        async with host:
            data = ReplaceInput(fleet_id="ep.A.d1", lost_host="127.0.0.4", first_backoff_seconds=4)
            handle = await dev_env.client.start_workflow(
                REPLACE_INSTANCES,
                data,
                id=f"replace/{data.fleet_id}/{queue}",
                task_queue=queue,
                result_type=ReplaceResult,
            )
            deadline = time.monotonic() + 30
            while not registry.list_events("d1"):
                assert time.monotonic() < deadline, "attempt 1 did not fail"
                await asyncio.sleep(0.1)
            procs[0].kill()
            await asyncio.wait_for(procs[0].wait(), timeout=10)
            store.register(advertisement("127.0.0.2", queue, vcpus=4))  # room for both now
            procs.append(await _spawn(target_of(dev_env), queue, tmp_path))
            result = await asyncio.wait_for(handle.result(), timeout=60)
        events = registry.list_events("d1")
    finally:
        for proc in procs:
            await stop(proc)
        store.close()
        registry.close()
    assert result == ReplaceResult(fleet_id="ep.A.d1", attempts=2, healthy=2, desired=2)
    assert [e.type for e in events] == [
        replacement.REPLACEMENT_RETRYING,
        replacement.INSTANCES_REPLACED,
    ]
    assert "ResourceLimitExceeded: The hosts can hold 1 of the 2" in events[0].message
    assert [(d.count, d.indices) for d in launched] == [(2, [0, 1])]
