"""Rollout groups over the API (`Greenshift.StartRolloutGroup`, `DescribeRolloutGroup`,
`StopRolloutGroup`): the RolloutGroup workflow does the work; the API checks each update as
UpdateEndpoint would before anything starts, so a typo fails the request, not wave 2."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import Field

from greenshift import names
from greenshift.api.context import ApiContext, principal
from greenshift.api.endpoints import UPDATABLE, check_status, get_endpoint, validate_update
from greenshift.api.parsing import parse
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.base import AwsShape
from greenshift.errors import GreenshiftError, ResourceInUse, ValidationError
from greenshift.groups.model import GroupName, RolloutGroupInput, group_workflow_id

GROUP_QUERY = names.GROUP_QUERY
ABORT_UPDATE = names.ABORT


class GroupRefInput(AwsShape):
    RolloutGroupName: GroupName
    Reason: str | None = Field(default=None, max_length=1024)
    Actor: str | None = Field(default=None, max_length=256)


def parse_group(doc: dict[str, Any]) -> RolloutGroupInput:
    try:
        return RolloutGroupInput.model_validate(doc)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the group"
        raise ValidationError(f"Invalid rollout group at {where}: {first['msg']}") from None


async def start_rollout_group(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    group = parse_group(doc)
    for wave in group.Waves:
        for update in wave.Updates:
            inp = parse(sm.UpdateEndpointInput, update)
            record = await get_endpoint(ctx, inp.EndpointName)
            check_status(record, UPDATABLE)
            await validate_update(ctx, inp, record)
    workflow_id = group_workflow_id(group.RolloutGroupName)
    # Held before the answer, so a direct UpdateEndpoint right after it is refused; the
    # workflow's own hold is then a no-op.
    running = await ctx.run(ctx.registry.endpoint_holder, group.endpoints()[0])
    if running == group.RolloutGroupName:
        raise ResourceInUse(f"Rollout group {group.RolloutGroupName} is already running.")
    await ctx.run(
        ctx.registry.hold_endpoints, group.RolloutGroupName, group.endpoints(), ctx.clock()
    )
    try:
        await ctx.starter.start(
            names.ROLLOUT_GROUP,
            group.model_dump(mode="json"),
            workflow_id=workflow_id,
            deployment_id=group.RolloutGroupName,
        )
    except GreenshiftError:
        await ctx.run(ctx.registry.release_endpoints, group.RolloutGroupName)
        raise
    return {"RolloutGroupName": group.RolloutGroupName, "WorkflowId": workflow_id}


async def describe_rollout_group(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    """The group's view: status, reason, each endpoint's outcome, every event (running or
    finished: the query replays a closed group)."""
    inp = parse(GroupRefInput, doc)
    view = await ctx.starter.query(group_workflow_id(inp.RolloutGroupName), GROUP_QUERY)
    if hasattr(view, "model_dump"):
        view = view.model_dump(mode="json")
    return dict(view)


async def stop_rollout_group(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    """Abort: the group rolls back every endpoint it changed."""
    inp = parse(GroupRefInput, doc)
    actor = inp.Actor or principal.get() or "anonymous"
    result = await ctx.starter.update(
        group_workflow_id(inp.RolloutGroupName),
        ABORT_UPDATE,
        {"actor": actor, "reason": inp.Reason or ""},
    )
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    return {"RolloutGroupName": inp.RolloutGroupName, "Actor": actor, "Result": result}
