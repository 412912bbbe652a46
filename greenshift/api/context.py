"""What every handler gets: settings, the registry, the workflow starter, the alarm lookup.

Built once by the server (or by a test with fakes) and passed to `build_app`; handlers never
reach for globals, so the tests swap any dependency without monkeypatching.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread

from greenshift.api.workflows import WorkflowStarter
from greenshift.ports import AlarmSource
from greenshift.registry.api import Registry
from greenshift.settings import Settings

T = TypeVar("T")

# Who sent the request being handled: the SigV4 access key, or None without authentication.
# Set by the app per request; the deployment controls record it as the actor.
principal: ContextVar[str | None] = ContextVar("principal", default=None)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiContext:
    settings: Settings
    registry: Registry
    starter: WorkflowStarter
    # Where "does this alarm exist?" is answered; None: alarm names are not checked.
    alarms: AlarmSource | None = None
    # The CloudWatch handler (greenshift.metrics.cloudwatch_api), mounted on the same port.
    cloudwatch: Any = None
    # The CloudWatch Logs reader (greenshift.logs.api.LogsApi), mounted on the same port.
    logs: Any = None
    clock: Callable[[], datetime] = field(default=utcnow)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call (the registry, an alarm lookup) off the event loop."""
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))
