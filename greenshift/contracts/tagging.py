"""The tag rules botocore's model cannot say: keys starting with `aws:` are AWS's own and may not
be added or removed by users (AWS refuses them the same way). Pure: the API and the CreateEndpoint
workflow's prepare activity both check with it."""

from __future__ import annotations

from collections.abc import Iterable

from greenshift.contracts.sagemaker_shapes import Tag
from greenshift.errors import ValidationError

RESERVED_PREFIX = "aws:"


def check_tag_keys(keys: Iterable[str]) -> None:
    reserved = [k for k in keys if k.lower().startswith(RESERVED_PREFIX)]
    if reserved:
        raise ValidationError(
            "Tag keys starting with 'aws:' are reserved for AWS use: "
            + ", ".join(repr(k) for k in reserved)
            + "."
        )


def tag_pairs(tags: list[Tag] | None) -> list[tuple[str, str]]:
    """The Tags of a request as (key, value) pairs, checked."""
    items = [(tag.Key, tag.Value) for tag in tags or []]
    check_tag_keys(k for k, _ in items)
    return items
