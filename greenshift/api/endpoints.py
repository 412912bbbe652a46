"""CreateEndpoint, DescribeEndpoint, UpdateEndpoint, DeleteEndpoint, ListEndpoints,
UpdateEndpointWeightsAndCapacities.

The four operations that change an endpoint validate synchronously (names, configs and models
exist, the status allows it, the same-config rule, variant names, alarms, quotas), then write the
registry and start the workflow, and return at once.

Registry first, workflow second, undo on failure: the registry is the record and the lock
(habit 7), so it is written before anything runs. CreateEndpoint inserts the endpoint (Creating)
with its deployment record; Update/Delete/Weights take the endpoint with `begin_operation`
(compare-and-set). Only then is the workflow started, with the deployment id in its memo, and its
first activity takes the endpoint again under the same id (idempotent). If the start fails
(Temporal down), the API undoes its write (deletes the new endpoint, or releases the endpoint
with its old status) and answers ServiceUnavailable: nothing is left half-done and the client's
retry starts from a clean state. DescribeEndpoint reads only the registry.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from greenshift import admission, naming, render
from greenshift import names as workflow_names  # the workflow types the API starts
from greenshift.admission import DELETABLE, REWEIGHTABLE, UPDATABLE, Planned
from greenshift.admission import check_status as check_status  # for deployments, groups
from greenshift.api.context import ApiContext
from greenshift.api.listing import list_query, page_doc
from greenshift.api.parsing import parse
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.tagging import tag_pairs
from greenshift.errors import GreenshiftError, ResourceInUse
from greenshift.registry.records import DeploymentRecord, EndpointConfigRecord, EndpointRecord
from greenshift.status import DeploymentOutcome, EndpointStatus

log = logging.getLogger("greenshift.api")


async def get_endpoint(ctx: ApiContext, name: str) -> EndpointRecord:
    return await ctx.run(admission.endpoint, ctx.registry, ctx.settings, name)


def _deployment(
    ctx: ApiContext, operation: str, name: str, request: dict[str, Any], **extra: Any
) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id=str(uuid.uuid4()),
        endpoint=name,
        operation=operation,
        workflow_id=naming.workflow_id(name),
        request=request,
        started_at=ctx.clock(),
        **extra,
    )


async def _mark_not_started(ctx: ApiContext, deployment_id: str, why: GreenshiftError) -> None:
    record = await ctx.run(ctx.registry.get_deployment, deployment_id)
    if record is None:
        return
    record = record.model_copy(
        update={
            "outcome": DeploymentOutcome.FAILED,
            "failure_reason": f"The workflow could not be started: {why.message}",
            "ended_at": ctx.clock(),
        }
    )
    await ctx.run(ctx.registry.update_deployment, record)


async def _start_or_release(
    ctx: ApiContext, workflow: str, deployment: DeploymentRecord, before: EndpointRecord
) -> None:
    """Start the workflow; if that fails, give the endpoint back as it was and re-raise."""
    try:
        await ctx.starter.start(
            workflow,
            deployment.request,
            workflow_id=deployment.workflow_id,
            deployment_id=deployment.deployment_id,
        )
    except GreenshiftError as exc:
        try:
            await ctx.run(
                ctx.registry.finish_operation,
                before.name,
                deployment.deployment_id,
                status=before.status,
                outcome=DeploymentOutcome.FAILED,
                variants=before.variants,
                failure_reason=before.failure_reason,
            )
            await _mark_not_started(ctx, deployment.deployment_id, exc)
        except Exception:
            log.exception("could not release endpoint %s after a failed start", before.name)
        raise


# --- operations ----------------------------------------------------------------------------


async def create_endpoint(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.CreateEndpointInput, doc)
    name = inp.EndpointName
    arn = ctx.settings.arn("endpoint", name)
    tags = tag_pairs(inp.Tags)
    existing = await ctx.run(ctx.registry.get_endpoint, name)
    if existing is not None:
        raise ResourceInUse(f'Cannot create already existing endpoint "{arn}".')
    config, models, _ = await ctx.run(
        admission.admit_create, ctx.registry, ctx.settings, ctx.alarms, inp, None
    )
    names = admission.alarm_names(inp.DeploymentConfig)

    request = inp.to_wire()
    deployment = _deployment(
        ctx, "CreateEndpoint", name, request, to_config=config.name, alarms=names
    )
    now = ctx.clock()
    record = EndpointRecord(
        name=name,
        arn=arn,
        status=EndpointStatus.CREATING,
        config_name=config.name,
        config_snapshot=admission.snapshot(config, models),
        last_deployment_config=inp.DeploymentConfig.to_wire() if inp.DeploymentConfig else None,
        current_deployment_id=deployment.deployment_id,
        created_at=now,
        last_modified=now,
    )
    await ctx.run(ctx.registry.create_endpoint, record, deployment)
    await ctx.run(ctx.registry.replace_tags, arn, tags)
    try:
        await ctx.starter.start(
            workflow_names.CREATE_ENDPOINT,
            request,
            workflow_id=deployment.workflow_id,
            deployment_id=deployment.deployment_id,
        )
    except GreenshiftError as exc:
        try:
            await ctx.run(ctx.registry.delete_endpoint_record, name, deployment.deployment_id)
            await _mark_not_started(ctx, deployment.deployment_id, exc)
        except Exception:
            log.exception("could not remove endpoint %s after a failed start", name)
        if isinstance(exc, ResourceInUse):
            # The previous endpoint of this name is still being deleted by its workflow.
            raise ResourceInUse(f'Cannot create already existing endpoint "{arn}".') from exc
        raise
    return {"EndpointArn": arn}


async def describe_endpoint(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DescribeEndpointInput, doc)
    return render.describe_endpoint(await get_endpoint(ctx, inp.EndpointName))


async def list_endpoints(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.ListEndpointsInput, doc)
    page = await ctx.run(ctx.registry.list_endpoints, list_query(inp))
    return page_doc("Endpoints", [render.endpoint_summary(r) for r in page.items], page.next_token)


async def validate_update(
    ctx: ApiContext, inp: sm.UpdateEndpointInput, record: EndpointRecord
) -> tuple[EndpointConfigRecord, list[str], Planned]:
    """Everything UpdateEndpoint checks before it takes the endpoint (PlanDeployment too)."""
    admitted = await ctx.run(
        admission.validate_update, ctx.registry, ctx.settings, ctx.alarms, inp, record
    )
    return admitted.config, admitted.alarms, admitted.planned


async def update_endpoint(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.UpdateEndpointInput, doc)
    record, admitted = await ctx.run(
        admission.admit_update, ctx.registry, ctx.settings, ctx.alarms, inp
    )
    config, names = admitted.config, admitted.alarms

    deployment = _deployment(
        ctx,
        "UpdateEndpoint",
        record.name,
        inp.to_wire(),
        from_config=record.config_name,
        to_config=config.name,
        alarms=names,
    )
    await ctx.run(
        ctx.registry.begin_operation, record.name, UPDATABLE, EndpointStatus.UPDATING, deployment
    )
    await _start_or_release(ctx, workflow_names.UPDATE_ENDPOINT, deployment, record)
    return {"EndpointArn": record.arn}


async def delete_endpoint(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DeleteEndpointInput, doc)
    record = await ctx.run(admission.admit_delete, ctx.registry, ctx.settings, inp.EndpointName)
    deployment = _deployment(
        ctx, "DeleteEndpoint", record.name, inp.to_wire(), from_config=record.config_name
    )
    await ctx.run(
        ctx.registry.begin_operation, record.name, DELETABLE, EndpointStatus.DELETING, deployment
    )
    await _start_or_release(ctx, workflow_names.DELETE_ENDPOINT, deployment, record)
    return {}


async def update_endpoint_weights_and_capacities(
    ctx: ApiContext, doc: dict[str, Any]
) -> dict[str, Any]:
    inp = parse(sm.UpdateEndpointWeightsAndCapacitiesInput, doc)
    record, _ = await ctx.run(admission.admit_weights, ctx.registry, ctx.settings, inp)

    deployment = _deployment(
        ctx,
        "UpdateEndpointWeightsAndCapacities",
        record.name,
        inp.to_wire(),
        from_config=record.config_name,
        to_config=record.config_name,
    )
    taken = await ctx.run(
        ctx.registry.begin_operation,
        record.name,
        REWEIGHTABLE,
        EndpointStatus.UPDATING,
        deployment,
    )
    # SEMANTICS.md 5: Desired* show the request at once; Current* follow as the workflow works.
    wanted = {d.VariantName: d for d in inp.DesiredWeightsAndCapacities}
    variants = []
    for v in taken.variants:
        d = wanted.get(v.variant)
        if d is not None:
            v = v.model_copy(
                update={
                    "desired_weight": (
                        v.desired_weight if d.DesiredWeight is None else d.DesiredWeight
                    ),
                    "desired_instance_count": (
                        v.desired_instance_count
                        if d.DesiredInstanceCount is None
                        else d.DesiredInstanceCount
                    ),
                }
            )
        variants.append(v)
    await ctx.run(ctx.registry.save_endpoint, taken.model_copy(update={"variants": variants}))
    await _start_or_release(ctx, workflow_names.UPDATE_WEIGHTS, deployment, record)
    return {"EndpointArn": record.arn}
