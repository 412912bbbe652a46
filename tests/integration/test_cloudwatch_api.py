"""The CloudWatch subset through boto3's real `cloudwatch` client, over HTTP on 127.0.0.1.

The pinned botocore speaks AWS JSON 1.0 to cloudwatch; these tests prove the whole round trip:
request decoding, validation, error codes botocore maps to its modeled exceptions, and output
shapes botocore parses (timestamps included).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError

from greenshift.metrics.alarm_source import CloudWatchAlarmSource, cloudwatch_client
from greenshift.metrics.cloudwatch_api import CloudWatchApi, cloudwatch_app
from greenshift.metrics.model import Datapoint
from greenshift.metrics.store import MetricStore
from greenshift.settings import Settings
from tests.ports import free_port

DIMS = {"EndpointName": "ep", "VariantName": "AllTraffic"}
NEW_FLEET = {**DIMS, "EndpointConfigName": "cfg-v2"}


class Server:
    def __init__(self, store: MetricStore, max_alarms: int) -> None:
        api = CloudWatchApi(store, store.alarms, Settings(), max_alarms=max_alarms)
        self.port = free_port()
        config = uvicorn.Config(
            cloudwatch_app(api), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricStore]:
    path: Path = tmp_path_factory.mktemp("cw") / "registry.db"
    s = MetricStore(f"sqlite:///{path}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(store: MetricStore) -> Iterator[Server]:
    with Server(store, max_alarms=20) as srv:
        yield srv


def make_client(server: Server, validate: bool = True) -> Any:
    return boto3.client(
        "cloudwatch",
        endpoint_url=f"http://127.0.0.1:{server.port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(parameter_validation=validate, retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def cw(server: Server) -> Any:
    return make_client(server)


def alarm(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocation5XXErrors",
        "Dimensions": [{"Name": k, "Value": v} for k, v in NEW_FLEET.items()],
        "Statistic": "Sum",
        "Period": 10,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        **overrides,
    }


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def test_put_describe_set_state_history_delete(cw: Any) -> None:
    cw.put_metric_alarm(**alarm("rb-errors", TreatMissingData="notBreaching"))
    cw.put_metric_alarm(
        **alarm("rb-latency", MetricName="ModelLatency", Statistic="Average", Threshold=100000.0)
    )
    cw.put_metric_alarm(**alarm("other"))

    (a,) = cw.describe_alarms(AlarmNames=["rb-errors"])["MetricAlarms"]
    assert a["StateValue"] == "INSUFFICIENT_DATA"
    assert a["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:rb-errors"
    assert a["TreatMissingData"] == "notBreaching" and a["DatapointsToAlarm"] == 1
    assert {d["Name"]: d["Value"] for d in a["Dimensions"]} == NEW_FLEET
    assert isinstance(a["StateUpdatedTimestamp"], datetime)

    by_prefix = cw.describe_alarms(AlarmNamePrefix="rb-")["MetricAlarms"]
    assert [x["AlarmName"] for x in by_prefix] == ["rb-errors", "rb-latency"]

    cw.set_alarm_state(
        AlarmName="rb-latency",
        StateValue="ALARM",
        StateReason="drill",
        StateReasonData='{"why": "test"}',
    )
    in_alarm = cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]
    assert [x["AlarmName"] for x in in_alarm] == ["rb-latency"]
    assert in_alarm[0]["StateReason"] == "drill"

    items = cw.describe_alarm_history(AlarmName="rb-latency")["AlarmHistoryItems"]
    assert [i["HistoryItemType"] for i in items] == ["StateUpdate", "ConfigurationUpdate"]
    assert items[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    states = cw.describe_alarm_history(AlarmName="rb-latency", HistoryItemType="StateUpdate")
    assert len(states["AlarmHistoryItems"]) == 1

    cw.delete_alarms(AlarmNames=["rb-errors", "rb-latency", "other"])
    assert cw.describe_alarms(AlarmNamePrefix="rb-")["MetricAlarms"] == []


def test_describe_pages_with_next_token(cw: Any) -> None:
    for i in range(5):
        cw.put_metric_alarm(**alarm(f"page-{i}"))
    first = cw.describe_alarms(AlarmNamePrefix="page-", MaxRecords=3)
    second = cw.describe_alarms(AlarmNamePrefix="page-", MaxRecords=3, NextToken=first["NextToken"])
    names = [a["AlarmName"] for a in first["MetricAlarms"] + second["MetricAlarms"]]
    assert names == [f"page-{i}" for i in range(5)] and "NextToken" not in second
    cw.delete_alarms(AlarmNames=names)


def test_missing_alarms_are_resource_not_found(cw: Any) -> None:
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="x")
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.delete_alarms(AlarmNames=["nope"])


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"Period": 15}, "InvalidParameterValue"),
        ({"ExtendedStatistic": "p99"}, "InvalidParameterCombination"),
        ({"Statistic": None, "ExtendedStatistic": "p999"}, "InvalidParameterValue"),
        ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "InvalidParameterValue"),
        ({"DatapointsToAlarm": 3, "EvaluationPeriods": 2}, "ValidationError"),
        ({"TreatMissingData": "sometimes"}, "ValidationError"),
        ({"Period": 60, "EvaluationPeriods": 1441}, "ValidationError"),
    ],
)
def test_put_metric_alarm_validation(cw: Any, overrides: dict[str, Any], code: str) -> None:
    request = {k: v for k, v in alarm("bad", **overrides).items() if v is not None}
    with pytest.raises(ClientError) as info:
        cw.put_metric_alarm(**request)
    assert error_code(info.value) == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_server_side_shape_validation_when_client_does_not_validate(server: Server) -> None:
    lax = make_client(server, validate=False)
    with pytest.raises(ClientError) as info:
        lax.put_metric_alarm(**alarm("x" * 256))
    assert error_code(info.value) == "ValidationError"
    assert "Member must have length less than or equal to 255" in str(info.value)
    with pytest.raises(ClientError) as info:
        lax.describe_alarms(AlarmNames=["a"], AlarmNamePrefix="a")
    assert error_code(info.value) == "InvalidParameterCombination"


def test_limit_exceeded(cw: Any) -> None:
    existing = len(cw.describe_alarms(MaxRecords=100)["MetricAlarms"])
    names = [f"limit-{i:02d}" for i in range(20 - existing)]  # the server allows 20
    for name in names:
        cw.put_metric_alarm(**alarm(name))
    with pytest.raises(cw.exceptions.LimitExceededFault):
        cw.put_metric_alarm(**alarm("one-too-many"))
    cw.put_metric_alarm(**alarm(names[0], Threshold=2.0))  # updating is not creating
    cw.delete_alarms(AlarmNames=names)


def test_metric_statistics_counts_are_exact(cw: Any, store: MetricStore) -> None:
    base = (int(time.time()) // 60 - 5) * 60  # a whole minute, five minutes ago
    points = []
    for s in range(30):  # 30 seconds, 4 requests each, 1 error every 3rd second
        errors = 1 if s % 3 == 0 else 0
        latencies = [100.0 * (s + 1), 200.0, 300.0, 400.0]
        points += [
            Datapoint(
                metric_name="Invocations",
                dimensions=DIMS,
                timestamp=base + s,
                count=4,
                sum=4,
                minimum=1,
                maximum=1,
            ),
            Datapoint(
                metric_name="Invocation5XXErrors",
                dimensions=DIMS,
                timestamp=base + s,
                count=4,
                sum=errors,
                minimum=0,
                maximum=errors,
                values=[float(errors)] + [0.0] * 3,
            ),
            Datapoint(
                metric_name="ModelLatency",
                dimensions=DIMS,
                timestamp=base + s,
                count=4,
                sum=sum(latencies),
                minimum=min(latencies),
                maximum=max(latencies),
                values=latencies,
            ),
        ]
    store.put(points)
    dims = [{"Name": k, "Value": v} for k, v in DIMS.items()]
    window = {
        "StartTime": datetime.fromtimestamp(base, UTC),
        "EndTime": datetime.fromtimestamp(base + 60, UTC),
    }

    got = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        Dimensions=dims,
        Period=60,
        Statistics=["Sum", "SampleCount"],
        **window,
    )
    (dp,) = got["Datapoints"]
    assert dp["Sum"] == 120 and dp["SampleCount"] == 120
    assert dp["Timestamp"] == datetime.fromtimestamp(base, UTC)

    errs = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=dims,
        Period=10,
        Statistics=["Sum", "Average"],
        **window,
    )["Datapoints"]
    assert [d["Sum"] for d in errs] == [4, 3, 3]
    assert errs[0]["Average"] == pytest.approx(0.1)

    lat = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=dims,
        Period=60,
        ExtendedStatistics=["p50", "p100"],
        **window,
    )["Datapoints"]
    assert lat[0]["ExtendedStatistics"] == {"p50": 300.0, "p100": 3000.0}
    assert lat[0]["Unit"] == "Microseconds"

    data = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "inv",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocations",
                        "Dimensions": dims,
                    },
                    "Period": 10,
                    "Stat": "Sum",
                },
            },
            {
                "Id": "p99",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "ModelLatency",
                        "Dimensions": dims,
                    },
                    "Period": 30,
                    "Stat": "Maximum",
                },
            },
        ],
        **window,
    )["MetricDataResults"]
    assert data[0]["Values"] == [40.0, 40.0, 40.0] and data[0]["StatusCode"] == "Complete"
    assert data[0]["Timestamps"][0] == datetime.fromtimestamp(base + 20, UTC)  # newest first
    assert data[1]["Values"] == [3000.0]

    listed = cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=[{"Name": "VariantName"}])
    names = sorted(m["MetricName"] for m in listed["Metrics"])
    assert names == ["Invocation5XXErrors", "Invocations", "ModelLatency"]
    assert (
        cw.list_metrics(
            MetricName="Invocations", Dimensions=[{"Name": "EndpointName", "Value": "other"}]
        )["Metrics"]
        == []
    )


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"Period": 7}, "InvalidParameterValue"),
        ({"Statistics": ["Sum"], "ExtendedStatistics": ["p99"]}, "InvalidParameterCombination"),
        ({"StartTime": datetime(2026, 1, 2, tzinfo=UTC)}, "InvalidParameterValue"),
        (
            {"Period": 1, "StartTime": datetime(2025, 12, 31, tzinfo=UTC)},
            "InvalidParameterCombination",
        ),
    ],
)
def test_get_metric_statistics_validation(cw: Any, overrides: dict[str, Any], code: str) -> None:
    request = {
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocations",
        "Period": 60,
        "Statistics": ["Sum"],
        "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
        "EndTime": datetime(2026, 1, 1, 1, tzinfo=UTC),
        **overrides,
    }
    with pytest.raises(ClientError) as info:
        cw.get_metric_statistics(**request)
    assert error_code(info.value) == code


def test_alarm_source_reads_greenshift_alarms(server: Server, cw: Any) -> None:
    cw.put_metric_alarm(**alarm("src-a"))
    cw.set_alarm_state(AlarmName="src-a", StateValue="ALARM", StateReason="drill")
    source = CloudWatchAlarmSource(lambda: cloudwatch_client(Settings(api_port=server.port)))
    states = source.states(["src-a", "src-missing"])
    assert list(states) == ["src-a"] and states["src-a"].state == "ALARM"
    cw.delete_alarms(AlarmNames=["src-a"])
