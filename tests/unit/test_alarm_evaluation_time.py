"""Alarm states carry their evaluation time (issue 14 item 11): the evaluator stamps every alarm
it judged in every round, changed or not; the worker's alarm source returns the stamp; the alarm
check reports states that are too old as stale."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.alarms import AlarmActivities, stale_ages
from activities.models import AlarmCheckInput
from greenshift.metrics.alarm_source import EvaluatedAlarmSource
from greenshift.metrics.evaluator import evaluate_all
from greenshift.metrics.store import MetricStore
from greenshift.ports import AlarmState
from tests.unit.test_alarm_evaluator import put_alarm

T0 = 1_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricStore]:
    s = MetricStore(f"sqlite:///{tmp_path / 'registry.db'}")
    yield s
    s.close()


class Described:
    """What DescribeAlarms answers (the inner source): states without an evaluation time."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        return {n: AlarmState(name=n, state="OK") for n in names if n in self.names}


def test_every_round_stamps_every_alarm_even_without_a_change(store: MetricStore) -> None:
    put_alarm(store, AlarmName="errors")
    put_alarm(store, AlarmName="latency")
    assert store.alarms.evaluated_at(["errors", "latency"]) == {}
    evaluate_all(store, now=T0)
    assert store.alarms.evaluated_at(["errors", "latency"]) == {"errors": T0, "latency": T0}
    state = store.alarms.get("errors")
    assert state is not None
    evaluate_all(store, now=T0 + 1)  # nothing changes state, the stamp moves all the same
    assert store.alarms.evaluated_at(["errors"]) == {"errors": T0 + 1}
    again = store.alarms.get("errors")
    assert again is not None and again.state_updated == state.state_updated


def test_the_worker_source_carries_the_stamp_and_the_epoch_when_never_evaluated(
    store: MetricStore,
) -> None:
    put_alarm(store, AlarmName="errors")
    source = EvaluatedAlarmSource(Described(["errors", "new"]), store)
    never = source.states(["errors", "new", "missing"])
    assert set(never) == {"errors", "new"}
    assert never["errors"].evaluated_at == datetime.fromtimestamp(0, UTC)
    evaluate_all(store, now=T0)
    assert source.states(["errors"])["errors"].evaluated_at == datetime.fromtimestamp(T0, UTC)


def test_stale_means_older_than_the_limit_and_unknown_is_never_stale() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    states = {
        "fresh": AlarmState(name="fresh", state="OK", evaluated_at=now - timedelta(seconds=3)),
        "hung": AlarmState(name="hung", state="OK", evaluated_at=now - timedelta(seconds=60)),
        "aws": AlarmState(name="aws", state="OK"),  # real CloudWatch: no evaluation time
    }
    assert stale_ages(states, now, 10.0) == {"hung": 60.0}
    assert stale_ages(states, now, None) == {}


def test_the_alarm_check_reports_stale_states(store: MetricStore) -> None:
    put_alarm(store, AlarmName="errors")
    source = EvaluatedAlarmSource(Described(["errors"]), store)
    check = AlarmActivities(source, stale_after_seconds=10.0).check_alarms
    result = check(AlarmCheckInput(alarms=["errors"]))
    assert result.tripped is None and result.stale == ["errors"]
    evaluate_all(store)  # now
    assert check(AlarmCheckInput(alarms=["errors"])).stale == []
