"""Traffic activities: write the absolute desired routing, then wait until the data plane has
really applied it (argo-rollouts' VerifyWeight), so a weight change counts only once it is live.
The step's progress, when it comes with the step, is recorded first (activities/fleet.py), and
the bake after it, when it comes too, is begun once the traffic is live.
"""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity

from activities.errors import business_errors, heartbeat_progress
from activities.fleet import ProgressRecorder, record_progress, record_step_progress
from activities.models import BakeStart, DeploymentRef, StepInput
from activities.routing import routing_for
from greenshift.errors import StaleRouting, ValidationError
from greenshift.names import CLEAR_ROUTING, SHIFT_TRAFFIC
from greenshift.planning.model import TrafficStep
from greenshift.ports import TrafficRouter
from greenshift.registry.records import EndpointRouting, RoutingFence

CONFIRM_TIMEOUT_SECONDS = 60.0


class TrafficActivities:
    def __init__(
        self, router: TrafficRouter, record_progress: ProgressRecorder | None = None
    ) -> None:
        self.router = router
        self.record_progress = record_progress

    @activity.defn(name=SHIFT_TRAFFIC)
    @business_errors
    def shift_traffic(self, data: StepInput) -> int:
        if not isinstance(data.step, TrafficStep):
            raise ValidationError(f"shift_traffic got a {data.step.kind} step")
        started = time.monotonic()
        record_step_progress(data, self.record_progress)
        routing = routing_for(data.ref.endpoint, data.step, data.fleets, data.routing_strategies)
        fence = None
        if data.fence_step is not None:
            fence = RoutingFence(deployment_id=data.ref.deployment_id, step=data.fence_step)
        version = self.router.apply(routing, fence)
        self.router.confirm(
            data.ref.endpoint, version, data.confirm_timeout_seconds, heartbeat_progress()
        )
        if data.bake_after is not None:
            self._begin_bake(data.bake_after, timedelta(seconds=time.monotonic() - started))
        return version

    def _begin_bake(self, bake: BakeStart, step_took: timedelta) -> None:
        """Record the following bake's progress as of now, in the workflow's time: when the
        workflow asked for the step, plus what the step took; it ends `seconds` later."""
        at = bake.progress.at + step_took
        ends_at = at + timedelta(seconds=bake.seconds)
        progress = bake.progress.model_copy(update={"at": at, "bake_ends_at": ends_at})
        record_progress(progress, self.record_progress)

    @activity.defn(name=CLEAR_ROUTING)
    @business_errors
    def clear_routing(self, ref: DeploymentRef) -> int:
        """No routing for the endpoint (a failed create cleaned up, a delete, a settling), as
        the deployment's last routing write: a traffic step of it that comes later is refused.
        A deployment that no longer holds the endpoint clears it unfenced, as before."""
        cleared = EndpointRouting(endpoint=ref.endpoint, variants=[])
        try:
            version = self.router.apply(cleared, RoutingFence.last(ref.deployment_id))
        except StaleRouting:
            version = self.router.apply(cleared)
        self.router.confirm(ref.endpoint, version, CONFIRM_TIMEOUT_SECONDS, heartbeat_progress())
        return version
