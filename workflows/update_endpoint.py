"""UpdateEndpoint: deploy a new EndpointConfig with the request's DeploymentConfig (blue/green
all at once, canary, linear, or rolling), roll back on alarm, deadline, failure or abort."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from greenshift import names
    from greenshift.contracts.sagemaker_shapes import UpdateEndpointInput
    from greenshift.names import UPDATE_ENDPOINT
    from workflows.deployment import DeploymentWorkflow
    from workflows.inputs import parse_input


@workflow.defn(name=UPDATE_ENDPOINT)
class UpdateEndpoint(DeploymentWorkflow):
    @workflow.run
    async def run(self, request: Any, deployment_id: str | None = None) -> dict[str, str]:
        """`request` is the UpdateEndpoint request JSON; `deployment_id` is given by the API
        (which reserved the endpoint under it) and derived here otherwise. `request` is typed Any
        on purpose: an input that is not even an object must fail the workflow with a typed error
        here, not fail decoding, which would retry the workflow task forever."""
        parse_input(UpdateEndpointInput, request)
        await self._prepare(names.PREPARE_UPDATE, request, deployment_id)
        return await self._deploy(self._rollback)
