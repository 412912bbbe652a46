"""Notice endpoints held by a workflow that is gone, and have them settled (issue 14 item 10).

The registry is the lock: an endpoint whose deployment's workflow was terminated (or timed out,
or lost) stays Updating forever, refusing every operation. The reconciler runs in the worker
beside the alarm watcher: every `interval` seconds it looks at the endpoints in progress, asks
Temporal whether the workflow of the deployment holding each one is still open, and for one that
has been held by a closed workflow for `grace` seconds (the API reserves the endpoint a moment
before it starts the workflow: one look is not enough), or at once when the closed run is the
deployment's own (its memo names it), it starts `SettleEndpoint` under the endpoint's workflow
id, which rolls it back to its serving fleet. The API does the same when an AbortDeployment meets
such an endpoint first (greenshift/orphans.py holds the rule and the start for both).

The rules are pure (`Sightings.due`, `orphans.settle_now`), the lookups are at the edges.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from temporalio.client import Client

from greenshift import orphans
from greenshift.orphans import WorkflowState
from greenshift.registry.api import ListQuery, Registry
from greenshift.registry.records import EndpointRecord
from greenshift.status import IN_PROGRESS, DeploymentOutcome

log = logging.getLogger("greenshift.worker.reconciler")


@dataclass(frozen=True)
class Held:
    """An endpoint held by a running deployment record, and that deployment's workflow id."""

    endpoint: str
    deployment_id: str
    workflow_id: str


@dataclass
class Sightings:
    """When each (endpoint, deployment) was first seen held by a closed workflow."""

    grace: float
    first_seen: dict[Held, float] = field(default_factory=dict)

    def due(self, orphaned: set[Held], now: float) -> list[Held]:
        """Those seen orphaned for at least `grace` seconds; forget those no longer orphaned."""
        for held in list(self.first_seen):
            if held not in orphaned:
                del self.first_seen[held]
        for held in orphaned:
            self.first_seen.setdefault(held, now)
        return sorted(
            (h for h, t in self.first_seen.items() if now - t >= self.grace),
            key=lambda h: h.endpoint,
        )


def held_endpoints(registry: Registry, max_pages: int = 100) -> list[Held]:
    """Endpoints in progress and the running deployment that holds each."""
    found: list[Held] = []
    for status in sorted(s.value for s in IN_PROGRESS):
        token: str | None = None
        for _ in range(max_pages):
            page = registry.list_endpoints(
                ListQuery(status_equals=status, sort_by="Name", max_results=100, next_token=token)
            )
            for endpoint in page.items:
                held = _held(registry, endpoint)
                if held is not None:
                    found.append(held)
            token = page.next_token
            if token is None:
                break
    return found


def still_held(registry: Registry, held: Held) -> bool:
    """Whether the endpoint is still held by that running deployment: read again after
    Temporal says its run is closed, because a settle that just ended released the endpoint
    before its run closed (and its memo names the same deployment)."""
    endpoint = registry.get_endpoint(held.endpoint)
    return endpoint is not None and _held(registry, endpoint) == held


def _held(registry: Registry, endpoint: EndpointRecord) -> Held | None:
    if endpoint.status not in IN_PROGRESS or endpoint.current_deployment_id is None:
        return None
    deployment = registry.get_deployment(endpoint.current_deployment_id)
    if deployment is None or deployment.outcome is not DeploymentOutcome.RUNNING:
        return None
    return Held(endpoint.name, deployment.deployment_id, deployment.workflow_id)


class Reconciler:
    def __init__(
        self,
        client: Client,
        registry: Registry,
        task_queue: str,
        interval_seconds: float = 5.0,
        grace_seconds: float = orphans.GRACE_SECONDS,
    ) -> None:
        self.client = client
        self.registry = registry
        self.task_queue = task_queue
        self.interval = interval_seconds
        self.sightings = Sightings(grace_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; a failed poll is logged and retried at the next tick."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:
                log.exception("reconciler poll failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass

    async def poll_once(self) -> list[Held]:
        """Start SettleEndpoint for every endpoint held by a closed workflow past the grace (at
        once when the closed run is the deployment's own); returns those it started (or found
        already started)."""
        held = await asyncio.to_thread(held_endpoints, self.registry)
        states: dict[Held, WorkflowState] = {}
        for h in held:
            state = await orphans.workflow_state(self.client, h.workflow_id)
            if not state.running:
                states[h] = state
        proven = {
            h for h, state in states.items() if orphans.settle_now(state, h.deployment_id, 0, 1)
        }
        graced = self.sightings.due(set(states), asyncio.get_running_loop().time())
        due = sorted(proven | set(graced), key=lambda h: h.endpoint)
        return [
            h
            for h in due
            if await self._settle(h, await orphans.workflow_state(self.client, h.workflow_id))
        ]

    async def _settle(self, h: Held, state: WorkflowState) -> bool:
        """Start the settle unless a run is open under the id; False: nothing to settle."""
        if state.running:
            return True  # came back to life (e.g. a settle already runs under the same id)
        if not await asyncio.to_thread(still_held, self.registry, h):
            return False  # settled meanwhile (a settle run that has just ended)
        log.warning(
            "endpoint %s held by closed workflow %s (%s): settling",
            h.endpoint,
            h.workflow_id,
            state.how,
        )
        await orphans.start_settle(
            self.client,
            self.task_queue,
            h.endpoint,
            h.deployment_id,
            orphans.settle_reason(h.workflow_id, state.how),
        )
        return True
