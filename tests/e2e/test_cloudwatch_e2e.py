"""End to end through boto3's `cloudwatch` client: the metrics of real traffic through the data
plane match the requests that were sent (counts exact, latencies plausible)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NAMESPACE = "AWS/SageMaker"
# The collector delivers a second once it is over (1 s flush) and the store is written at once;
# a few seconds covers a loaded machine.
METRICS_WAIT_SECONDS = 15.0


@pytest.fixture(scope="module")
def endpoints(stack: Stack) -> dict[str, str]:
    """One endpoint of one instance per model; returns endpoint name -> its config."""
    sm = stack.client("sagemaker")
    create_model(sm, "cw-echo", "echo-v1")
    create_model(sm, "cw-faulty", "faulty")
    create_model(sm, "cw-slow", "slow", environment={"SLOW_MS": "50"})
    made = {}
    for name, model in (("cw-echo", "cw-echo"), ("cw-faulty", "cw-faulty"), ("cw-slow", "cw-slow")):
        create_config(sm, f"{name}-c1", model, count=1)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c1")
        made[name] = f"{name}-c1"
    for name in made:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
    return made


def _runtime(stack: Stack) -> Any:
    """A runtime client that never retries: a retry would be a second invocation counted."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=stack.settings.runtime_url,
        region_name=stack.settings.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


def _invoke(runtime: Any, endpoint: str, n: int) -> list[str]:
    """Send exactly n invocations; returns each one's outcome ("ok" or the error code)."""
    outcomes = []
    for i in range(n):
        try:
            runtime.invoke_endpoint(
                EndpointName=endpoint, Body=json.dumps({"i": i}), ContentType="application/json"
            )
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    return outcomes


def _dims(endpoint: str, config: str | None = None) -> list[dict[str, str]]:
    dims = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    if config is not None:
        dims.append({"Name": "EndpointConfigName", "Value": config})
    return dims


def _wait_for(read: Callable[[], float | None], want: Callable[[float], bool]) -> float | None:
    """Poll `read` until `want` holds (bounded); returns the last value read."""
    deadline = time.monotonic() + METRICS_WAIT_SECONDS
    value = read()
    while (value is None or not want(value)) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def _statistic(
    cw: Any, metric: str, dims: list[dict[str, str]], stat: str, since: datetime
) -> float | None:
    """One statistic over [since, since + 2 min), from 1 s datapoints combined here (a longer
    period would be aligned to the clock and take in the earlier tests' traffic); None without
    data."""
    out = cw.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=dims,
        StartTime=since,
        EndTime=since + timedelta(minutes=2),
        Period=1,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum"],
    )
    points = out["Datapoints"]
    if not points:
        return None
    combine = {
        "Sum": lambda: sum(p["Sum"] for p in points),
        "SampleCount": lambda: sum(p["SampleCount"] for p in points),
        "Minimum": lambda: min(p["Minimum"] for p in points),
        "Maximum": lambda: max(p["Maximum"] for p in points),
        "Average": lambda: sum(p["Sum"] for p in points) / sum(p["SampleCount"] for p in points),
    }
    return float(combine[stat]())


def _now() -> datetime:
    """The current second: every request sent from now on is counted in it or later."""
    return datetime.now(UTC).replace(microsecond=0)


def test_invocations_sum_equals_the_requests_sent(stack: Stack, endpoints: dict[str, str]) -> None:
    cw = stack.client("cloudwatch")
    since = _now()
    sent = 37
    assert _invoke(_runtime(stack), "cw-echo", sent) == ["ok"] * sent

    def per_fleet() -> float | None:
        return _statistic(cw, "Invocations", _dims("cw-echo", "cw-echo-c1"), "Sum", since)

    assert _wait_for(per_fleet, lambda v: v >= sent) == sent
    assert _statistic(cw, "Invocations", _dims("cw-echo"), "Sum", since) == sent
    assert _statistic(cw, "Invocation5XXErrors", _dims("cw-echo"), "Sum", since) == 0
    # Nothing is counted twice once a later flush comes round.
    time.sleep(2)
    assert per_fleet() == sent

    # GetMetricData agrees, over 10 s periods summed.
    data = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "inv",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": "Invocations",
                        "Dimensions": _dims("cw-echo", "cw-echo-c1"),
                    },
                    "Period": 10,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=since - timedelta(seconds=20),
        EndTime=datetime.now(UTC) + timedelta(seconds=20),
    )
    (result,) = data["MetricDataResults"]
    assert result["StatusCode"] == "Complete"
    assert sum(result["Values"]) == sent

    listed = cw.list_metrics(Namespace=NAMESPACE, MetricName="Invocations")["Metrics"]
    assert {"Name": "EndpointConfigName", "Value": "cw-echo-c1"} in [
        d for m in listed for d in m["Dimensions"]
    ]


def test_model_500s_count_as_5xx_although_the_client_sees_a_424(
    stack: Stack, endpoints: dict[str, str]
) -> None:
    cw = stack.client("cloudwatch")
    since = _now()
    runtime = _runtime(stack)
    sent = 12
    try:
        runtime.invoke_endpoint(
            EndpointName="cw-faulty", Body=b"{}", ContentType="application/json"
        )
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ModelError"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 424
        assert error.response["OriginalStatusCode"] == 500
    else:
        pytest.fail("the faulty model answered")
    assert _invoke(runtime, "cw-faulty", sent - 1) == ["ModelError"] * (sent - 1)

    def errors() -> float | None:
        return _statistic(
            cw, "Invocation5XXErrors", _dims("cw-faulty", "cw-faulty-c1"), "Sum", since
        )

    assert _wait_for(errors, lambda v: v >= sent) == sent
    dims = _dims("cw-faulty", "cw-faulty-c1")
    assert _statistic(cw, "Invocations", dims, "Sum", since) == sent
    assert _statistic(cw, "Invocation5XXErrors", dims, "Average", since) == 1.0
    assert _statistic(cw, "Invocation4XXErrors", dims, "Sum", since) == 0


def test_model_latency_is_plausible(stack: Stack, endpoints: dict[str, str]) -> None:
    cw = stack.client("cloudwatch")
    since = _now()
    runtime = _runtime(stack)
    assert _invoke(runtime, "cw-slow", 10) == ["ok"] * 10
    assert _invoke(runtime, "cw-echo", 10) == ["ok"] * 10

    def count(endpoint: str) -> Callable[[], float | None]:
        return lambda: _statistic(cw, "ModelLatency", _dims(endpoint), "SampleCount", since)

    assert _wait_for(count("cw-slow"), lambda v: v >= 10) == 10
    assert _wait_for(count("cw-echo"), lambda v: v >= 10) == 10
    # Microseconds: the slow model sleeps 50 ms in every request; nothing takes a second.
    slow_min = _statistic(cw, "ModelLatency", _dims("cw-slow"), "Minimum", since)
    slow_max = _statistic(cw, "ModelLatency", _dims("cw-slow"), "Maximum", since)
    assert slow_min is not None and slow_max is not None
    assert 50_000 <= slow_min <= slow_max < 1_000_000
    echo_avg = _statistic(cw, "ModelLatency", _dims("cw-echo"), "Average", since)
    echo_max = _statistic(cw, "ModelLatency", _dims("cw-echo"), "Maximum", since)
    assert echo_avg is not None and echo_max is not None
    assert 0 <= echo_avg < 50_000 and echo_max < 1_000_000
    overhead = _statistic(cw, "OverheadLatency", _dims("cw-slow"), "Maximum", since)
    assert overhead is not None and 0 <= overhead < 1_000_000
