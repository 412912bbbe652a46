"""Greenshift's extension operations (`X-Amz-Target: Greenshift.<Operation>`).

PlanDeployment shows what an UpdateEndpoint would do (the same validation and plan, nothing
started). Pause/Resume/Promote/Abort are Temporal updates on the running workflow; the registry
says which deployment holds the endpoint. DescribeDeployment and ListDeployments read the
registry's deployment records and event log, so they work without Temporal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from greenshift import names, naming, render
from greenshift.api.context import ApiContext, principal
from greenshift.api.endpoints import UPDATABLE, check_status, get_endpoint, validate_update
from greenshift.api.errors import NoDeploymentInProgressError
from greenshift.api.parsing import parse
from greenshift.api.workflows import WorkflowNotRunningError
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.base import AwsShape
from greenshift.errors import ResourceLimitExceeded, ResourceNotFound, ValidationError
from greenshift.limits import check_instances
from greenshift.status import DeploymentOutcome


class DeploymentControlInput(AwsShape):
    EndpointName: sm.EndpointName
    Reason: str | None = Field(default=None, max_length=1024)
    Actor: str | None = Field(default=None, max_length=256)


class DescribeDeploymentInput(AwsShape):
    DeploymentId: str | None = Field(default=None, max_length=64)
    EndpointName: sm.EndpointName | None = None


class ListDeploymentsInput(AwsShape):
    EndpointName: sm.EndpointName | None = None
    MaxResults: int | None = Field(default=None, ge=1, le=100)


async def plan_deployment(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    """The planner's output for an endpoint and a new config, and whether the quota allows it."""
    inp = parse(sm.UpdateEndpointInput, doc)
    record = await get_endpoint(ctx, inp.EndpointName)
    _, _, planned = await validate_update(ctx, inp, record)
    used = await ctx.run(ctx.registry.count_instances)
    out: dict[str, Any] = {
        "EndpointName": record.name,
        "EndpointArn": record.arn,
        "Plan": planned.plan.model_dump(mode="json"),
        "PeakInstances": planned.ask.peak,
        "CurrentInstances": planned.ask.endpoint_now,
        "HostInstancesInUse": used,
        "WithinLimits": True,
    }
    try:
        check_instances(ctx.settings, planned.ask, used)
    except ResourceLimitExceeded as exc:
        out["WithinLimits"] = False
        out["LimitMessage"] = exc.message
    try:
        check_status(record, UPDATABLE)
    except ValidationError as exc:
        out["CanStartNow"] = False
        out["StatusMessage"] = exc.message
    else:
        out["CanStartNow"] = out["WithinLimits"]
    return out


async def _control(ctx: ApiContext, doc: dict[str, Any], update: str) -> dict[str, Any]:
    inp = parse(DeploymentControlInput, doc)
    record = await get_endpoint(ctx, inp.EndpointName)
    if record.current_deployment_id is None:
        raise NoDeploymentInProgressError(
            f'No deployment is in progress on endpoint "{record.arn}".'
        )
    actor = inp.Actor or principal.get() or "anonymous"
    workflow_id = naming.workflow_id(record.name)
    arg = {"actor": actor, "reason": inp.Reason or ""}
    try:
        result = await ctx.starter.update(workflow_id, update, arg)
    except WorkflowNotRunningError:
        if update != names.ABORT:
            raise
        result = await _abort_orphan(ctx, record.name, record.current_deployment_id, arg)
        if result is None:
            raise
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    return {
        "EndpointName": record.name,
        "EndpointArn": record.arn,
        "DeploymentId": record.current_deployment_id,
        "Actor": actor,
        "Result": result,
    }


async def _abort_orphan(
    ctx: ApiContext, endpoint: str, deployment_id: str, arg: dict[str, Any]
) -> Any | None:
    """The endpoint is held but its deployment's workflow is not running (terminated, lost):
    abort means settle it now, not after the reconciler's grace (issue 14 item 10)."""
    deployment = await ctx.run(ctx.registry.get_deployment, deployment_id)
    if deployment is None or deployment.outcome is not DeploymentOutcome.RUNNING:
        return None
    started = deployment.started_at
    if started.tzinfo is None:  # some databases hand back naive UTC
        started = started.replace(tzinfo=UTC)
    # Judged on the deployment's own workflow id (one started from the CLI may have another
    # than the endpoint's, and be running there), as the reconciler judges it.
    return await ctx.starter.abort_orphan(
        deployment.workflow_id,
        endpoint=endpoint,
        deployment_id=deployment_id,
        held_for=(datetime.now(UTC) - started).total_seconds(),
        arg=arg,
    )


async def pause_deployment(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    return await _control(ctx, doc, names.PAUSE)


async def resume_deployment(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    return await _control(ctx, doc, names.RESUME)


async def promote_deployment(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    return await _control(ctx, doc, names.PROMOTE)


async def abort_deployment(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    return await _control(ctx, doc, names.ABORT)


async def describe_deployment(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    """One deployment and its event log: every step with its time, traffic, instances, alarm
    checks, and who paused, promoted or aborted it. By id, or the latest of an endpoint."""
    inp = parse(DescribeDeploymentInput, doc)
    if inp.DeploymentId:
        record = await ctx.run(ctx.registry.get_deployment, inp.DeploymentId)
        if record is None:
            raise ResourceNotFound(f'Could not find deployment "{inp.DeploymentId}".')
    elif inp.EndpointName:
        records = await ctx.run(ctx.registry.list_deployments, inp.EndpointName, 1)
        if not records:
            arn = ctx.settings.arn("endpoint", inp.EndpointName)
            raise ResourceNotFound(f'Could not find a deployment of endpoint "{arn}".')
        record = records[0]
    else:
        raise ValidationError("Give DeploymentId or EndpointName.")
    events = await ctx.run(ctx.registry.list_events, record.deployment_id)
    out = render.deployment_summary(record)
    endpoint = await ctx.run(ctx.registry.get_endpoint, record.endpoint)
    if (
        endpoint is not None
        and endpoint.current_deployment_id == record.deployment_id
        and endpoint.pending is not None
    ):
        out["Progress"] = render.deployment_progress(endpoint.pending)
    out["Request"] = record.request
    if record.plan is not None:
        out["Plan"] = record.plan
    return {"Deployment": out, "Events": [render.deployment_event(e) for e in events]}


async def list_deployments(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(ListDeploymentsInput, doc)
    records = await ctx.run(ctx.registry.list_deployments, inp.EndpointName, inp.MaxResults or 50)
    return {"Deployments": [render.deployment_summary(r) for r in records]}
