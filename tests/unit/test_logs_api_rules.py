"""LogsApi over a real store, without HTTP: what it refuses and how it pages FilterLogEvents
past its scan batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenshift.logs.api import LogsApi
from greenshift.logs.errors import InvalidParameterException, ResourceNotFoundException
from greenshift.logs.model import StreamRef
from greenshift.logs.store import Batch, Cursor, SqliteLogStore

GROUP = "/aws/sagemaker/Endpoints/ep1"
STREAM = "AllTraffic/ep1.AllTraffic.abcdef12.0"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LogsApi]:
    store = SqliteLogStore(tmp_path / "logs.db")
    lines = [f"{'match' if i % 3 == 0 else 'other'} {i}" for i in range(50)]
    batch = Batch(
        "/x", StreamRef(GROUP, "AllTraffic/ep1.AllTraffic.abcdef12.0"), lines, Cursor(1, 1)
    )
    store.append([batch], 1_000)
    yield LogsApi(store, "us-east-1", "000000000000", retention_days=30)
    store.close()


async def test_a_member_outside_botocores_model_is_refused(api: LogsApi) -> None:
    with pytest.raises(InvalidParameterException, match="sortBy"):
        await api.handle("DescribeLogStreams", {"logGroupName": GROUP, "sortBy": "x"})
    assert await api.handle("PutLogEvents", {}) is None  # not served: the app says so


async def test_parameters_are_checked_as_cloudwatch_checks_them(api: LogsApi) -> None:
    bad: list[tuple[str, dict[str, Any]]] = [
        ("GetLogEvents", {"logGroupName": GROUP, "logStreamName": STREAM, "limit": 0}),
        ("GetLogEvents", {"logGroupName": GROUP, "logStreamName": STREAM, "nextToken": "zz"}),
        (
            "DescribeLogStreams",
            {"logGroupName": GROUP, "orderBy": "LastEventTime", "logStreamNamePrefix": "A"},
        ),
        ("FilterLogEvents", {"logGroupName": GROUP, "startTime": 5, "endTime": 4}),
        ("DescribeLogGroups", {"logGroupClass": "INFREQUENT_ACCESS"}),
    ]
    for operation, doc in bad:
        with pytest.raises(InvalidParameterException):
            await api.handle(operation, doc)
    with pytest.raises(ResourceNotFoundException):
        await api.handle("GetLogEvents", {"logGroupName": GROUP, "logStreamName": "nope"})


async def test_a_group_is_found_by_its_arn(api: LogsApi) -> None:
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}:*"
    out = await api.handle("DescribeLogStreams", {"logGroupIdentifier": arn})
    assert out is not None and len(out["logStreams"]) == 1


async def test_filter_pages_across_scan_batches_without_losing_or_repeating(
    api: LogsApi,
) -> None:
    # A small scan batch and budget, so one call stops early and answers with a token.
    api = LogsApi(api.store, "us-east-1", "000000000000", 30, scan_batch=4, scan_budget=12)
    seen: list[str] = []
    token = None
    calls = 0
    while True:
        doc = {"logGroupName": GROUP, "filterPattern": "match", "limit": 3}
        out = await api.handle(
            "FilterLogEvents", {**doc, **({"nextToken": token} if token else {})}
        )
        assert out is not None
        calls += 1
        seen += [e["message"] for e in out["events"]]
        token = out.get("nextToken")
        if not token:
            break
        assert calls < 50
    assert seen == [f"match {i}" for i in range(0, 50, 3)]
    assert calls >= 6
