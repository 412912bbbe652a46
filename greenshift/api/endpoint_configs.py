"""CreateEndpointConfig, DescribeEndpointConfig, DeleteEndpointConfig, ListEndpointConfigs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from greenshift import render
from greenshift.api.context import ApiContext
from greenshift.api.listing import list_query, page_doc
from greenshift.api.models import not_found as model_not_found
from greenshift.api.parsing import parse
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.tagging import tag_pairs
from greenshift.errors import ResourceNotFound, ValidationError
from greenshift.registry.records import EndpointConfigRecord


def not_found(ctx: ApiContext, name: str) -> ResourceNotFound:
    arn = ctx.settings.arn("endpoint-config", name)
    return ResourceNotFound(f'Could not find endpoint configuration "{arn}".')


def check_variants(variants: list[sm.ProductionVariant]) -> None:
    """What botocore's model cannot say: unique names, and instance-backed variants only."""
    dupes = sorted(n for n, c in Counter(v.VariantName for v in variants).items() if c > 1)
    if dupes:
        raise ValidationError(
            f"The variant name(s) {', '.join(dupes)} appear more than once; variant names "
            "must be unique within an endpoint configuration."
        )
    # ServerlessConfig and the other members Greenshift does not build were refused by name when
    # the request was parsed (greenshift.contracts.support).
    for v in variants:
        if v.InstanceType is None or v.InitialInstanceCount is None:
            raise ValidationError(
                f"Variant {v.VariantName}: InstanceType and InitialInstanceCount are required."
            )
        if v.ModelName is None:
            raise ValidationError(f"Variant {v.VariantName}: ModelName is required.")


async def create_endpoint_config(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.CreateEndpointConfigInput, doc)
    check_variants(inp.ProductionVariants)
    tags = tag_pairs(inp.Tags)
    for v in inp.ProductionVariants:
        assert v.ModelName is not None  # check_variants
        if await ctx.run(ctx.registry.get_model, v.ModelName) is None:
            raise model_not_found(ctx, v.ModelName)
    arn = ctx.settings.arn("endpoint-config", inp.EndpointConfigName)
    record = EndpointConfigRecord(
        name=inp.EndpointConfigName, arn=arn, created_at=ctx.clock(), spec=inp.to_wire()
    )
    await ctx.run(ctx.registry.create_endpoint_config, record)
    await ctx.run(ctx.registry.replace_tags, arn, tags)
    return {"EndpointConfigArn": arn}


async def describe_endpoint_config(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DescribeEndpointConfigInput, doc)
    record = await ctx.run(ctx.registry.get_endpoint_config, inp.EndpointConfigName)
    if record is None:
        raise not_found(ctx, inp.EndpointConfigName)
    return render.describe_endpoint_config(record)


async def delete_endpoint_config(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DeleteEndpointConfigInput, doc)
    name = inp.EndpointConfigName
    # Accepted even while an endpoint uses the config, as AWS accepts it (SEMANTICS.md 2; the
    # SageMaker SDK's Predictor.delete_endpoint() deletes the config first). Nothing is lost: an
    # endpoint keeps its deployed snapshot, its fleets keep their model specs, and rollbacks
    # return to those fleets, never to the config by name.
    if not await ctx.run(ctx.registry.delete_endpoint_config, name):
        raise not_found(ctx, name)
    return {}


async def list_endpoint_configs(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.ListEndpointConfigsInput, doc)
    page = await ctx.run(ctx.registry.list_endpoint_configs, list_query(inp))
    items = [render.endpoint_config_summary(r) for r in page.items]
    return page_doc("EndpointConfigs", items, page.next_token)
