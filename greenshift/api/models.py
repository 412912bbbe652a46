"""CreateModel, DescribeModel, DeleteModel, ListModels."""

from __future__ import annotations

from typing import Any

from greenshift import render
from greenshift.api.context import ApiContext
from greenshift.api.listing import list_query, page_doc
from greenshift.api.parsing import parse
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.tagging import tag_pairs
from greenshift.errors import ResourceNotFound, ValidationError
from greenshift.registry.records import ModelRecord


def not_found(ctx: ApiContext, name: str) -> ResourceNotFound:
    return ResourceNotFound(f'Could not find model "{ctx.settings.arn("model", name)}".')


def check_environment(inp: sm.CreateModelInput) -> None:
    """A NUL cannot be in a process environment: refuse it here, naming the variable, rather
    than let the instance fail to start later with an obscure reason."""
    containers = [inp.PrimaryContainer] if inp.PrimaryContainer else list(inp.Containers or [])
    for container in containers:
        for key, value in (container.Environment or {}).items():
            if "\x00" in key or "\x00" in value:
                raise ValidationError(
                    f"Environment variable {key!r}: a NUL character is not allowed in an "
                    "environment variable's name or value."
                )


async def create_model(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.CreateModelInput, doc)
    if inp.PrimaryContainer is None and not inp.Containers:
        raise ValidationError("Either PrimaryContainer or Containers must be specified.")
    check_environment(inp)
    tags = tag_pairs(inp.Tags)
    arn = ctx.settings.arn("model", inp.ModelName)
    record = ModelRecord(name=inp.ModelName, arn=arn, created_at=ctx.clock(), spec=inp.to_wire())
    await ctx.run(ctx.registry.create_model, record)
    await ctx.run(ctx.registry.replace_tags, arn, tags)
    return {"ModelArn": arn}


async def describe_model(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DescribeModelInput, doc)
    record = await ctx.run(ctx.registry.get_model, inp.ModelName)
    if record is None:
        raise not_found(ctx, inp.ModelName)
    return render.describe_model(record)


async def delete_model(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DeleteModelInput, doc)
    # As on AWS, a model in use by a config may be deleted: endpoints keep a snapshot of it.
    if not await ctx.run(ctx.registry.delete_model, inp.ModelName):
        raise not_found(ctx, inp.ModelName)
    return {}


async def list_models(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.ListModelsInput, doc)
    page = await ctx.run(ctx.registry.list_models, list_query(inp))
    return page_doc("Models", [render.model_summary(r) for r in page.items], page.next_token)
