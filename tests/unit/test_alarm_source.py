"""The deployment's alarm source against real CloudWatch's API shape (botocore Stubber, no
network): what it asks, and how it reads the answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from greenshift.metrics.alarm_source import CloudWatchAlarmSource, cloudwatch_client
from greenshift.settings import Settings

BOTH = ["MetricAlarm", "CompositeAlarm"]


@pytest.fixture
def aws() -> Iterator[tuple[Any, Stubber]]:
    # Real CloudWatch: a region, credentials, no endpoint URL.
    client = boto3.client(
        "cloudwatch",
        region_name="eu-west-1",
        aws_access_key_id="AKIA",
        aws_secret_access_key="secret",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def metric_alarm(name: str, state: str, reason: str = "r") -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "StateValue": state,
        "StateReason": reason,
        "StateUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
        "MetricName": "Invocation5XXErrors",
        "Namespace": "AWS/SageMaker",
    }


def test_states_reads_describe_alarms_and_leaves_out_missing(aws: tuple[Any, Stubber]) -> None:
    client, stubber = aws
    stubber.add_response(
        "describe_alarms",
        {
            "MetricAlarms": [
                metric_alarm("errors", "ALARM", "Threshold Crossed"),
                metric_alarm("latency", "OK"),
            ],
            "CompositeAlarms": [],
        },
        {"AlarmNames": ["errors", "latency", "gone"], "MaxRecords": 100, "AlarmTypes": BOTH},
    )
    states = CloudWatchAlarmSource(client).states(["errors", "latency", "gone"])
    assert set(states) == {"errors", "latency"}
    assert states["errors"].state == "ALARM" and states["errors"].reason == "Threshold Crossed"
    assert states["latency"].state == "OK"


def test_more_than_100_names_are_batched(aws: tuple[Any, Stubber]) -> None:
    client, stubber = aws
    names = [f"a{i:03d}" for i in range(150)]
    stubber.add_response(
        "describe_alarms",
        {"MetricAlarms": [metric_alarm("a000", "OK")]},
        {"AlarmNames": names[:100], "MaxRecords": 100, "AlarmTypes": BOTH},
    )
    stubber.add_response(
        "describe_alarms",
        {"MetricAlarms": [metric_alarm("a149", "INSUFFICIENT_DATA")]},
        {"AlarmNames": names[100:], "MaxRecords": 100, "AlarmTypes": BOTH},
    )
    states = CloudWatchAlarmSource(client).states(names)
    assert {n: s.state for n, s in states.items()} == {"a000": "OK", "a149": "INSUFFICIENT_DATA"}


def test_follows_next_token_and_reads_composite_alarms(aws: tuple[Any, Stubber]) -> None:
    client, stubber = aws
    stubber.add_response(
        "describe_alarms",
        {"MetricAlarms": [metric_alarm("a", "OK")], "NextToken": "t1"},
        {"AlarmNames": ["a", "c"], "MaxRecords": 100, "AlarmTypes": BOTH},
    )
    stubber.add_response(
        "describe_alarms",
        {"CompositeAlarms": [{"AlarmName": "c", "StateValue": "ALARM", "StateReason": "child"}]},
        {"AlarmNames": ["a", "c"], "MaxRecords": 100, "AlarmTypes": BOTH, "NextToken": "t1"},
    )
    states = CloudWatchAlarmSource(client).states(["a", "c", "a"])
    assert states["c"].state == "ALARM" and states["a"].state == "OK"


def test_errors_from_cloudwatch_propagate(aws: tuple[Any, Stubber]) -> None:
    client, stubber = aws
    stubber.add_client_error(
        "describe_alarms", service_error_code="Throttling", http_status_code=400
    )
    with pytest.raises(client.exceptions.ClientError):
        CloudWatchAlarmSource(client).states(["a"])


def test_factory_builds_the_client_once_on_first_use() -> None:
    built: list[int] = []

    class Fake:
        def describe_alarms(self, **kwargs: Any) -> dict[str, Any]:
            return {
                "MetricAlarms": [{"AlarmName": n, "StateValue": "OK"} for n in kwargs["AlarmNames"]]
            }

    def factory() -> Fake:
        built.append(1)
        return Fake()

    source = CloudWatchAlarmSource(factory)
    assert built == []
    source.states(["x"])
    source.states(["y"])
    assert built == [1]


def test_client_points_at_greenshift_unless_told_aws() -> None:
    own = cloudwatch_client(Settings(api_port=7999))
    assert own.meta.endpoint_url == "http://127.0.0.1:7999"
    real = cloudwatch_client(Settings(cloudwatch_endpoint_url="aws", region="eu-west-1"))
    assert real.meta.endpoint_url == "https://monitoring.eu-west-1.amazonaws.com"
