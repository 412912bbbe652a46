"""The TrafficRouter deployments drive: desired routing goes into the registry, and `confirm`
waits for the router controller's report that HAProxy has it (argo-rollouts' VerifyWeight)."""

from __future__ import annotations

import time
from collections.abc import Callable

from greenshift.errors import GreenshiftError
from greenshift.ports import Progress
from greenshift.registry.api import Registry
from greenshift.registry.records import EndpointRouting, RoutingFence


class RoutingNotAppliedError(GreenshiftError):
    """The data plane did not apply a routing version in time (the router controller is down or
    HAProxy refuses the state)."""

    code = "RoutingNotApplied"
    http_status = 500
    retryable = True


class RegistryTrafficRouter:
    """greenshift.ports.TrafficRouter over the registry. Blocking; activities run it in a thread."""

    def __init__(
        self,
        registry: Registry,
        poll_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._clock = clock

    def apply(self, routing: EndpointRouting, fence: RoutingFence | None = None) -> int:
        """Absolute desired routing; writing the same routing again keeps its version."""
        return self.registry.set_routing(routing, fence)

    def confirm(
        self, endpoint: str, version: int, timeout_seconds: float, progress: Progress
    ) -> None:
        deadline = self._clock() + timeout_seconds
        while True:
            record = self.registry.get_routing(endpoint)
            applied = record.applied_version if record else 0
            if applied >= version:
                return
            if self._clock() >= deadline:
                raise RoutingNotAppliedError(
                    f"The data plane has routing version {applied} of endpoint {endpoint}, "
                    f"not {version}, after {timeout_seconds:g} s."
                )
            progress(f"waiting for the data plane to apply routing v{version} (has v{applied})")
            self._sleep(self.poll_seconds)
