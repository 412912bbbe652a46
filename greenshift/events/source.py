"""Where events come from: the API process watches the registry.

Decision: events are derived from the registry, not sent by the workflow activities. The
registry is already the record of every status change and every deployment step (the
activities write the event log there), so one poller in the API process sees everything,
whichever worker ran the step, and a worker that dies mid-send loses nothing. Stable event ids
(greenshift.events.model) make a repeat harmless. The first pass only takes a baseline: an API
restart does not replay history at the webhooks.

Blocking registry calls run in a thread; the poller never touches a deployment's path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread

from greenshift.events.model import (
    deployment_state_event,
    endpoint_deleted_event,
    endpoint_state_event,
)
from greenshift.registry.api import ListQuery, Registry
from greenshift.registry.records import EndpointRecord
from greenshift.settings import Settings
from greenshift.status import DeploymentOutcome

log = logging.getLogger("greenshift.events")

Publish = Callable[[dict[str, Any]], None]


class RegistryEventSource:
    """Turns registry changes into events for `publish` (e.g. `WebhookPublisher.publish`)."""

    def __init__(self, registry: Registry, settings: Settings, publish: Publish) -> None:
        self.registry = registry
        self.settings = settings
        self.publish = publish
        self._status: dict[str, tuple[str, str]] = {}  # name -> (status, arn)
        self._seq: dict[str, int] = {}  # deployment id -> last event seq seen
        self._done: set[str] = set()
        self._baseline = True

    def _all_endpoints(self) -> list[EndpointRecord]:
        records: list[EndpointRecord] = []
        token: str | None = None
        for _ in range(10_000):  # bounded: 100 per page
            page = self.registry.list_endpoints(ListQuery(max_results=100, next_token=token))
            records.extend(page.items)
            token = page.next_token
            if not token:
                break
        return records

    def poll_once(self) -> int:
        """One pass (blocking). Returns how many events it published."""
        published = 0
        records = {r.name: r for r in self._all_endpoints()}
        for name, record in records.items():
            seen = self._status.get(name)
            if seen is None or seen[0] != record.status.value:
                if not self._baseline:
                    self.publish(endpoint_state_event(record, self.settings))
                    published += 1
                self._status[name] = (record.status.value, record.arn)
        for name in [n for n in self._status if n not in records]:
            _, arn = self._status.pop(name)
            if not self._baseline:
                self.publish(endpoint_deleted_event(name, arn, datetime.now(UTC), self.settings))
                published += 1
        for deployment in self.registry.list_deployments(limit=100):
            did = deployment.deployment_id
            if did in self._done:
                continue
            events = self.registry.list_events(did, after_seq=self._seq.get(did, 0))
            for event in events:
                if not self._baseline:
                    endpoint = records.get(event.endpoint)
                    self.publish(deployment_state_event(event, endpoint, self.settings))
                    published += 1
            if events:
                self._seq[did] = max(e.seq or 0 for e in events)
            # An ended deployment whose log has been read once writes nothing more.
            if deployment.outcome != DeploymentOutcome.RUNNING:
                self._done.add(did)
        self._baseline = False
        return published

    async def run(self, interval_seconds: float = 1.0) -> None:
        """Poll until cancelled; a failing pass is logged and retried at the next interval."""
        while True:
            try:
                await anyio.to_thread.run_sync(self.poll_once)
            except Exception:
                log.warning("event poll failed", exc_info=True)
            await anyio.sleep(interval_seconds)
