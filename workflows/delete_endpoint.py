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
    from workflows.calls import run_activity, run_local
    from workflows.inputs import (
        business_failure,
        deployment_id_of,
        parse_input,
        release_after_failed_prepare,
    )


# The preparation, the routing cleared and the record removed as local activities (issue 17):
# registry writes and a confirm from the data plane, in the workflow task that needs them
# instead of an activity task and a workflow task each; retiring the fleets stays an activity
# (instances stop within a grace period). Asked first, before any local activity (see
# workflows/deployment.py, PREPARE_LOCAL_PATCH): a run with it has hosts.PATCH without asking.
DELETE_LOCAL_PATCH = "delete-local-1"

# Each fleet's placement as a local activity too (issue 17): with a host registered, as
# `greenshift up` registers its machine, a fleet retired is then one activity, the host's share
# stopped on its own queue, not PlaceFleet and that. The newest generation: asked first and
# alone, DELETE_LOCAL_PATCH implied.
DELETE_PLACE_LOCAL_PATCH = "delete-local-2"


@workflow.defn(name=DELETE_ENDPOINT)
class DeleteEndpoint:
    @workflow.run
    async def run(self, request: Any, deployment_id: str | None = None) -> dict[str, str]:
        parse_input(DeleteEndpointInput, request)
        place_local = workflow.patched(DELETE_PLACE_LOCAL_PATCH)
        local = place_local or workflow.patched(DELETE_LOCAL_PATCH)
        call = run_local if local else run_activity

        data = act.PrepareInput(
            request=request,
            deployment_id=deployment_id_of(deployment_id),
            workflow_id=workflow.info().workflow_id,
            started_at=workflow.now(),
        )
        try:
            prepared: act.PreparedDelete = await call(
                names.PREPARE_DELETE, data, options.REGISTRY, act.PreparedDelete
            )
        except ActivityError as error:
            failure = business_failure(error)
            await release_after_failed_prepare(
                request.get("EndpointName"), data.deployment_id, failure
            )
            raise failure from None
        # Every step is idempotent and retried: a delete, once accepted, goes through.
        await call(names.CLEAR_ROUTING, prepared.ref, options.TRAFFIC)

        async def retire() -> None:
            await run_activity(
                names.RETIRE_FLEETS,
                act.FleetsInput(ref=prepared.ref, fleet_ids=prepared.fleet_ids),
                options.TERMINATE,
            )

        if local or workflow.patched(hosts.PATCH):
            await hosts.retire_fleets(
                prepared.fleet_ids, options.TERMINATE, retire, local=place_local
            )
        else:
            await retire()
        await call(names.REMOVE_ENDPOINT, prepared.ref, options.REGISTRY)
        return {"EndpointArn": prepared.endpoint_arn}
