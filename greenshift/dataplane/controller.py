"""The router controller: makes HAProxy equal to the desired routing held in the registry.

Every tick (150 ms) it asks the registry for its routing generation; when that moved (or HAProxy
restarted, or a server removal is still pending, or every `resync_seconds` as a drift check) it
recomputes the desired state from `list_routing()` + `list_instances()` and applies it:
- a new set of backends/slots (new endpoint, variant or fleet) -> rewrite config, seamless reload;
- otherwise, through the runtime API: add/enable/disable/remove servers, swap the picks map.
Only then does it report `mark_applied(endpoint, version)` and `mark_generation_applied(gen)`:
a weight change counts as done once the data plane really has it.
HAProxy not running (first start, crash) -> write the whole desired state and start it: the
registry is the source of truth, so a restart rebuilds everything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from greenshift.capture.source import FleetCaptures
from greenshift.dataplane.config import Listen, render, render_picks, render_slots, server_line
from greenshift.dataplane.desired import DesiredState, compute
from greenshift.dataplane.haproxy import HAProxyProcess
from greenshift.dataplane.runtime import RuntimeApiError
from greenshift.dataplane.sigv4 import write_lua
from greenshift.heartbeat import problem_line
from greenshift.registry.api import Registry
from greenshift.settings import Settings, parse_access_keys

log = logging.getLogger(__name__)


def _access_keys(settings: Settings) -> dict[str, str]:
    """`settings.access_keys` ("AKID:SECRET,..."), as the control API reads it."""
    return parse_access_keys(settings.access_keys)


class RouterController:
    def __init__(
        self,
        registry: Registry,
        haproxy: HAProxyProcess,
        settings: Settings,
        interval: float = 0.15,
        resync_seconds: float = 5.0,
        access_log: bool = False,
    ) -> None:
        self.registry = registry
        self.haproxy = haproxy
        keys = _access_keys(settings)
        if keys:
            # InvokeEndpoint needs SigV4 as soon as keys are configured (issue 14 item 2).
            write_lua(haproxy.paths.sigv4_lua, keys, settings.region)
        self.listen = Listen(
            host=settings.host,
            runtime_port=settings.runtime_port,
            stats_port=settings.stats_port,
            account_id=settings.account_id,
            access_log=access_log,
            sigv4=bool(keys),
        )
        self.interval = interval
        self.resync_seconds = resync_seconds
        self.applied: DesiredState | None = None
        self._applied_starts = -1
        self._generation: int | None = None
        self._last_sync = 0.0
        self._pending_deletes: set[tuple[str, str]] = set()
        self._reported: dict[str, int] = {}
        self.reloads = 0
        self.restarts = 0
        self.captures = FleetCaptures(registry)

    # --- the loop ----------------------------------------------------------------------------
    def run(
        self, stop: threading.Event, report: Callable[[str | None], None] | None = None
    ) -> None:
        """Reconcile until `stop` is set; errors are logged and retried at the next tick. After
        each tick `report` is told what is wrong (one line), or None when all went well."""
        while not stop.is_set():
            problem: str | None = None
            try:
                self.sync_once()
            except Exception as e:  # keep reconciling: the next tick retries from the registry
                log.exception("router controller tick failed")
                self._generation = None
                problem = problem_line(str(e) or type(e).__name__)
            if report is not None:
                report(problem)
            stop.wait(self.interval)

    def sync_once(self, force: bool = False) -> bool:
        """One reconciliation; True when it looked at the registry and applied its state."""
        running = self.haproxy.alive()
        generation = self.registry.routing_generation()  # read first: later changes re-trigger
        due = time.monotonic() - self._last_sync >= self.resync_seconds
        if (
            running
            and not force
            and not due
            and not self._pending_deletes
            and generation == self._generation
            and self.haproxy.starts == self._applied_starts
        ):
            return False
        routings = self.registry.list_routing()
        fleet_ids = {f.fleet_id for r in routings for v in r.routing.variants for f in v.fleets}
        desired = compute(
            routings,
            self.registry.list_instances(),
            self.captures.rules(fleet_ids),
        )
        if not running:
            self._start(desired)
        else:
            self.apply(desired)
        # Report only what is new: the periodic drift check must not write to the registry.
        for endpoint, version in desired.versions.items():
            if self._reported.get(endpoint) != version:
                self.registry.mark_applied(endpoint, version)
                self._reported[endpoint] = version
        if generation != self._generation:
            self.registry.mark_generation_applied(generation)
        self._generation = generation
        self._last_sync = time.monotonic()
        return True

    # --- applying ----------------------------------------------------------------------------
    def _files(self, desired: DesiredState) -> tuple[str, str, str]:
        return (
            render(desired, self.haproxy.paths, self.listen),
            render_slots(desired),
            render_picks(desired),
        )

    def _start(self, desired: DesiredState) -> None:
        if self.haproxy.pid is not None:
            log.warning("HAProxy is not running any more: restarting it from the registry")
            self.haproxy.reap_after_crash()
            self.restarts += 1
        self.haproxy.write(*self._files(desired))
        self.haproxy.check()
        self.haproxy.start()
        self._pending_deletes.clear()
        self._mark(desired)

    def _mark(self, desired: DesiredState) -> None:
        self.applied = desired
        self._applied_starts = self.haproxy.starts

    def apply(self, desired: DesiredState) -> None:
        """Make the running HAProxy equal to `desired` (reload only if the topology changed)."""
        if (
            self.applied is None
            or self._applied_starts != self.haproxy.starts
            or self.applied.topology() != desired.topology()
        ):
            self.haproxy.write(*self._files(desired))
            self.haproxy.check()
            self.haproxy.reload()
            self.reloads += 1
            self._pending_deletes.clear()
            self._mark(desired)
            # The new worker read the files, but servers of a backend it kept may be in the
            # state file of the old one only; make sure the live state matches the desired one.
            self._apply_servers(desired)
            return
        self._apply_servers(desired)
        if desired.picks != self.applied.picks:
            # Picks first: a slot that leaves its one backend (a deployment's first shift) is
            # routed by the counter only once the slots map says so, and then finds its picks.
            self.haproxy.runtime.replace_map(self.haproxy.paths.picks_map, render_picks(desired))
            slots = render_slots(desired)
            if slots != render_slots(self.applied):
                self.haproxy.runtime.replace_map(self.haproxy.paths.slots_map, slots)
        # Keep the files equal to the live state so the next reload or restart starts from it.
        self.haproxy.write(*self._files(desired))
        self._mark(desired)

    def _apply_servers(self, desired: DesiredState) -> None:
        rt = self.haproxy.runtime
        live = {(s.backend, s.name): s for s in rt.servers()}
        wanted = set()
        for backend in desired.backends:
            for server in backend.servers:
                key = (backend.name, server.name)
                wanted.add(key)
                current = live.get(key)
                if current is None:
                    rt.add_server(
                        backend.name,
                        server_line(server.name, server.host, server.port, False, server.backup),
                    )
                    if server.enabled:
                        rt.set_state(backend.name, server.name, True)
                    continue
                if current.address != server.host or current.port != server.port:
                    rt.set_state(backend.name, server.name, False)
                    rt.checked(
                        f"set server {backend.name}/{server.name} "
                        f"addr {server.host} port {server.port}"
                    )
                    current = None
                if current is None or current.admin_maint == server.enabled:
                    rt.set_state(backend.name, server.name, server.enabled)
        self._pending_deletes = {k for k in self._pending_deletes if k in live and k not in wanted}
        for key, state in live.items():
            if key in wanted or key[0] not in {b.name for b in desired.backends}:
                continue
            if not state.admin_maint:
                rt.set_state(key[0], key[1], False)
            self._pending_deletes.add(key)
        for backend_name, server_name in sorted(self._pending_deletes):
            try:
                if rt.del_server(backend_name, server_name):
                    self._pending_deletes.discard((backend_name, server_name))
            except (RuntimeApiError, OSError):
                pass  # still has connections: stays in maintenance, retried next tick
