"""Notice endpoints held by a workflow that is gone, and have them settled (issue 14 item 10).

The registry is the lock: an endpoint whose deployment's workflow was terminated (or timed out,
or lost) stays Updating forever, refusing every operation. The reconciler runs in the worker
beside the alarm watcher: every `interval` seconds it looks at the endpoints in progress, asks
Temporal whether the workflow of the deployment holding each one is still open, and for one that
has been held by a closed workflow for `grace` seconds (the API reserves the endpoint a moment
before it starts the workflow: one look is not enough) it starts `SettleEndpoint` under the
endpoint's workflow id, which rolls it back to its serving fleet.

The rule is pure (`Sightings.due`), the lookups are at the edges.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.models import SettleInput
from greenshift import naming
from greenshift.registry.api import ListQuery, Registry
from greenshift.status import IN_PROGRESS, DeploymentOutcome
from workflows.inputs import MEMO_DEPLOYMENT_ID

log = logging.getLogger("greenshift.worker.reconciler")

SETTLE_WORKFLOW = "SettleEndpoint"


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
                if endpoint.current_deployment_id is None:
                    continue
                deployment = registry.get_deployment(endpoint.current_deployment_id)
                if deployment is not None and deployment.outcome is DeploymentOutcome.RUNNING:
                    found.append(
                        Held(endpoint.name, deployment.deployment_id, deployment.workflow_id)
                    )
            token = page.next_token
            if token is None:
                break
    return found


class Reconciler:
    def __init__(
        self,
        client: Client,
        registry: Registry,
        task_queue: str,
        interval_seconds: float = 5.0,
        grace_seconds: float = 15.0,
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
        """Start SettleEndpoint for every endpoint held by a closed workflow past the grace;
        returns those it started (or found already started)."""
        held = await asyncio.to_thread(held_endpoints, self.registry)
        orphaned = set()
        for h in held:
            status = await self._workflow_status(h.workflow_id)
            if status is not WorkflowExecutionStatus.RUNNING:
                orphaned.add(h)
        due = self.sightings.due(orphaned, asyncio.get_running_loop().time())
        for h in due:
            await self._settle(h, await self._workflow_status(h.workflow_id))
        return due

    async def _workflow_status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        """The status of the latest run of `workflow_id`; None when Temporal has no such id."""
        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return description.status

    async def _settle(self, h: Held, status: WorkflowExecutionStatus | None) -> None:
        if status is WorkflowExecutionStatus.RUNNING:
            return  # came back to life (e.g. a settle already runs under the same id)
        how = status.name if status is not None else "NOT_FOUND"
        reason = (
            f"The workflow {h.workflow_id} of this deployment ended ({how}) before it settled "
            "the endpoint; Greenshift rolled the endpoint back to the fleet it was serving from."
        )
        log.warning(
            "endpoint %s held by closed workflow %s (%s): settling", h.endpoint, h.workflow_id, how
        )
        await self.client.start_workflow(
            SETTLE_WORKFLOW,
            SettleInput(
                endpoint=h.endpoint,
                deployment_id=h.deployment_id,
                reason=reason,
                at=datetime.now(UTC),
            ),
            id=naming.workflow_id(h.endpoint),
            task_queue=self.task_queue,
            memo={MEMO_DEPLOYMENT_ID: h.deployment_id},
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
