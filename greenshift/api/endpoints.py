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
from collections import Counter
from typing import Any

from greenshift import messages, naming
from greenshift.api import render
from greenshift.api.context import ApiContext
from greenshift.api.endpoint_configs import not_found as config_not_found
from greenshift.api.limits import InstanceAsk, check_endpoints, check_instances
from greenshift.api.listing import list_query, page_doc
from greenshift.api.models import not_found as model_not_found
from greenshift.api.parsing import parse
from greenshift.api.plans import (
    Planned,
    config_variants,
    plan_create,
    plan_update,
    plan_weights,
)
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.tagging import tag_pairs
from greenshift.errors import GreenshiftError, ResourceInUse, ResourceNotFound, ValidationError
from greenshift.registry.records import (
    DeploymentRecord,
    EndpointConfigRecord,
    EndpointRecord,
    ModelRecord,
)
from greenshift.status import IN_PROGRESS, DeploymentOutcome, EndpointStatus

log = logging.getLogger("greenshift.api")

UPDATABLE = frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.UPDATE_ROLLBACK_FAILED})
DELETABLE = frozenset(
    {EndpointStatus.IN_SERVICE, EndpointStatus.FAILED, EndpointStatus.UPDATE_ROLLBACK_FAILED}
)
REWEIGHTABLE = frozenset({EndpointStatus.IN_SERVICE})


def not_found(ctx: ApiContext, name: str) -> ResourceNotFound:
    return ResourceNotFound(f'Could not find endpoint "{ctx.settings.arn("endpoint", name)}".')


def check_status(record: EndpointRecord, allowed: frozenset[EndpointStatus]) -> None:
    """SEMANTICS.md section 2: the messages for an endpoint that cannot take this operation."""
    if record.status in allowed:
        return
    if record.status in IN_PROGRESS or record.current_deployment_id is not None:
        raise ResourceInUse(messages.in_progress_endpoint(record.arn))
    if record.status == EndpointStatus.FAILED:
        raise ValidationError(messages.failed_endpoint(record.arn))
    raise ValidationError(
        f'Cannot update endpoint "{record.arn}" in status {record.status.value}; '
        "only UpdateEndpoint or DeleteEndpoint can change it now."
    )


async def get_endpoint(ctx: ApiContext, name: str) -> EndpointRecord:
    record = await ctx.run(ctx.registry.get_endpoint, name)
    if record is None:
        raise not_found(ctx, name)
    return record


async def _config_and_models(
    ctx: ApiContext, config_name: str
) -> tuple[EndpointConfigRecord, dict[str, ModelRecord]]:
    config = await ctx.run(ctx.registry.get_endpoint_config, config_name)
    if config is None:
        raise config_not_found(ctx, config_name)
    models: dict[str, ModelRecord] = {}
    for variant in config_variants(config):
        name = variant.ModelName
        if name is None or name in models:
            continue
        model = await ctx.run(ctx.registry.get_model, name)
        if model is None:
            raise model_not_found(ctx, name)
        models[name] = model
    return config, models


def snapshot(config: EndpointConfigRecord, models: dict[str, ModelRecord]) -> dict[str, Any]:
    """The config as deployed, with its models: kept on the endpoint (records.EndpointRecord)."""
    return {"EndpointConfig": config.spec, "Models": {n: m.spec for n, m in models.items()}}


def alarm_names(dc: sm.DeploymentConfig | None) -> list[str]:
    if dc is None or dc.AutoRollbackConfiguration is None:
        return []
    return [a.AlarmName for a in dc.AutoRollbackConfiguration.Alarms or [] if a.AlarmName]


async def check_alarms(ctx: ApiContext, names: list[str]) -> None:
    """Our rule: an alarm named for auto-rollback must exist when the request arrives."""
    if not names or ctx.alarms is None:
        return
    states = await ctx.run(ctx.alarms.states, names)
    missing = [n for n in names if n not in states]
    if missing:
        raise ValidationError(
            "The alarm(s) " + ", ".join(f'"{n}"' for n in missing) + " named in "
            "DeploymentConfig.AutoRollbackConfiguration do not exist; create them with "
            "PutMetricAlarm first."
        )


async def check_capacity(ctx: ApiContext, ask: InstanceAsk) -> None:
    used = await ctx.run(ctx.registry.count_instances)
    check_instances(ctx.settings, ask, used)


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
    config, models = await _config_and_models(ctx, inp.EndpointConfigName)
    names = alarm_names(inp.DeploymentConfig)
    await check_alarms(ctx, names)
    planned = plan_create(inp, config, models)
    check_endpoints(ctx.settings, await ctx.run(ctx.registry.count_endpoints))
    await check_capacity(ctx, planned.ask)

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
        config_snapshot=snapshot(config, models),
        last_deployment_config=inp.DeploymentConfig.to_wire() if inp.DeploymentConfig else None,
        current_deployment_id=deployment.deployment_id,
        created_at=now,
        last_modified=now,
    )
    await ctx.run(ctx.registry.create_endpoint, record, deployment)
    await ctx.run(ctx.registry.replace_tags, arn, tags)
    try:
        await ctx.starter.start(
            "CreateEndpoint",
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
    if inp.DeploymentConfig is not None and inp.RetainDeploymentConfig:
        raise ValidationError(
            "Give either DeploymentConfig or RetainDeploymentConfig=true, not both: "
            "RetainDeploymentConfig reuses the endpoint's LastDeploymentConfig."
        )
    if inp.EndpointConfigName.lower() == record.config_name.lower():
        raise ValidationError(messages.config_already_deployed(record.arn, record.config_name))
    config, models = await _config_and_models(ctx, inp.EndpointConfigName)
    planned = plan_update(record, inp, config, models)
    names = list(planned.plan.alarms)
    await check_alarms(ctx, names)
    return config, names, planned


async def update_endpoint(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.UpdateEndpointInput, doc)
    record = await get_endpoint(ctx, inp.EndpointName)
    check_status(record, UPDATABLE)
    config, names, planned = await validate_update(ctx, inp, record)
    await check_capacity(ctx, planned.ask)

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
    await _start_or_release(ctx, "UpdateEndpoint", deployment, record)
    return {"EndpointArn": record.arn}


async def delete_endpoint(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DeleteEndpointInput, doc)
    record = await get_endpoint(ctx, inp.EndpointName)
    check_status(record, DELETABLE)
    deployment = _deployment(
        ctx, "DeleteEndpoint", record.name, inp.to_wire(), from_config=record.config_name
    )
    await ctx.run(
        ctx.registry.begin_operation, record.name, DELETABLE, EndpointStatus.DELETING, deployment
    )
    await _start_or_release(ctx, "DeleteEndpoint", deployment, record)
    return {}


def check_weights_request(
    record: EndpointRecord, inp: sm.UpdateEndpointWeightsAndCapacitiesInput
) -> None:
    """SEMANTICS.md 5: unknown or repeated variant names, and entries that change nothing."""
    names = [d.VariantName for d in inp.DesiredWeightsAndCapacities]
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise ValidationError(
            "The variant name(s) "
            + ", ".join(f'"{n}"' for n in dupes)
            + " appear more than once in DesiredWeightsAndCapacities."
        )
    known = {v.variant for v in record.variants}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValidationError(
            "The variant name(s) "
            + ", ".join(f'"{n}"' for n in unknown)
            + f' are not present in endpoint "{record.arn}".'
        )
    for d in inp.DesiredWeightsAndCapacities:
        if d.DesiredWeight is None and d.DesiredInstanceCount is None:
            raise ValidationError(
                f"Variant {d.VariantName}: give DesiredWeight, DesiredInstanceCount or both."
            )


async def update_endpoint_weights_and_capacities(
    ctx: ApiContext, doc: dict[str, Any]
) -> dict[str, Any]:
    inp = parse(sm.UpdateEndpointWeightsAndCapacitiesInput, doc)
    record = await get_endpoint(ctx, inp.EndpointName)
    check_status(record, REWEIGHTABLE)
    check_weights_request(record, inp)
    planned = plan_weights(record, inp)
    await check_capacity(ctx, planned.ask)

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
    await _start_or_release(ctx, "UpdateEndpointWeightsAndCapacities", deployment, record)
    return {"EndpointArn": record.arn}
