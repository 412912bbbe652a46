"""The evaluation loop against a real store: windows, early ALARM, SetAlarmState, history."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenshift.metrics.cloudwatch_api import CloudWatchApi
from greenshift.metrics.evaluator import SETTLE_SECONDS, evaluate_all, run_evaluator
from greenshift.metrics.model import Datapoint
from greenshift.metrics.store import MetricStore
from greenshift.settings import Settings

DIMS = {"EndpointName": "ep", "VariantName": "v", "EndpointConfigName": "green"}
T0 = 1_000_000  # a multiple of 10: periods start at T0, T0+10, ...


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricStore]:
    s = MetricStore(f"sqlite:///{tmp_path / 'registry.db'}")
    yield s
    s.close()


def put_alarm(store: MetricStore, **overrides: Any) -> None:
    request = {
        "AlarmName": "errors",
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocation5XXErrors",
        "Dimensions": [{"Name": k, "Value": v} for k, v in DIMS.items()],
        "Statistic": "Sum",
        "Period": 10,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        **overrides,
    }
    CloudWatchApi(store).handle_sync("PutMetricAlarm", request)


def requests(
    store: MetricStore, ts: int, total: int, errors: int, metric: str = "Invocation5XXErrors"
) -> None:
    values = [1.0] * errors + [0.0] * (total - errors)
    store.put(
        [
            Datapoint(
                metric_name=metric,
                dimensions=DIMS,
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
    row = store.alarms.get("errors")
    assert row is not None
    return row.state_value


def test_closed_period_with_errors_goes_to_alarm_with_history(store: MetricStore) -> None:
    put_alarm(store)
    requests(store, T0 + 3, total=10, errors=2)
    # Period [T0, T0+10) is complete SETTLE_SECONDS after it ends.
    assert evaluate_all(store, now=T0 + 10 + SETTLE_SECONDS) == [
        ("errors", "INSUFFICIENT_DATA", "ALARM")
    ]
    row = store.alarms.get("errors")
    assert row is not None and row.state_reason.startswith("Threshold Crossed: 1 out of the last 1")
    data = json.loads(row.state_reason_data or "{}")
    assert data["evaluatedDatapoints"][0]["value"] == 2.0
    (item,) = store.alarms.history("errors", "StateUpdate", None, None, descending=True)
    assert item.summary == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert json.loads(item.data)["newState"]["stateReasonData"]["recentDatapoints"] == [2.0]


def test_no_data_stays_insufficient_then_ok_on_clean_traffic(store: MetricStore) -> None:
    put_alarm(store)
    assert evaluate_all(store, now=T0 + 12) == []
    requests(store, T0 + 12, total=10, errors=0)
    assert evaluate_all(store, now=T0 + 22) == [("errors", "INSUFFICIENT_DATA", "OK")]


def test_partial_period_that_already_breaches_alarms_early(store: MetricStore) -> None:
    put_alarm(store, EvaluationPeriods=1)
    requests(store, T0 + 1, total=10, errors=0)
    evaluate_all(store, now=T0 + 12)
    assert state(store) == "OK"
    requests(store, T0 + 13, total=10, errors=1)
    # Period [T0+10, T0+20) is still open at T0+14, but its Sum already crossed.
    assert evaluate_all(store, now=T0 + 14) == [("errors", "OK", "ALARM")]
    # It stays ALARM while the period runs, and when it closes.
    assert evaluate_all(store, now=T0 + 17) == []
    assert evaluate_all(store, now=T0 + 22) == []


def test_partial_period_never_clears_an_alarm_early(store: MetricStore) -> None:
    put_alarm(store, Statistic="Average", Threshold=0.5, ComparisonOperator="GreaterThanThreshold")
    requests(store, T0 + 5, total=10, errors=10)
    evaluate_all(store, now=T0 + 12)
    assert state(store) == "ALARM"
    requests(store, T0 + 13, total=10, errors=0)  # the open period looks fine already
    assert evaluate_all(store, now=T0 + 14) == []
    assert evaluate_all(store, now=T0 + 22) == [("errors", "ALARM", "OK")]


def test_set_alarm_state_holds_until_the_data_disagrees(store: MetricStore) -> None:
    put_alarm(store, TreatMissingData="ignore")
    api = CloudWatchApi(store)
    api.handle_sync(
        "SetAlarmState", {"AlarmName": "errors", "StateValue": "ALARM", "StateReason": "drill"}
    )
    # No data and `ignore`: the evaluation agrees with nothing, so the manual state holds.
    assert evaluate_all(store, now=T0 + 12) == []
    assert state(store) == "ALARM"
    requests(store, T0 + 15, total=5, errors=0)
    assert evaluate_all(store, now=T0 + 22) == [("errors", "ALARM", "OK")]


def test_percentile_alarm_on_latency(store: MetricStore) -> None:
    put_alarm(
        store,
        MetricName="ModelLatency",
        Statistic=None,
        ExtendedStatistic="p99",
        Threshold=100000.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    values = [1000.0] * 98 + [200000.0] * 2
    store.put(
        [
            Datapoint(
                metric_name="ModelLatency",
                dimensions=DIMS,
                timestamp=T0 + 4,
                count=100,
                sum=sum(values),
                minimum=1000.0,
                maximum=200000.0,
                values=values,
            )
        ]
    )
    assert evaluate_all(store, now=T0 + 12) == [("errors", "INSUFFICIENT_DATA", "ALARM")]


async def test_run_evaluator_loop_stops_on_event(store: MetricStore, tmp_path: Path) -> None:
    put_alarm(store, TreatMissingData="breaching")
    stop = asyncio.Event()
    task = asyncio.create_task(run_evaluator(Settings(home=tmp_path), stop, 0.1, store=store))
    for _ in range(200):  # 10 s at most
        if state(store) == "ALARM":
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert state(store) == "ALARM"
