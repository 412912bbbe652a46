"""The CloudWatch Logs read operations, as the pinned botocore's `logs` client calls them.

botocore's `logs` model says AWS JSON 1.1 with `X-Amz-Target: Logs_20140328.<Operation>`; the
control API hands those requests here (`handle`). Served: DescribeLogGroups,
DescribeLogStreams, GetLogEvents, FilterLogEvents. Members Greenshift cannot honour are
refused with InvalidParameterException naming them (SEMANTICS.md section 8).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import anyio.to_thread

from greenshift.logs.errors import (
    GROUP_NOT_FOUND,
    STREAM_NOT_FOUND,
    InvalidParameterException,
    ResourceNotFoundException,
)
from greenshift.logs.model import LogEvent, LogGroup, LogStream
from greenshift.logs.paging import (
    MAX_RESPONSE_BYTES,
    events_page,
    filter_token,
    page_items,
    parse_filter_token,
    plan_read,
    select_matches,
)
from greenshift.logs.patterns import compile_pattern
from greenshift.logs.store import LogStore

TARGET = "Logs_20140328"
# FilterLogEvents reads the store in batches and stops after this many events per call,
# answering with a nextToken (as CloudWatch does when a search runs long).
SCAN_BATCH = 2000
SCAN_BUDGET = 100_000


class LogsApi:
    """The operations over one store. `region`/`account` make the ARNs."""

    def __init__(
        self,
        store: LogStore,
        region: str,
        account: str,
        retention_days: int,
        scan_batch: int = SCAN_BATCH,
        scan_budget: int = SCAN_BUDGET,
    ) -> None:
        self.store = store
        self.scan_batch = scan_batch
        self.scan_budget = scan_budget
        self.region = region
        self.account = account
        self.retention_days = retention_days
        self.operations: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }

    async def handle(self, operation: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to `operation`, or None when it is not one served here. The store is
        blocking (SQLite): it runs off the event loop."""
        fn = self.operations.get(operation)
        if fn is None:
            return None
        unknown = sorted(set(doc) - input_members(operation))
        if unknown:
            raise InvalidParameterException(
                f"{operation} has no member {unknown[0]!r} (botocore's logs model)."
            )
        return await anyio.to_thread.run_sync(fn, doc)

    # --- operations ---------------------------------------------------------------------------

    def describe_log_groups(self, doc: dict[str, Any]) -> dict[str, Any]:
        _refuse(doc, "accountIdentifiers", "logGroupIdentifiers")
        _refuse_unless(doc, "includeLinkedAccounts", False)
        _refuse_unless(doc, "logGroupClass", "STANDARD")
        prefix = _str(doc, "logGroupNamePrefix")
        pattern = _str(doc, "logGroupNamePattern")
        if prefix is not None and pattern is not None:
            raise InvalidParameterException(
                "logGroupNamePrefix and logGroupNamePattern are mutually exclusive."
            )
        limit = _int(doc, "limit", 1, 50, 50)
        groups = [
            g
            for g in self.store.groups()
            if (prefix is None or g.name.startswith(prefix))
            and (pattern is None or pattern.lower() in g.name.lower())
        ]
        page, token = page_items(groups, lambda g: (g.name,), _str(doc, "nextToken"), limit)
        out: dict[str, Any] = {"logGroups": [self._group(g) for g in page]}
        if token:
            out["nextToken"] = token
        return out

    def describe_log_streams(self, doc: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(doc)
        prefix = _str(doc, "logStreamNamePrefix")
        order = _str(doc, "orderBy") or "LogStreamName"
        if order not in ("LogStreamName", "LastEventTime"):
            raise InvalidParameterException(
                f"orderBy must be LogStreamName or LastEventTime, not {order!r}."
            )
        if order == "LastEventTime" and prefix is not None:
            raise InvalidParameterException(
                "Cannot order by LastEventTime with a logStreamNamePrefix."
            )
        descending = _bool(doc, "descending", False)
        limit = _int(doc, "limit", 1, 50, 50)
        streams = self.store.streams(group)
        if streams is None:
            raise ResourceNotFoundException(GROUP_NOT_FOUND)
        if prefix is not None:
            streams = [s for s in streams if s.name.startswith(prefix)]
        key: Callable[[LogStream], tuple[Any, ...]] = (
            (lambda s: (s.name,))
            if order == "LogStreamName"
            else (lambda s: (s.last_event_timestamp, s.name))
        )
        page, token = page_items(streams, key, _str(doc, "nextToken"), limit, descending)
        out: dict[str, Any] = {"logStreams": [self._stream(s) for s in page]}
        if token:
            out["nextToken"] = token
        return out

    def get_log_events(self, doc: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(doc)
        stream = _str(doc, "logStreamName")
        if stream is None:
            raise InvalidParameterException("logStreamName is required.")
        start, end = _time_window(doc)
        limit = _int(doc, "limit", 1, 10_000, 10_000)
        self._require_stream(group, stream)
        direction, bound = plan_read(
            _str(doc, "nextToken"), _bool(doc, "startFromHead", False), self.store.last_seq()
        )
        events = self.store.read(group, stream, direction, bound, start, end, limit)
        page, forward, backward = events_page(direction, bound, events)
        return {
            "events": [
                {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
                for e in page
            ],
            "nextForwardToken": forward,
            "nextBackwardToken": backward,
        }

    def filter_log_events(self, doc: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(doc)
        names = doc.get("logStreamNames")
        prefix = _str(doc, "logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise InvalidParameterException(
                "logStreamNames and logStreamNamePrefix are mutually exclusive."
            )
        if names is not None and (
            not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names)
        ):
            raise InvalidParameterException("logStreamNames must be a list of 1 to 100 names.")
        # Every event is interleaved across streams; `false` is ignored by AWS since 2019 too.
        _bool(doc, "interleaved", True)
        # Nothing here is masked (no data protection policies), so `unmask` changes nothing.
        _bool(doc, "unmask", False)
        start, end = _time_window(doc)
        limit = _int(doc, "limit", 1, 10_000, 10_000)
        matches = compile_pattern(_str(doc, "filterPattern"))
        token = _str(doc, "nextToken")
        position = parse_filter_token(token) if token else (-1, 0)

        streams = self.store.streams(group)
        if streams is None:
            raise ResourceNotFoundException(GROUP_NOT_FOUND)
        known = {s.name for s in streams}
        if names is not None:
            missing = [n for n in names if n not in known]
            if missing:
                raise ResourceNotFoundException(STREAM_NOT_FOUND)
            searched = sorted(set(names))
        else:
            searched = sorted(n for n in known if prefix is None or n.startswith(prefix))

        found: list[LogEvent] = []
        scanned = 0
        more = False
        while True:
            batch = self.store.scan(group, searched, position, start, end, self.scan_batch)
            matched, last, stopped = select_matches(
                batch, matches, limit - len(found), MAX_RESPONSE_BYTES - sum(e.size for e in found)
            )
            found += matched
            position = last or position
            scanned += len(batch)
            if len(batch) < self.scan_batch and not stopped:
                break  # everything in range was looked at
            if stopped or len(found) >= limit or scanned >= self.scan_budget:
                more = True
                break
        out: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": e.stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                    "eventId": f"{e.seq:020d}",
                }
                for e in found
            ],
            "searchedLogStreams": [
                {"logStreamName": n, "searchedCompletely": not more} for n in searched
            ],
        }
        if more:
            out["nextToken"] = filter_token(position)
        return out

    # --- helpers ------------------------------------------------------------------------------

    def _group_name(self, doc: dict[str, Any]) -> str:
        """logGroupName, or logGroupIdentifier (a name or this account's ARN of one)."""
        name = _str(doc, "logGroupName")
        ident = _str(doc, "logGroupIdentifier")
        if name is not None and ident is not None:
            raise InvalidParameterException(
                "logGroupName and logGroupIdentifier are mutually exclusive."
            )
        if ident is not None:
            arn_prefix = f"arn:aws:logs:{self.region}:{self.account}:log-group:"
            name = ident.removeprefix(arn_prefix).removesuffix(":*")
        if not name:
            raise InvalidParameterException("logGroupName or logGroupIdentifier is required.")
        return name

    def _require_stream(self, group: str, stream: str) -> None:
        streams = self.store.streams(group)
        if streams is None:
            raise ResourceNotFoundException(GROUP_NOT_FOUND)
        if all(s.name != stream for s in streams):
            raise ResourceNotFoundException(STREAM_NOT_FOUND)

    def _group(self, g: LogGroup) -> dict[str, Any]:
        arn = f"arn:aws:logs:{self.region}:{self.account}:log-group:{g.name}"
        return {
            "logGroupName": g.name,
            "creationTime": g.creation_time,
            "retentionInDays": self.retention_days,
            "metricFilterCount": 0,
            "arn": f"{arn}:*",
            "logGroupArn": arn,
            "storedBytes": g.stored_bytes,
            "logGroupClass": "STANDARD",
        }

    def _stream(self, s: LogStream) -> dict[str, Any]:
        out: dict[str, Any] = {
            "logStreamName": s.name,
            "creationTime": s.creation_time,
            "arn": (
                f"arn:aws:logs:{self.region}:{self.account}:log-group:{s.group}:log-stream:{s.name}"
            ),
            "storedBytes": s.stored_bytes,
        }
        if s.first_event_timestamp is not None:
            out["firstEventTimestamp"] = s.first_event_timestamp
        if s.last_event_timestamp is not None:
            out["lastEventTimestamp"] = s.last_event_timestamp
        if s.last_ingestion_time is not None:
            out["lastIngestionTime"] = s.last_ingestion_time
        return out


@functools.cache
def input_members(operation: str) -> frozenset[str]:
    """The members botocore's `logs` model gives the operation's input: anything else is
    refused, never ignored."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("logs")
    return frozenset(model.operation_model(operation).input_shape.members)


def _str(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameterException(f"{name} must be a string.")
    return value


def _int(doc: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = doc.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterException(f"{name} must be an integer from {low} to {high}.")
    return value


def _bool(doc: dict[str, Any], name: str, default: bool) -> bool:
    value = doc.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidParameterException(f"{name} must be a boolean.")
    return value


def _time_window(doc: dict[str, Any]) -> tuple[int | None, int | None]:
    start = None if doc.get("startTime") is None else _int(doc, "startTime", 0, 2**62, 0)
    end = None if doc.get("endTime") is None else _int(doc, "endTime", 0, 2**62, 0)
    if start is not None and end is not None and end < start:
        raise InvalidParameterException("endTime must not be before startTime.")
    return start, end


def _refuse(doc: dict[str, Any], *names: str) -> None:
    for name in names:
        if doc.get(name):
            raise InvalidParameterException(f"Greenshift does not support {name}.")


def _refuse_unless(doc: dict[str, Any], name: str, allowed: object) -> None:
    if doc.get(name) is not None and doc.get(name) != allowed:
        raise InvalidParameterException(
            f"Greenshift does not support {name}={doc.get(name)!r} (only {allowed!r})."
        )
