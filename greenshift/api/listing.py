"""List* inputs into the registry's ListQuery: the filters botocore offers, and paging."""

from __future__ import annotations

from typing import Any

from greenshift.registry.api import ListQuery


def list_query(inp: Any) -> ListQuery:
    """Any of ListModelsInput / ListEndpointConfigsInput / ListEndpointsInput."""
    return ListQuery(
        name_contains=inp.NameContains,
        creation_time_after=inp.CreationTimeAfter,
        creation_time_before=inp.CreationTimeBefore,
        last_modified_time_after=getattr(inp, "LastModifiedTimeAfter", None),
        last_modified_time_before=getattr(inp, "LastModifiedTimeBefore", None),
        status_equals=getattr(inp, "StatusEquals", None),
        sort_by=inp.SortBy or "CreationTime",
        sort_order=inp.SortOrder or "Descending",
        max_results=inp.MaxResults or 10,
        next_token=inp.NextToken or None,
    )


def page_doc(key: str, items: list[dict[str, Any]], next_token: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {key: items}
    if next_token:
        doc["NextToken"] = next_token
    return doc
