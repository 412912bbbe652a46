"""Instance output read back with boto3's `logs` client, unchanged, from a real API process.

The test writes instance folders as the fleet does; the API's shipper ships them; the four
operations (DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents) read them with
their paging, windows and filters, and AWS's errors for what does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.logs_support import ApiProcess, api_process, append, eventually

GROUP = "/aws/sagemaker/Endpoints/ep1"
I0 = "ep1.AllTraffic.abcdef12.0"
I1 = "ep1.AllTraffic.abcdef12.1"
C0 = "ep1.Canary.abcdef12.0"
S0, S1, SC = f"AllTraffic/{I0}", f"AllTraffic/{I1}", f"Canary/{C0}"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    home = tmp_path_factory.mktemp("logs-home")
    with api_process(home) as proc:
        # Phase one: instance 0 prints 20 lines and a partial one; the others a few lines.
        append(proc.instance_log(I0), "".join(f"line {i:02d}\n" for i in range(20)) + "model lo")
        append(proc.instance_log(I1), "starting\nmodel loaded in 2.0 s\n")
        append(proc.instance_log(C0), "canary starting\nERROR: cannot import sklearn\n")
        append(proc.instance_log("ep2.AllTraffic.12345678.0"), "other endpoint\n")
        eventually(lambda: _count(proc, S0) == 20, what="phase one shipped")
        # Phase two, read later: the partial line completes, then 10 more lines.
        append(
            proc.instance_log(I0),
            "aded in 1.5 s\n" + "".join(f"line {i:02d}\n" for i in range(20, 30)),
        )
        eventually(lambda: _count(proc, S0) == 31, what="phase two shipped")
        yield proc


def _count(proc: ApiProcess, stream: str) -> int:
    try:
        events = proc.logs().get_log_events(
            logGroupName=GROUP, logStreamName=stream, startFromHead=True
        )["events"]
    except ClientError:
        return 0
    return len(events)


def _all(client: Any, op: str, key: str, **kwargs: Any) -> list[Any]:
    pages = client.get_paginator(op).paginate(**kwargs)
    return [item for page in pages for item in page[key]]


def test_describe_log_groups_lists_one_group_per_endpoint(api: ApiProcess) -> None:
    logs = api.logs()
    names = [g["logGroupName"] for g in _all(logs, "describe_log_groups", "logGroups", limit=1)]
    assert names == [GROUP, "/aws/sagemaker/Endpoints/ep2"]
    only = logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    assert [g["logGroupName"] for g in only] == [GROUP]
    assert only[0]["retentionInDays"] == 30
    assert only[0]["storedBytes"] > 0


def test_describe_log_streams_pages_filters_and_orders(api: ApiProcess) -> None:
    logs = api.logs()
    first = logs.describe_log_streams(logGroupName=GROUP, limit=2)
    assert [s["logStreamName"] for s in first["logStreams"]] == [S0, S1]
    rest = logs.describe_log_streams(logGroupName=GROUP, limit=2, nextToken=first["nextToken"])
    assert [s["logStreamName"] for s in rest["logStreams"]] == [SC]
    assert "nextToken" not in rest
    prefixed = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="AllTraffic/")
    assert [s["logStreamName"] for s in prefixed["logStreams"]] == [S0, S1]
    newest = logs.describe_log_streams(
        logGroupName=GROUP, orderBy="LastEventTime", descending=True, limit=1
    )["logStreams"][0]
    assert newest["logStreamName"] == S0  # phase two wrote only to instance 0
    assert newest["firstEventTimestamp"] < newest["lastEventTimestamp"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException, match="log group"):
        logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/nope")


def test_get_log_events_pages_forward_from_the_head_and_stops_on_the_same_token(
    api: ApiProcess,
) -> None:
    logs = api.logs()
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = logs.get_log_events(
            logGroupName=GROUP,
            logStreamName=S0,
            startFromHead=True,
            limit=8,
            **({"nextToken": token} if token else {}),
        )
        seen += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    expected = [f"line {i:02d}" for i in range(20)] + ["model loaded in 1.5 s"]
    expected += [f"line {i:02d}" for i in range(20, 30)]
    assert seen == expected
    assert len(seen) == 31


def test_get_log_events_reads_the_newest_first_then_backward(api: ApiProcess) -> None:
    logs = api.logs()
    newest = logs.get_log_events(logGroupName=GROUP, logStreamName=S0, limit=5)
    assert [e["message"] for e in newest["events"]] == [f"line {i}" for i in range(25, 30)]
    older = logs.get_log_events(
        logGroupName=GROUP, logStreamName=S0, limit=5, nextToken=newest["nextBackwardToken"]
    )
    assert [e["message"] for e in older["events"]] == [f"line {i}" for i in range(20, 25)]
    # Nothing after the newest event: the forward token comes back as given.
    after = logs.get_log_events(
        logGroupName=GROUP, logStreamName=S0, nextToken=newest["nextForwardToken"]
    )
    assert after["events"] == [] and after["nextForwardToken"] == newest["nextForwardToken"]


def test_get_log_events_honours_the_time_window(api: ApiProcess) -> None:
    logs = api.logs()
    events = logs.get_log_events(logGroupName=GROUP, logStreamName=S0, startFromHead=True)["events"]
    phase_two = next(e["timestamp"] for e in events if e["message"].startswith("model loaded"))
    assert events[0]["timestamp"] < phase_two
    late = logs.get_log_events(
        logGroupName=GROUP, logStreamName=S0, startFromHead=True, startTime=phase_two
    )["events"]
    assert [e["message"] for e in late][:2] == ["model loaded in 1.5 s", "line 20"]
    assert len(late) == 11
    early = logs.get_log_events(
        logGroupName=GROUP, logStreamName=S0, startFromHead=True, endTime=phase_two
    )["events"]
    assert len(early) == 20
    with pytest.raises(logs.exceptions.ResourceNotFoundException, match="log stream"):
        logs.get_log_events(logGroupName=GROUP, logStreamName="AllTraffic/nope")


def test_filter_log_events_terms_phrases_streams_and_paging(api: ApiProcess) -> None:
    logs = api.logs()
    loaded = logs.filter_log_events(logGroupName=GROUP, filterPattern='"model loaded"')["events"]
    assert sorted((e["logStreamName"], e["message"]) for e in loaded) == [
        (S0, "model loaded in 1.5 s"),
        (S1, "model loaded in 2.0 s"),
    ]
    errors = logs.filter_log_events(logGroupName=GROUP, filterPattern="ERROR sklearn")["events"]
    assert [(e["logStreamName"], e["message"]) for e in errors] == [
        (SC, "ERROR: cannot import sklearn")
    ]
    canary = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="Canary/")["events"]
    assert [e["message"] for e in canary] == ["canary starting", "ERROR: cannot import sklearn"]
    named = logs.filter_log_events(logGroupName=GROUP, logStreamNames=[S1])["events"]
    assert [e["message"] for e in named] == ["starting", "model loaded in 2.0 s"]
    # Paging: every event of the group, 4 per page, each once, in time order.
    pages = list(
        logs.get_paginator("filter_log_events").paginate(
            logGroupName=GROUP, PaginationConfig={"PageSize": 4}
        )
    )
    events = [e for page in pages for e in page["events"]]
    assert len(pages) > 5
    assert len(events) == 31 + 2 + 2
    assert len({e["eventId"] for e in events}) == len(events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    window = logs.filter_log_events(
        logGroupName=GROUP, startTime=events[-1]["timestamp"], filterPattern="line"
    )["events"]
    assert [e["message"] for e in window] == [f"line {i}" for i in range(20, 30)]


def test_filter_log_events_errors_are_aws_errors(api: ApiProcess) -> None:
    logs = api.logs()
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/nope")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName=GROUP, logStreamNames=["AllTraffic/nope"])
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=GROUP, filterPattern='{ $.level = "error" }')
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=GROUP, logStreamNames=[S0], logStreamNamePrefix="A")


def test_members_greenshift_cannot_honour_are_refused(api: ApiProcess) -> None:
    logs = api.logs()
    with pytest.raises(logs.exceptions.InvalidParameterException, match="accountIdentifiers"):
        logs.describe_log_groups(accountIdentifiers=["123456789012"])


def test_a_request_signed_with_a_wrong_secret_is_refused(api: ApiProcess) -> None:
    import boto3

    bad = boto3.session.Session().client(
        "logs",
        endpoint_url=api.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOGSTEST",
        aws_secret_access_key="wrong",
    )
    with pytest.raises(ClientError, match="InvalidSignatureException"):
        bad.describe_log_groups()
