"""Metric math: the pure expression evaluator, and a metric-math alarm (the new fleet's 5XX
rate against the old fleet's) put through the CloudWatch API and evaluated against the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenshift.metrics.cloudwatch_api import CloudWatchApi
from greenshift.metrics.evaluator import SETTLE_SECONDS, evaluate_all
from greenshift.metrics.metric_math import MetricMathError, Query, evaluate_alarm, parse
from greenshift.metrics.model import Datapoint
from greenshift.metrics.store import MetricStore

M1 = [1.0, None, 3.0]
M2 = [10.0, 20.0, None]


def run(expression: str, **series: list[float | None]) -> list[float | None]:
    queries = [Query(id=i) for i in series] + [Query("e", expression, return_data=True)]
    return evaluate_alarm(queries, dict(series), len(next(iter(series.values()))))


def test_arithmetic_keeps_missing_points_missing() -> None:
    assert run("m2 - m1 * 2", m1=M1, m2=M2) == [8.0, None, None]
    assert run("-(m1 + 1) / 2", m1=M1) == [-1.0, None, -2.0]
    assert run("m1 / 0", m1=M1) == [None, None, None]


def test_fill_if_and_comparisons() -> None:
    assert run("FILL(m1, 0)", m1=M1) == [1.0, 0.0, 3.0]
    assert run("FILL(m2, 0) - FILL(m1, 0) > 15", m1=M1, m2=M2) == [0.0, 1.0, 0.0]
    assert run("IF(m1 > 2, 100, m1)", m1=M1) == [1.0, None, 100.0]
    assert run("IF(FILL(m1, 0) == 0, 1)", m1=M1) == [None, 1.0, None]
    assert run("m1 >= 1 AND m1 < 3", m1=M1) == [1.0, None, 0.0]


def test_sum_and_avg_of_an_array_go_period_by_period() -> None:
    assert run("SUM(METRICS())", m1=M1, m2=M2) == [11.0, 20.0, 3.0]
    assert run("AVG(METRICS())", m1=M1, m2=M2) == [5.5, 20.0, 3.0]
    assert run('MAX(METRICS("m2"))', m1=M1, m2=M2) == [10.0, 20.0, None]
    # Of one series: one value for the whole range, as CloudWatch.
    assert run("SUM(m1)", m1=M1) == [4.0, 4.0, 4.0]
    assert run("AVG(m1) - m1", m1=M1) == [1.0, None, -1.0]


def test_expressions_may_use_each_other_in_any_order() -> None:
    queries = [
        Query("out", "gap * 100", return_data=True),
        Query("gap", "FILL(new, 0) - FILL(old, 0)"),
        Query("new"),
        Query("old"),
    ]
    series = {"new": [0.1, None], "old": [0.02, 0.01]}
    assert evaluate_alarm(queries, series, 2) == pytest.approx([8.0, -1.0])


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("m1 +", "ends too early"),
        ("RATE(m1)", "RATE is not supported"),
        ("m1 $ 2", "Unexpected character"),
        ("FILL(m1)", "FILL takes"),
        ("m3 * 2", "m3, which is not a query id"),
        ("METRICS()", "not an array"),
        ("e + 1", "cycle"),
    ],
)
def test_what_cannot_be_evaluated_says_why(expression: str, says: str) -> None:
    with pytest.raises(MetricMathError, match=says):
        run(expression, m1=M1)


def test_parse_is_left_associative() -> None:
    assert run("m1 - 1 - 1", m1=[5.0]) == [3.0]
    assert run("8 / 2 / 2 + m1", m1=[0.0]) == [2.0]
    assert parse("a") == parse(" a ")


# --- an alarm on the new fleet's 5XX rate against the old fleet's ---------------------------
T0 = 1_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricStore]:
    s = MetricStore(f"sqlite:///{tmp_path / 'registry.db'}")
    yield s
    s.close()


def fleet(config: str) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Dimensions": [
                {"Name": "EndpointName", "Value": "ep"},
                {"Name": "VariantName", "Value": "AllTraffic"},
                {"Name": "EndpointConfigName", "Value": config},
            ],
        },
        "Period": 10,
        "Stat": "Average",
    }


GAP_ALARM = {
    "AlarmName": "gap",
    "Metrics": [
        {"Id": "new", "MetricStat": fleet("green"), "ReturnData": False},
        {"Id": "old", "MetricStat": fleet("blue"), "ReturnData": False},
        {"Id": "gap", "Expression": "FILL(new, 0) - FILL(old, 0)", "ReturnData": True},
    ],
    "EvaluationPeriods": 1,
    "Threshold": 0.05,
    "ComparisonOperator": "GreaterThanThreshold",
}


def served(store: MetricStore, config: str, ts: int, total: int, errors: int) -> None:
    values = [1.0] * errors + [0.0] * (total - errors)
    store.put(
        [
            Datapoint(
                metric_name="Invocation5XXErrors",
                dimensions={
                    "EndpointName": "ep",
                    "VariantName": "AllTraffic",
                    "EndpointConfigName": config,
                },
                timestamp=ts,
                count=total,
                sum=float(errors),
                minimum=min(values),
                maximum=max(values),
                values=values,
            )
        ]
    )


def state(store: MetricStore) -> str:
    row = store.alarms.get("gap")
    assert row is not None
    return row.state_value


def test_a_canary_5_points_worse_than_its_baseline_trips_and_an_equal_one_does_not(
    store: MetricStore,
) -> None:
    api = CloudWatchApi(store)
    api.handle_sync("PutMetricAlarm", GAP_ALARM)
    described = api.handle_sync("DescribeAlarms", {"AlarmNames": ["gap"]})
    assert described["MetricAlarms"][0]["Metrics"][2]["Expression"].startswith("FILL")
    # Period 1: both fleets at 4 % errors: the gap is 0.
    served(store, "blue", T0 + 1, total=100, errors=4)
    served(store, "green", T0 + 2, total=50, errors=2)
    assert evaluate_all(store, now=T0 + 10 + SETTLE_SECONDS) == [("gap", "INSUFFICIENT_DATA", "OK")]
    # Period 2: the new fleet at 10 %, the old at 4 %: 6 points worse.
    served(store, "blue", T0 + 11, total=100, errors=4)
    served(store, "green", T0 + 12, total=50, errors=5)
    assert evaluate_all(store, now=T0 + 20 + SETTLE_SECONDS) == [("gap", "OK", "ALARM")]
    assert state(store) == "ALARM"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"Namespace": "AWS/SageMaker"}, "cannot be specified together with Metrics"),
        ({"Metrics": GAP_ALARM["Metrics"][:2]}, "should return data"),
        (
            {"Metrics": [*GAP_ALARM["Metrics"][:2], {"Id": "gap", "Expression": "RATE(new)"}]},
            "RATE is not supported",
        ),
    ],
)
def test_bad_metric_math_alarms_are_refused(
    store: MetricStore, change: dict[str, Any], says: str
) -> None:
    from greenshift.errors import GreenshiftError

    with pytest.raises(GreenshiftError, match=says):
        CloudWatchApi(store).handle_sync("PutMetricAlarm", {**GAP_ALARM, **change})
