"""One host's presence in the fleet: register, heartbeat, and poll the host's own task queue for
its instance activities. Runs inside `greenshift agent` (one per host) and inside the worker of
`greenshift up` (its local agent), so one machine works as before."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.worker import Worker

from greenshift.fleet.agent import FleetAgent
from greenshift.hosts.activities import HostActivities
from greenshift.hosts.healer import lost_with_host
from greenshift.hosts.records import HostRecord
from greenshift.hosts.store import HostStore
from greenshift.names import host_task_queue
from greenshift.registry.api import Registry

log = logging.getLogger("greenshift.hosts")

# Host activities are blocking (launches, health waits): they run in threads of their own.
HOST_ACTIVITY_THREADS = 32


def advertisement(
    address: str,
    base_queue: str,
    *,
    vcpus: int = 0,
    memory_gib: float = 0.0,
    gpus: int = 0,
    instance_types: list[str] | None = None,
) -> HostRecord:
    """What this host registers: its address, its task queue and its room (0: unlimited)."""
    now = datetime.now(UTC)
    return HostRecord(
        address=address,
        task_queue=host_task_queue(base_queue, address),
        vcpus=vcpus,
        memory_gib=memory_gib,
        gpus=gpus,
        instance_types=instance_types or [],
        registered_at=now,
        heartbeat_at=now,
    )


def machine_vcpus() -> int:
    return os.cpu_count() or 1


class HostService:
    def __init__(
        self,
        client: Client,
        agent: FleetAgent,
        registry: Registry,
        store: HostStore,
        host: HostRecord,
        heartbeat_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self.agent = agent
        self.registry = registry
        self.store = store
        self.host = host
        self.heartbeat_seconds = heartbeat_seconds

    def worker(self, executor: ThreadPoolExecutor) -> Worker:
        """A worker on this host's queue only: no workflows, just this host's activities."""
        return Worker(
            self.client,
            task_queue=self.host.task_queue,
            activities=HostActivities(self.agent, self.registry, self.store).all(),
            activity_executor=executor,
            max_concurrent_activities=HOST_ACTIVITY_THREADS,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Register, then heartbeat and serve the host queue until `stop` is set."""
        await asyncio.to_thread(self.store.register, self.host)
        log.info("host %s registered on task queue %s", self.host.address, self.host.task_queue)
        with ThreadPoolExecutor(HOST_ACTIVITY_THREADS, thread_name_prefix="host-act") as pool:
            async with self.worker(pool):
                await self._heartbeat(stop)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                known = await asyncio.to_thread(self.store.heartbeat, self.host.address)
                if not known:  # removed by an operator while alive: register again
                    await asyncio.to_thread(self.store.register, self.host)
                if await asyncio.to_thread(self._written_off):
                    # This host was taken for lost (a stall, a partition) and its instances
                    # replaced elsewhere: stop ours, as a restarted agent's adoption would.
                    await asyncio.to_thread(self.agent.adopt)
            except Exception:  # a missed beat is retried; the bound tolerates a few
                log.exception("heartbeat of host %s failed", self.host.address)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.heartbeat_seconds)

    def _written_off(self) -> bool:
        reasons = self.registry.stopping_reasons(self.host.address)
        return any(lost_with_host(reason, self.host.address) for reason in reasons)
