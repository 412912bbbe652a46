"""Watches the alarms of running deployments and signals a deployment when one trips.

Runs inside the worker process as a background task, not as a workflow: polling every half
second from a workflow would cost a timer and an activity per poll (a 28,800 s deployment would
blow the history), while a heartbeating watcher activity would stop the time-skipping server
from skipping. Here a trip costs the deployment one signal; the pull check at the end of every
bake catches any signal that was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from temporalio.client import Client

from greenshift.ports import AlarmSource
from greenshift.registry.api import ListQuery, Registry
from greenshift.registry.records import DeploymentRecord
from greenshift.status import DeploymentOutcome, EndpointStatus
from workflows.messages import ALARM_TRIPPED, AlarmTripped

log = logging.getLogger("greenshift.worker.alarms")

ALARM = "ALARM"


def _updating(next_token: str | None = None) -> ListQuery:
    """The endpoints in Updating: the only status in which a deployment watches alarms."""
    return ListQuery(
        status_equals=EndpointStatus.UPDATING.value,
        sort_by="Name",
        sort_order="Ascending",
        max_results=100,
        next_token=next_token,
    )


def watched_deployments(registry: Registry, max_pages: int = 100) -> list[DeploymentRecord]:
    """Running deployments with alarms, found through the endpoints they hold (cheap: endpoint
    rows, then one deployment each), not by scanning the deployment history."""
    found: list[DeploymentRecord] = []
    query = _updating()
    for _ in range(max_pages):
        page = registry.list_endpoints(query)
        for endpoint in page.items:
            if endpoint.current_deployment_id is None:
                continue
            deployment = registry.get_deployment(endpoint.current_deployment_id)
            if (
                deployment is not None
                and deployment.outcome is DeploymentOutcome.RUNNING
                and deployment.alarms
            ):
                found.append(deployment)
        if page.next_token is None:
            break
        query = _updating(page.next_token)
    return found


class AlarmWatcher:
    def __init__(
        self,
        client: Client,
        registry: Registry,
        alarms: AlarmSource,
        interval_seconds: float = 0.5,
        on_signal: Callable[[str, str], None] | None = None,
    ) -> None:
        self.client = client
        self.registry = registry
        self.alarms = alarms
        self.interval = interval_seconds
        self.on_signal = on_signal
        self._signalled: set[tuple[str, str]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; a failed poll is logged and retried at the next tick."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # a watcher that dies silently is worse than a noisy one
                log.exception("alarm watcher poll failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass

    async def poll_once(self) -> list[tuple[str, str]]:
        """Signal every running deployment whose alarm is in ALARM (once per deployment and
        alarm); returns the (deployment id, alarm) pairs signalled."""
        running = await asyncio.to_thread(watched_deployments, self.registry)
        live = {(d.deployment_id, a) for d in running for a in d.alarms}
        self._signalled &= live
        names = sorted({a for d in running for a in d.alarms})
        if not names:
            return []
        states = await asyncio.to_thread(self.alarms.states, names)
        sent: list[tuple[str, str]] = []
        for deployment in running:
            for name in deployment.alarms:
                state = states.get(name)
                key = (deployment.deployment_id, name)
                if state is None or state.state != ALARM or key in self._signalled:
                    continue
                try:
                    await self.client.get_workflow_handle(deployment.workflow_id).signal(
                        ALARM_TRIPPED, AlarmTripped(name=name, reason=state.reason)
                    )
                except Exception as error:  # finished meanwhile: the pull check covers it
                    log.warning("could not signal %s: %s", deployment.workflow_id, error)
                self._signalled.add(key)
                sent.append(key)
                if self.on_signal is not None:
                    self.on_signal(deployment.deployment_id, name)
        return sent
