"""DeleteEndpoint: Deleting → routing removed → every fleet to 0 → record removed
(DescribeEndpoint then answers ValidationException, which botocore's endpoint_deleted waits for).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import models as act
    from greenshift import names
    from greenshift.contracts.sagemaker_shapes import DeleteEndpointInput
    from greenshift.names import DELETE_ENDPOINT
    from workflows import hosts, options
    from workflows.inputs import (
        business_failure,
        deployment_id_of,
        parse_input,
        release_after_failed_prepare,
    )


def _kwargs(opts: options.ActivityOptions) -> dict[str, Any]:
    return {
        "start_to_close_timeout": opts.start_to_close,
        "heartbeat_timeout": opts.heartbeat,
        "retry_policy": opts.retry(),
    }


@workflow.defn(name=DELETE_ENDPOINT)
class DeleteEndpoint:
    @workflow.run
    async def run(self, request: Any, deployment_id: str | None = None) -> dict[str, str]:
        parse_input(DeleteEndpointInput, request)
        data = act.PrepareInput(
            request=request,
            deployment_id=deployment_id_of(deployment_id),
            workflow_id=workflow.info().workflow_id,
            started_at=workflow.now(),
        )
        try:
            prepared = await workflow.execute_activity(
                names.PREPARE_DELETE,
                data,
                result_type=act.PreparedDelete,
                **_kwargs(options.REGISTRY),
            )
        except ActivityError as error:
            failure = business_failure(error)
            await release_after_failed_prepare(
                request.get("EndpointName"), data.deployment_id, failure
            )
            raise failure from None
        # Every step is idempotent and retried: a delete, once accepted, goes through.
        await workflow.execute_activity(
            names.CLEAR_ROUTING, prepared.ref, **_kwargs(options.TRAFFIC)
        )

        async def retire() -> None:
            await workflow.execute_activity(
                names.RETIRE_FLEETS,
                act.FleetsInput(ref=prepared.ref, fleet_ids=prepared.fleet_ids),
                **_kwargs(options.TERMINATE),
            )

        if workflow.patched(hosts.PATCH):
            await hosts.retire_fleets(prepared.fleet_ids, options.TERMINATE, retire)
        else:
            await retire()
        await workflow.execute_activity(
            names.REMOVE_ENDPOINT, prepared.ref, **_kwargs(options.REGISTRY)
        )
        return {"EndpointArn": prepared.endpoint_arn}
