"""A bake's judge verdicts read from the metric store (greenshift.metrics.judge_source): lacking
data on a quiet canary, then a verdict once the deployment (not only the alarm's range) holds
enough; the old fleet's baseline after a full shift; fail with the figures on a worse canary; a
plain alarm is no judge."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenshift.metrics.cloudwatch_api import CloudWatchApi
from greenshift.metrics.judge import Z_BOUNDARY
from greenshift.metrics.judge_source import MAX_LOOKBACK_SECONDS, StoreJudgeSource
from greenshift.metrics.store import MetricStore
from greenshift.metrics.verdicts import JudgeInput, Outcome
from tests.unit.test_judge import fleet, latency, latency_fleet, served

T0 = 2_000_000


def at(second: float) -> datetime:
    return datetime.fromtimestamp(T0 + second, UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricStore]:
    s = MetricStore(f"sqlite:///{tmp_path / 'registry.db'}")
    api = CloudWatchApi(s)
    for name, metric, expression in (
        ("errors-judge", fleet, "ERROR_JUDGE(new, old)"),
        ("latency-judge", latency_fleet, "LATENCY_JUDGE(new, old)"),
    ):
        api.handle_sync(
            "PutMetricAlarm",
            {
                "AlarmName": name,
                "Metrics": [
                    {"Id": "new", "MetricStat": metric("green"), "ReturnData": False},
                    {"Id": "old", "MetricStat": metric("blue"), "ReturnData": False},
                    {"Id": "verdict", "Expression": expression, "ReturnData": True},
                ],
                "EvaluationPeriods": 3,  # a range of 30 s
                "DatapointsToAlarm": 1,
                "Threshold": Z_BOUNDARY,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
            },
        )
    api.handle_sync(
        "PutMetricAlarm",
        {
            "AlarmName": "plain",
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Statistic": "Average",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 0.1,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )
    yield s
    s.close()


def ask(alarms: list[str], since: float, now: float) -> tuple[JudgeInput, datetime]:
    """A look of a deployment that started `since` seconds after T0, at `now`."""
    request = JudgeInput(
        endpoint="ep",
        deployment_id="d1",
        alarms=alarms,
        since=at(since),
        step_index=2,
        look=1,
        at=at(now),
    )
    return request, at(now)


def test_a_quiet_canary_lacks_data_until_the_deployment_holds_enough(store: MetricStore) -> None:
    source = StoreJudgeSource(store)
    # 2 requests/s on the canary, 20 on the baseline: 60 canary requests in any 30 s range.
    for second in range(120):
        served(store, "green", T0 + second, total=2, errors=0)
        served(store, "blue", T0 + second, total=20, errors=0)
    # The deployment started at 40: its looks reach back the alarm's range (30 s), to 10.
    early = source.verdicts(*ask(["errors-judge", "plain", "missing"], 40, 50))
    assert [v.alarm for v in early] == ["errors-judge"]  # plain and missing alarms: no judge
    assert early[0].outcome is Outcome.LACKS_DATA
    assert early[0].new_requests == 82 and early[0].z is None
    assert "not enough data" in early[0].message and "82 requests" in early[0].message
    # Later in the deployment (not only the sliding 30 s range) the canary has enough.
    later = source.verdicts(*ask(["errors-judge"], 40, 119))
    assert later[0].outcome is Outcome.PASS and later[0].new_requests == 220
    assert later[0].z is not None and "no worse" in later[0].message


def test_the_old_fleets_baseline_counts_after_all_traffic_left_it(store: MetricStore) -> None:
    # All at once: the old fleet served until 60, the new one from then on.
    for second in range(120):
        if second < 60:
            served(store, "blue", T0 + second, total=20, errors=0)
        else:
            served(store, "green", T0 + second, total=10, errors=0)
    (verdict,) = StoreJudgeSource(store).verdicts(*ask(["errors-judge"], 50, 119))
    assert verdict.outcome is Outcome.PASS
    assert (verdict.new_requests, verdict.old_requests) == (600, 800)  # old: seconds 20-59


def test_a_worse_canary_fails_with_its_figures(store: MetricStore) -> None:
    for second in range(60):
        served(store, "green", T0 + second, total=10, errors=1)
        served(store, "blue", T0 + second, total=20, errors=1 if second % 5 == 0 else 0)
    (verdict,) = StoreJudgeSource(store).verdicts(*ask(["errors-judge"], 0, 59))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.z is not None and verdict.z > Z_BOUNDARY
    assert verdict.new_value == pytest.approx(0.1) and verdict.old_value == pytest.approx(0.01)
    assert "new 10.00% errors of 600 requests vs old 1.00% of 1200" in verdict.message
    assert verdict.detail()["Verdict"] == "Fail" and verdict.detail()["NewRequests"] == 600


def test_a_slower_canary_fails_the_latency_judge(store: MetricStore) -> None:
    rng = random.Random(5)
    for second in range(30):
        latency(store, "blue", T0 + second, [rng.lognormvariate(9, 0.3) for _ in range(20)])
        latency(store, "green", T0 + second, [rng.lognormvariate(9, 0.3) * 2 for _ in range(10)])
    (verdict,) = StoreJudgeSource(store).verdicts(*ask(["latency-judge"], 0, 29))
    assert verdict.outcome is Outcome.FAIL and verdict.judge == "LATENCY_JUDGE"
    assert verdict.new_value is not None and verdict.old_value is not None
    assert verdict.new_value > 1.5 * verdict.old_value
    assert "median" in verdict.message


def test_a_look_reads_at_most_the_last_four_hours(store: MetricStore) -> None:
    for second in (0, 3599, 3600 + 1, 5 * 3600 - 1):  # before and within the lookback
        served(store, "green", T0 + second, total=50, errors=0)
        served(store, "blue", T0 + second, total=50, errors=0)
    (verdict,) = StoreJudgeSource(store).verdicts(*ask(["errors-judge"], 0, 5 * 3600))
    assert MAX_LOOKBACK_SECONDS == 4 * 3600
    assert verdict.new_requests == 100  # the two seconds after 1 h, not the two before


def test_the_judge_alarms_are_told_apart_from_plain_and_missing_ones(store: MetricStore) -> None:
    """What the alarm check asks so a bake without a judge skips the judging activity."""
    source = StoreJudgeSource(store)
    names = ["plain", "latency-judge", "missing", "errors-judge", "latency-judge"]
    assert source.judge_alarms(names) == ["latency-judge", "errors-judge"]
    assert source.judge_alarms(["plain", "missing"]) == []
