"""Webhook delivery that never slows the caller.

`WebhookPublisher.publish` only appends to a bounded in-memory queue per URL and returns; one
daemon thread per URL posts the events in order, retrying with exponential backoff. When a
webhook is slow or dead its queue fills and the oldest events are dropped (counted in
`dropped`): a deployment never waits for a webhook. Threads rather than asyncio so both the
async API and the synchronous activities of the worker can publish.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpx

log = logging.getLogger("greenshift.events")


def parse_urls(value: str | None) -> list[str]:
    """`settings.webhook_urls` is comma-separated."""
    return [u.strip() for u in (value or "").split(",") if u.strip()]


class _Sender:
    """One URL: its queue, its thread, its counters."""

    def __init__(self, url: str, publisher: WebhookPublisher) -> None:
        self.url = url
        self.p = publisher
        self.queue: deque[dict[str, Any]] = deque()
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"webhook {url}", daemon=True)

    def empty(self) -> bool:
        return not self.queue

    def put(self, event: dict[str, Any]) -> None:
        with self.cond:
            if len(self.queue) >= self.p.max_queue:
                self.queue.popleft()
                self.p._count("dropped")
            self.queue.append(event)
            self.cond.notify()

    def _run(self) -> None:
        with httpx.Client(transport=self.p.transport, timeout=self.p.timeout) as client:
            while True:
                with self.cond:
                    while not self.queue and not self.p.stopping.is_set():
                        self.cond.wait()
                    if not self.queue:
                        return
                    event = self.queue[0]
                delivered = self._deliver(client, event)
                with self.cond:
                    # The event may have been dropped as the oldest while it was being sent.
                    if self.queue and self.queue[0] is event:
                        self.queue.popleft()
                    self.cond.notify_all()
                self.p._count("delivered" if delivered else "failed")

    def _deliver(self, client: httpx.Client, event: dict[str, Any]) -> bool:
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "X-Greenshift-Event-Id": event.get("id", "")}
        delay = self.p.backoff_seconds
        for attempt in range(1, self.p.max_attempts + 1):
            try:
                response = client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    return True
                # A 4xx other than 408/429 will not get better by retrying.
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    log.warning("webhook %s refused event: HTTP %s", self.url, response.status_code)
                    return False
            except httpx.HTTPError as exc:
                log.debug("webhook %s attempt %d failed: %s", self.url, attempt, exc)
            if attempt < self.p.max_attempts and self.p.stopping.wait(delay):
                return False
            delay = min(delay * 2, self.p.max_backoff_seconds)
        log.warning("webhook %s: event %s not delivered", self.url, event.get("id"))
        return False


class WebhookPublisher:
    """Deliver events to webhook URLs in the background.

    `transport` is httpx's transport hook: tests pass `httpx.MockTransport` to act as the
    webhook. Call `close()` to stop (pending events are given `drain_seconds` to go out).
    """

    def __init__(
        self,
        urls: Iterable[str],
        *,
        transport: httpx.BaseTransport | None = None,
        max_queue: int = 1000,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self.transport = transport
        self.max_queue = max_queue
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.timeout = timeout
        self.stopping = threading.Event()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._senders = [_Sender(url, self) for url in urls]
        for sender in self._senders:
            sender.thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self._senders)

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def publish(self, event: dict[str, Any]) -> None:
        """Queue `event` for every URL; returns at once."""
        for sender in self._senders:
            sender.put(event)

    def pending(self) -> int:
        return sum(len(s.queue) for s in self._senders)

    def flush(self, timeout: float) -> bool:
        """Wait until every queue is empty (True) or `timeout` passes (False)."""
        for sender in self._senders:
            with sender.cond:
                if not sender.cond.wait_for(sender.empty, timeout):
                    return False
        return True

    def close(self, drain_seconds: float = 2.0) -> None:
        self.flush(drain_seconds)
        self.stopping.set()
        for sender in self._senders:
            with sender.cond:
                sender.queue.clear()
                sender.cond.notify_all()
        for sender in self._senders:
            sender.thread.join(timeout=self.timeout + 1)
