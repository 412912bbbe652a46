"""AddTags, ListTags, DeleteTags, and the `Tags` of the create requests.

Tags belong to a model, an endpoint config or an endpoint, named by its ARN. The limits are
AWS's: botocore's model gives the key and value patterns and lengths and 50 tags per call (the
contracts enforce them); the registry enforces 50 per resource; keys starting with `aws:` are
reserved for AWS and refused, as AWS does. The SageMaker SDK calls ListTags in
`Predictor.update_endpoint`, so an unknown ListTags broke that standard path.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from greenshift.api.context import ApiContext
from greenshift.api.parsing import parse
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.tagging import check_tag_keys, tag_pairs
from greenshift.errors import ResourceNotFound, ValidationError

# ARN kind -> (registry lookup, what SEMANTICS.md's messages call it).
_KINDS = {
    "model": ("get_model", "model"),
    "endpoint-config": ("get_endpoint_config", "endpoint configuration"),
    "endpoint": ("get_endpoint", "endpoint"),
}
DEFAULT_PAGE = 50


async def _resource_arn(ctx: ApiContext, arn: str) -> str:
    """The stored resource's ARN, or ResourceNotFound in SEMANTICS.md's words."""
    prefix = f"arn:aws:sagemaker:{ctx.settings.region}:{ctx.settings.account_id}:"
    kind, _, name = (
        arn.removeprefix(prefix).partition("/") if arn.startswith(prefix) else ("", "", "")
    )
    lookup = _KINDS.get(kind)
    if lookup is None or not name:
        raise ValidationError(
            f'Resource "{arn}" is not a model, endpoint configuration or endpoint of this '
            f"region and account; Greenshift tags those only."
        )
    getter, words = lookup
    record = await ctx.run(getattr(ctx.registry, getter), name)
    if record is None:
        raise ResourceNotFound(f'Could not find {words} "{arn}".')
    stored: str = record.arn
    return stored


async def add_tags(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.AddTagsInput, doc)
    items = tag_pairs(inp.Tags)
    arn = await _resource_arn(ctx, inp.ResourceArn)
    await ctx.run(ctx.registry.add_tags, arn, items)
    return {"Tags": [{"Key": k, "Value": v} for k, v in items]}


async def list_tags(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.ListTagsInput, doc)
    arn = await _resource_arn(ctx, inp.ResourceArn)
    tags = await ctx.run(ctx.registry.list_tags, arn)
    start = _offset(inp.NextToken)
    size = inp.MaxResults or DEFAULT_PAGE
    page = tags[start : start + size]
    out: dict[str, Any] = {"Tags": [{"Key": k, "Value": v} for k, v in page]}
    if start + size < len(tags):
        out["NextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return out


async def delete_tags(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    inp = parse(sm.DeleteTagsInput, doc)
    check_tag_keys(inp.TagKeys)
    arn = await _resource_arn(ctx, inp.ResourceArn)
    await ctx.run(ctx.registry.delete_tags, arn, list(inp.TagKeys))
    return {}


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        value = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = -1
    if value < 0:
        raise ValidationError("The NextToken is not valid; start again without it.")
    return value
