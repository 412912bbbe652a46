"""The List* calls' filters, sort orders and NextToken over one table of named resources."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, Table, select
from sqlalchemy.sql.elements import ColumnElement

from greenshift.errors import ValidationError
from greenshift.registry.api import ListQuery
from greenshift.registry.records import Page

R = TypeVar("R")


def page(
    read: Callable[[], AbstractContextManager[Connection]],
    table: Table,
    query: ListQuery,
    to_record: Callable[[Row[Any]], R],
) -> Page[R]:
    """One page of `table` as `query` asks, read in a `read()` transaction."""
    offset = _decode_token(query.next_token)
    c = table.c
    conditions: list[ColumnElement[bool]] = []
    if query.name_contains:
        conditions.append(c.name_lower.contains(query.name_contains.lower(), autoescape=True))
    if query.creation_time_after is not None:
        conditions.append(c.created_at > query.creation_time_after)
    if query.creation_time_before is not None:
        conditions.append(c.created_at < query.creation_time_before)
    if "last_modified" in c:
        if query.last_modified_time_after is not None:
            conditions.append(c.last_modified > query.last_modified_time_after)
        if query.last_modified_time_before is not None:
            conditions.append(c.last_modified < query.last_modified_time_before)
    if "status" in c and query.status_equals is not None:
        conditions.append(c.status == query.status_equals)
    sort_columns = {"Name": c.name_lower, "CreationTime": c.created_at}
    if "status" in c:
        sort_columns["Status"] = c.status
    if query.sort_by not in sort_columns:
        raise ValidationError(
            f"SortBy must be one of {', '.join(sort_columns)}, not {query.sort_by!r}."
        )
    if query.sort_order not in ("Ascending", "Descending"):
        raise ValidationError(
            f"SortOrder must be Ascending or Descending, not {query.sort_order!r}."
        )
    descending = query.sort_order == "Descending"
    order = [sort_columns[query.sort_by], c.name_lower]
    stmt = (
        select(table)
        .where(*conditions)
        .order_by(*(col.desc() if descending else col.asc() for col in order))
        .offset(offset)
        .limit(query.max_results + 1)
    )
    with read() as conn:
        rows = list(conn.execute(stmt))
    more = len(rows) > query.max_results
    items = [to_record(row) for row in rows[: query.max_results]]
    token = _encode_token(offset + query.max_results) if more else None
    return Page[R](items=items, next_token=token)


def _encode_token(offset: int) -> str:
    """Opaque to clients: base64 of a small JSON document."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValidationError("Invalid pagination token (NextToken).") from exc
    if not isinstance(offset, int) or offset < 0:
        raise ValidationError("Invalid pagination token (NextToken).")
    return offset
