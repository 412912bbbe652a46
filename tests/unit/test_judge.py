"""The built-in baseline judge: its power on a canary 5 points worse than its baseline at
50 req/s, its false-alarm rate on a canary equal to its baseline over 20 trials, and a judge
alarm put through the CloudWatch API and evaluated against the store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenshift.metrics.cloudwatch_api import CloudWatchApi
from greenshift.metrics.evaluator import SETTLE_SECONDS, evaluate_all
from greenshift.metrics.judge import Z_BOUNDARY, Counts, error_z, latency_z
from greenshift.metrics.model import Datapoint
from greenshift.metrics.store import MetricStore

RATE = 50  # requests/s on the endpoint
CANARY_SHARE = 1 / 3  # a canary of 1 instance among 3
BAKE = 300  # seconds
BASELINE = 0.01


def first_trip(rng: random.Random, canary_rate: float) -> int | None:
    """Second of the bake at which the judge, looking every second at everything so far, first
    calls the canary worse (None: never within the bake)."""
    new, old = Counts(0, 0), Counts(0, 0)
    for second in range(1, BAKE + 1):
        n_new = sum(rng.random() < CANARY_SHARE for _ in range(RATE))
        n_old = RATE - n_new
        new = Counts(
            new.requests + n_new, new.errors + sum(rng.random() < canary_rate for _ in range(n_new))
        )
        old = Counts(
            old.requests + n_old, old.errors + sum(rng.random() < BASELINE for _ in range(n_old))
        )
        z = error_z(new, old)
        if z is not None and z > Z_BOUNDARY:
            return second
    return None


def test_a_canary_5_points_worse_is_caught_within_one_bake() -> None:
    trips = [first_trip(random.Random(seed), BASELINE + 0.05) for seed in range(20)]
    assert all(t is not None for t in trips), trips
    worst = max(t for t in trips if t is not None)
    print(f"5 points worse at {RATE} req/s: caught after {sorted(trips)} s (worst {worst} s)")
    assert worst < BAKE


def test_a_canary_equal_to_its_baseline_does_not_trip_over_20_trials() -> None:
    trips = [first_trip(random.Random(1000 + seed), BASELINE) for seed in range(20)]
    false_alarms = sum(t is not None for t in trips)
    print(f"equal canary: {false_alarms} false alarm(s) in 20 bakes of {BAKE} s")
    assert false_alarms == 0, trips


def test_error_z() -> None:
    assert error_z(Counts(10, 1), Counts(100, 1)) is None  # too few on the new fleet
    assert error_z(Counts(100, 0), Counts(100, 0)) == 0.0
    assert error_z(Counts(1000, 60), Counts(2000, 20)) == pytest.approx(7.98, abs=0.05)
    z = error_z(Counts(1000, 5), Counts(2000, 20))
    assert z is not None and z < 0  # better is not worse


def test_latency_z_sees_a_slower_fleet_and_not_an_equal_one() -> None:
    rng = random.Random(7)
    old = [(rng.lognormvariate(10, 0.3), 1.0) for _ in range(500)]
    same = [(rng.lognormvariate(10, 0.3), 1.0) for _ in range(200)]
    slower = [(rng.lognormvariate(10, 0.3) * 1.3, 1.0) for _ in range(200)]
    z_same, z_slow = latency_z(same, old), latency_z(slower, old)
    assert z_same is not None and z_same < Z_BOUNDARY
    assert z_slow is not None and z_slow > Z_BOUNDARY
    assert latency_z(slower[:10], old) is None


# --- a judge alarm through the API and the evaluator ------------------------------------------
T0 = 1_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricStore]:
    s = MetricStore(f"sqlite:///{tmp_path / 'registry.db'}")
    yield s
    s.close()


def fleet(config: str) -> dict[str, Any]:
    dims = {"EndpointName": "ep", "VariantName": "AllTraffic", "EndpointConfigName": config}
    return {
        "Metric": {
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        },
        "Period": 10,
        "Stat": "Average",
    }


def served(store: MetricStore, config: str, ts: int, total: int, errors: int) -> None:
    values = [1.0] * errors + [0.0] * (total - errors)
    dims = {"EndpointName": "ep", "VariantName": "AllTraffic", "EndpointConfigName": config}
    store.put(
        [
            Datapoint(
                metric_name="Invocation5XXErrors",
                dimensions=dims,
                timestamp=ts,
                count=total,
                sum=float(errors),
                minimum=min(values),
                maximum=max(values),
                values=values,
            )
        ]
    )


def test_an_error_judge_alarm_trips_on_a_worse_canary(store: MetricStore) -> None:
    api = CloudWatchApi(store)
    api.handle_sync(
        "PutMetricAlarm",
        {
            "AlarmName": "judge",
            "Metrics": [
                {"Id": "new", "MetricStat": fleet("green"), "ReturnData": False},
                {"Id": "old", "MetricStat": fleet("blue"), "ReturnData": False},
                {"Id": "verdict", "Expression": "ERROR_JUDGE(new, old)", "ReturnData": True},
            ],
            "EvaluationPeriods": 6,
            "DatapointsToAlarm": 1,
            "Threshold": Z_BOUNDARY,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    )
    # 10 s at 50 req/s: not enough yet to tell 6 % from 1 %... then 30 s more is plenty.
    for second in range(40):
        served(store, "blue", T0 + second, total=33, errors=1 if second % 3 == 0 else 0)
        served(store, "green", T0 + second, total=17, errors=1)
    assert evaluate_all(store, now=T0 + 10 + SETTLE_SECONDS) in (
        [],
        [("judge", "INSUFFICIENT_DATA", "OK")],
    )
    assert evaluate_all(store, now=T0 + 40 + SETTLE_SECONDS)[-1][2] == "ALARM"


def latency(store: MetricStore, config: str, ts: int, values: list[float]) -> None:
    dims = {"EndpointName": "ep", "VariantName": "AllTraffic", "EndpointConfigName": config}
    store.put(
        [
            Datapoint(
                metric_name="ModelLatency",
                dimensions=dims,
                timestamp=ts,
                count=len(values),
                sum=sum(values),
                minimum=min(values),
                maximum=max(values),
                values=values,
            )
        ]
    )


def latency_fleet(config: str) -> dict[str, Any]:
    query = fleet(config)
    query["Metric"]["MetricName"] = "ModelLatency"
    return query


@pytest.mark.parametrize(("slowdown", "tripped"), [(1.0, False), (1.5, True)])
def test_a_latency_judge_alarm_trips_on_a_slower_canary_only(
    store: MetricStore, slowdown: float, tripped: bool
) -> None:
    CloudWatchApi(store).handle_sync(
        "PutMetricAlarm",
        {
            "AlarmName": "judge",
            "Metrics": [
                {"Id": "new", "MetricStat": latency_fleet("green"), "ReturnData": False},
                {"Id": "old", "MetricStat": latency_fleet("blue"), "ReturnData": False},
                {"Id": "verdict", "Expression": "LATENCY_JUDGE(new, old)", "ReturnData": True},
            ],
            "EvaluationPeriods": 6,
            "DatapointsToAlarm": 1,
            "Threshold": Z_BOUNDARY,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    )
    rng = random.Random(3)
    for second in range(40):
        latency(store, "blue", T0 + second, [rng.lognormvariate(9, 0.3) for _ in range(33)])
        latency(
            store,
            "green",
            T0 + second,
            [rng.lognormvariate(9, 0.3) * slowdown for _ in range(17)],
        )
    evaluate_all(store, now=T0 + 40 + SETTLE_SECONDS)
    row = store.alarms.get("judge")
    assert row is not None and (row.state_value == "ALARM") is tripped, row.state_reason
