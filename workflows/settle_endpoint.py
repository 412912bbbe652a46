"""SettleEndpoint: finish, for a workflow that is gone, what its rollback would have done.

Started by the worker's reconciler (worker/reconciler.py), or by the API when an
AbortDeployment finds no open run (then its input names who aborted), under the endpoint's own
workflow id (`endpoint/<name>`) when the registry says a deployment holds the endpoint but no
workflow of that deployment is open any more (`temporal workflow terminate`, a timeout, a lost
history). Without it the endpoint would stay Updating for good and refuse every operation.

An update goes back to its serving fleet with the ordinary rollback (InService, FailureReason
saying why); a create is cleaned up (Failed, as a failed create is on AWS); anything that never
got a plan, or a delete, is released (Failed or InService, per release_endpoint). AbortDeployment
on the endpoint meanwhile is accepted: the endpoint is already being rolled back, which is what
an abort asks for.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import models as act
    from greenshift import names
    from greenshift.names import SETTLE_ENDPOINT
    from greenshift.status import DeploymentOutcome, EndpointStatus, RollbackReason
    from workflows import options
    from workflows.calls import run_activity
    from workflows.deployment import DeploymentWorkflow, Settled
    from workflows.inputs import failure_message
    from workflows.messages import ABORT, ControlRequest, ControlResult
    from workflows.state import Abort, DeploymentPhase


@workflow.defn(name=SETTLE_ENDPOINT)
class SettleEndpoint(DeploymentWorkflow):
    @workflow.run
    async def run(self, data: act.SettleInput) -> str:
        """Returns the action taken (`nothing`, `release`, `rollback`, `clean_up`)."""
        plan = await run_activity(names.PREPARE_SETTLE, data, options.REGISTRY, act.SettlePlan)
        if plan.action == "release":
            await run_activity(
                names.RELEASE_ENDPOINT,
                act.ReleaseInput(
                    endpoint=data.endpoint,
                    deployment_id=data.deployment_id,
                    reason=data.reason,
                    at=workflow.now(),
                ),
                options.FINISH,
                None,
            )
        elif plan.action in ("rollback", "clean_up") and plan.prepared is not None:
            self.state.prepared = plan.prepared
            self.state.started_steps = plan.started_steps
            self.state.index = plan.step_index
            self.state.forward_done = True  # nothing goes forward: pause/resume/promote refuse
            if data.aborted_by is not None:  # an AbortDeployment started this settling
                await self._record_abort(data.aborted_by, data.abort_reason)
            abort = Abort(RollbackReason.ABORTED, data.reason)
            if plan.action == "rollback":
                settled = await self._shielded(lambda: self._rollback(abort))
            else:
                settled = await self._shielded(lambda: self._clean_up(abort))
            await self._shielded(lambda: self._finish(settled, False))
        self.state.finished = True
        self.state.phase = DeploymentPhase.FINISHED
        await workflow.wait_condition(workflow.all_handlers_finished)
        return plan.action

    async def _clean_up(self, abort: Abort) -> Settled:
        """A create: no old fleet to return to; the routing and every new instance go."""
        prepared = self._require_prepared()
        self.state.phase = DeploymentPhase.CLEANING_UP
        reason = abort.message
        try:
            await run_activity(names.CLEAR_ROUTING, prepared.ref, options.TRAFFIC, None)
            await run_activity(
                names.RETIRE_FLEETS,
                act.FleetsInput(ref=prepared.ref, fleet_ids=sorted(prepared.fleets.values())),
                options.TERMINATE,
                None,
            )
        except ActivityError as error:
            reason = f"{reason} Cleaning up failed: {failure_message(error)}"
        return Settled(EndpointStatus.FAILED, DeploymentOutcome.FAILED, reason)

    # AbortDeployment on an endpoint being settled: accepted (it is rolling back already).
    @workflow.update(name=ABORT)
    async def abort(self, request: ControlRequest) -> ControlResult:  # type: ignore[override]
        await self._record_abort(request.actor, request.reason)
        return ControlResult(
            accepted=True,
            message="The deployment's workflow is gone; the endpoint is being rolled back.",
        )

    async def _record_abort(self, actor: str, why: str) -> None:
        reason = f": {why}" if why else "."
        await self._event("Aborted", f"Aborted by {actor}{reason}", actor)

    @abort.validator
    def _validate_abort(self, request: ControlRequest) -> None:
        if self.state.finished:
            raise ValueError("The endpoint has been settled.")
