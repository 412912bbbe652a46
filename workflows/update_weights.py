"""UpdateEndpointWeightsAndCapacities: resize the serving fleets and change variant weights in
place. Desired* show the request at once (prepare), Current* follow the steps."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from greenshift import names
    from greenshift.contracts.sagemaker_shapes import UpdateEndpointWeightsAndCapacitiesInput
    from greenshift.names import UPDATE_WEIGHTS
    from workflows.deployment import DeploymentWorkflow
    from workflows.inputs import parse_input


@workflow.defn(name=UPDATE_WEIGHTS)
class UpdateEndpointWeightsAndCapacities(DeploymentWorkflow):
    @workflow.run
    async def run(self, request: Any, deployment_id: str | None = None) -> dict[str, str]:
        parse_input(UpdateEndpointWeightsAndCapacitiesInput, request)
        await self._prepare(names.PREPARE_WEIGHTS, request, deployment_id)
        return await self._deploy(self._rollback)
