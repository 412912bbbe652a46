"""Host loss: a host whose heartbeat is older than the bound has its instances taken out of
rotation at once and replaced on the other hosts.

Runs in every worker beside the alarm watcher (a loop, not a workflow: polling from a workflow
would cost history per tick). Each step is idempotent, so several workers healing at once agree:
marking an instance Stopping twice is the same write, and the replacement is a workflow whose id
is the fleet's, started once however many workers ask. A lost host's instances stay recorded as
Stopping: when the host comes back its agent's `adopt()` stops whatever is still running of them
and deletes the records, so nothing is doubled and nothing orphaned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from contextlib import suppress
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from greenshift.hosts import replacement
from greenshift.hosts.events import record_host_event
from greenshift.hosts.messages import HostEventInput, ReplaceInput
from greenshift.hosts.records import HostRecord, is_alive
from greenshift.hosts.shares import LIVE
from greenshift.hosts.store import HostStore
from greenshift.names import REPLACE_INSTANCES
from greenshift.registry.api import Registry
from greenshift.registry.records import FleetRecord, InstanceRecord
from greenshift.settings import Settings
from greenshift.status import InstanceState

log = logging.getLogger("greenshift.hosts.healer")

HOST_LOST_PREFIX = "host {address} lost"
HOST_LOST = HOST_LOST_PREFIX + ": no heartbeat for {seconds:g} s"


def lost_with_host(reason: str | None, address: str) -> bool:
    """Whether an instance's stopping reason is the healer's, for host `address` taken for lost."""
    return (reason or "").startswith(HOST_LOST_PREFIX.format(address=address))


def lost_hosts(hosts: list[HostRecord], now: datetime, lost_after: float) -> list[HostRecord]:
    return [h for h in hosts if not is_alive(h, now, lost_after)]


def serving_hosts(hosts: list[HostRecord], now: datetime, lost_after: float) -> set[str]:
    """The hosts a replacement may place on: alive and not draining."""
    return {h.address for h in hosts if is_alive(h, now, lost_after) and not h.draining}


def short_after_a_loss(
    fleets: list[FleetRecord], instances: list[InstanceRecord]
) -> dict[str, str]:
    """The fleets still short of their desired count after losing instances with a host (their
    records stay Stopping with the healer's reason), each with the host it lost them with."""
    live: Counter[str] = Counter(i.fleet_id for i in instances if i.state in LIVE)
    lost = {
        i.fleet_id: i.host
        for i in instances
        if i.state == InstanceState.STOPPING and i.host and lost_with_host(i.state_reason, i.host)
    }
    return {
        f.fleet_id: lost[f.fleet_id]
        for f in fleets
        if f.fleet_id in lost and not f.retired and live[f.fleet_id] < f.desired_count
    }


class Healer:
    def __init__(
        self, client: Client, registry: Registry, store: HostStore, settings: Settings
    ) -> None:
        self.client = client
        self.registry = registry
        self.store = store
        self.settings = settings
        self.lost_after = settings.host_lost_after_seconds
        self.interval = min(1.0, self.lost_after / 4)
        self._serving: set[str] | None = None  # at the last tick (None: no tick yet)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.heal_once()
            except Exception:  # a healer that dies silently leaves lost hosts in rotation
                log.exception("host healer tick failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    async def heal_once(self) -> list[str]:
        """Take the lost hosts' instances out of rotation; start a replacement per fleet that
        lost any, and again for every fleet still short after a loss once a host joins (a
        replacement that gave up for want of room goes on when room arrives). Returns the fleet
        ids a replacement was asked for."""
        fleets, joined = await asyncio.to_thread(self._survey)
        if joined:
            short = await asyncio.to_thread(self._short)
            for fleet_id, address in short.items():
                if fleet_id not in fleets:
                    log.info(
                        "host(s) %s joined: fleet %s, short since host %s was lost, is replaced",
                        ", ".join(sorted(joined)),
                        fleet_id,
                        address,
                    )
                    fleets[fleet_id] = address
        for fleet_id, address in sorted(fleets.items()):
            with suppress(WorkflowAlreadyStartedError):
                await self.client.start_workflow(
                    REPLACE_INSTANCES,
                    ReplaceInput(fleet_id=fleet_id, lost_host=address),
                    id=f"replace/{fleet_id}",
                    task_queue=self.settings.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                )
                log.warning("replacing the instances of fleet %s lost with %s", fleet_id, address)
        return sorted(fleets)

    def _survey(self) -> tuple[dict[str, str], set[str]]:
        """One read of the hosts per tick: the fleets that lost instances with a host now, and
        the hosts that joined since the last tick."""
        hosts = self.store.list()
        now = datetime.now(UTC)
        return self._out_of_rotation(hosts, now), self._joined(hosts, now)

    def _joined(self, hosts: list[HostRecord], now: datetime) -> set[str]:
        """Hosts that can take instances now and could not at the last tick (registered, back
        from a loss, or no longer draining); none at the first tick."""
        serving = serving_hosts(hosts, now, self.lost_after)
        joined = serving - self._serving if self._serving is not None else set()
        self._serving = serving
        return joined

    def _short(self) -> dict[str, str]:
        return short_after_a_loss(self.registry.list_fleets(), self.registry.list_instances())

    def _out_of_rotation(self, hosts: list[HostRecord], now: datetime) -> dict[str, str]:
        found: dict[str, str] = {}
        for host in lost_hosts(hosts, now, self.lost_after):
            reason = HOST_LOST.format(address=host.address, seconds=self.lost_after)
            live = [r for r in self.registry.list_instances(host=host.address) if r.state in LIVE]
            # Out of rotation together: one write, one change for the data plane to apply.
            self.registry.upsert_instances(
                [
                    r.model_copy(
                        update={
                            "state": InstanceState.STOPPING,
                            "state_reason": reason,
                            "updated_at": now,
                        }
                    )
                    for r in live
                ]
            )
            taken: Counter[str] = Counter(r.fleet_id for r in live)
            for fleet_id in taken:  # each fleet read once, not once per instance
                fleet = self.registry.get_fleet(fleet_id)
                if fleet is not None and not fleet.retired and fleet.desired_count > 0:
                    found[fleet_id] = host.address
            for fleet_id, count in sorted(taken.items()):
                self._report(host, fleet_id, count)
        return found

    def _report(self, host: HostRecord, fleet_id: str, count: int) -> None:
        """The event saying what was taken out of rotation; keyed by the host's last heartbeat,
        so several workers healing the same loss write it once."""
        record_host_event(
            self.registry,
            HostEventInput(
                fleet_id=fleet_id,
                type=replacement.HOST_LOST,
                message=replacement.host_lost_message(
                    host.address, self.lost_after, fleet_id, count
                ),
                key=f"host-lost/{host.address}/{host.heartbeat_at.isoformat()}/{fleet_id}",
                detail={"lost_host": host.address, "instances": count},
            ),
            datetime.now(UTC),
        )
