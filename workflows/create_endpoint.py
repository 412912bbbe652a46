"""CreateEndpoint: Creating → provision every variant → routing → InService. A failure leaves the
endpoint Failed with its FailureReason and no instance behind (only DeleteEndpoint is accepted
then, as on AWS)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import models as act
    from greenshift import names
    from greenshift.contracts.sagemaker_shapes import CreateEndpointInput
    from greenshift.names import CREATE_ENDPOINT
    from greenshift.status import DeploymentOutcome, EndpointStatus
    from workflows import hosts, options
    from workflows.calls import run_activity
    from workflows.deployment import DeploymentWorkflow, Settled
    from workflows.inputs import failure_message, parse_input
    from workflows.state import Abort, DeploymentPhase


@workflow.defn(name=CREATE_ENDPOINT)
class CreateEndpoint(DeploymentWorkflow):
    @workflow.run
    async def run(self, request: Any, deployment_id: str | None = None) -> dict[str, str]:
        parse_input(CreateEndpointInput, request)
        await self._prepare(names.PREPARE_CREATE, request, deployment_id)
        return await self._deploy(self._clean_up)

    async def _clean_up(self, abort: Abort) -> Settled:
        """No old fleet to return to: take the routing away and stop every new instance."""
        prepared = self._require_prepared()
        self.state.phase = DeploymentPhase.CLEANING_UP
        reason = abort.message
        try:
            await run_activity(names.CLEAR_ROUTING, prepared.ref, options.TRAFFIC, None)
            fleet_ids = sorted(prepared.fleets.values())

            def retire() -> Awaitable[Any]:
                return run_activity(
                    names.RETIRE_FLEETS,
                    act.FleetsInput(ref=prepared.ref, fleet_ids=fleet_ids),
                    options.TERMINATE,
                    None,
                )

            if self._patched(hosts.PATCH):
                await hosts.retire_fleets(fleet_ids, options.TERMINATE, retire)
            else:
                await retire()
        except ActivityError as error:
            # Failed either way; say that instances may be left for DeleteEndpoint to stop.
            reason = f"{reason} Cleaning up failed: {failure_message(error)}"
        return Settled(EndpointStatus.FAILED, DeploymentOutcome.FAILED, reason)
