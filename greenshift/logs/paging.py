"""Paging rules of CloudWatch Logs, as pure functions over what the store returns.

GetLogEvents tokens point between events: `f/<seq>` reads the events after seq, `b/<seq>` the
events before it. At the end of a stream the forward token comes back unchanged (readers that
follow a stream stop on that), and at its beginning the backward one does. FilterLogEvents
tokens are the (timestamp, seq) position of the last event looked at. DescribeLogGroups and
DescribeLogStreams tokens are the sort key of the last item returned, so a stream created
between two pages neither repeats nor shifts the rest.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from greenshift.logs.errors import InvalidParameterException
from greenshift.logs.model import LogEvent
from greenshift.logs.store import Direction

T = TypeVar("T")

# A GetLogEvents / FilterLogEvents answer holds at most this many bytes of events (AWS: 1 MB).
MAX_RESPONSE_BYTES = 1_048_576
INVALID_TOKEN = "The specified nextToken is invalid."


def forward_token(seq: int) -> str:
    return f"f/{seq:020d}"


def backward_token(seq: int) -> str:
    return f"b/{seq:020d}"


def parse_events_token(token: str) -> tuple[Direction, int]:
    kind, _, number = token.partition("/")
    if kind not in ("f", "b") or not number.isdigit():
        raise InvalidParameterException(INVALID_TOKEN)
    return ("forward" if kind == "f" else "backward"), int(number)


def plan_read(token: str | None, start_from_head: bool, last_seq: int) -> tuple[Direction, int]:
    """Where a GetLogEvents call reads: a token's direction and bound; without one, from the
    head, or (AWS's default) the newest events, i.e. backward from after the last one."""
    if token:
        return parse_events_token(token)
    if start_from_head:
        return "forward", 0
    return "backward", last_seq + 1


def events_page(
    direction: Direction,
    bound: int,
    events: Sequence[LogEvent],
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> tuple[list[LogEvent], str, str]:
    """The events to return (ascending) and (nextForwardToken, nextBackwardToken).

    `events` are what the store read next to `bound` in `direction`; past `max_bytes` the ones
    farthest from the bound are left for the next page."""
    kept = _within_bytes(events if direction == "forward" else events[::-1], max_bytes)
    page = kept if direction == "forward" else kept[::-1]
    if page:
        return page, forward_token(page[-1].seq), backward_token(page[0].seq)
    if direction == "forward":
        return [], forward_token(bound), backward_token(bound + 1)
    return [], forward_token(max(bound - 1, 0)), backward_token(bound)


def _within_bytes(events: Sequence[LogEvent], max_bytes: int) -> list[LogEvent]:
    out: list[LogEvent] = []
    total = 0
    for event in events:
        total += event.size
        if total > max_bytes and out:
            break
        out.append(event)
    return out


def filter_token(position: tuple[int, int]) -> str:
    return _encode({"t": position[0], "s": position[1]})


def parse_filter_token(token: str) -> tuple[int, int]:
    doc = _decode(token)
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), int) for k in ("t", "s")):
        raise InvalidParameterException(INVALID_TOKEN)
    return doc["t"], doc["s"]


def select_matches(
    events: Sequence[LogEvent], matches: Callable[[str], bool], want: int, max_bytes: int
) -> tuple[list[LogEvent], tuple[int, int] | None, bool]:
    """The matching events of one scanned batch, at most `want` and `max_bytes`.

    Returns (matched, position of the last event consumed or None, stopped early): a caller
    resumes after that position; `stopped early` means the batch was not consumed to its end."""
    matched: list[LogEvent] = []
    total = 0
    position: tuple[int, int] | None = None
    for event in events:
        if matches(event.message):
            if len(matched) >= want or (matched and total + event.size > max_bytes):
                return matched, position, True
            matched.append(event)
            total += event.size
        position = (event.timestamp, event.seq)
    return matched, position, False


def page_items(
    items: Sequence[T],
    key: Callable[[T], Sequence[Any]],
    token: str | None,
    limit: int,
    descending: bool = False,
) -> tuple[list[T], str | None]:
    """One page of a listing sorted by `key`, after the item a token names; and the token of
    the next page (None on the last one)."""
    ordered = sorted(items, key=lambda item: _sortable(key(item)), reverse=descending)
    if token:
        after = _decode(token)
        if not isinstance(after, list):
            raise InvalidParameterException(INVALID_TOKEN)
        marker = _sortable(after)
        ordered = [
            item
            for item in ordered
            if (_sortable(key(item)) < marker if descending else _sortable(key(item)) > marker)
        ]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (_encode(list(key(page[-1]))) if more and page else None)


def _sortable(values: Sequence[Any]) -> tuple[Any, ...]:
    # None (a stream with no events yet) sorts before any timestamp.
    return tuple((0, 0) if v is None else (1, v) for v in values)


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _decode(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterException(INVALID_TOKEN) from None
