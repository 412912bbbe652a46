"""Judge verdicts as events: the judging activity over the real metric store and registry
writes each verdict once (a retried look adds nothing), and the webhooks get it with its
figures as a "SageMaker Endpoint Deployment State Change"."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities.judging import JudgeActivities
from greenshift.events.model import DEPLOYMENT_STATE_CHANGE
from greenshift.events.source import RegistryEventSource
from greenshift.metrics.judge_source import StoreJudgeSource
from greenshift.metrics.store import MetricStore
from greenshift.metrics.verdicts import VERDICT_EVENT, JudgeInput, Outcome
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.unit.test_events_source import _create
from tests.unit.test_judge import served
from tests.unit.test_judge_source import store as store  # the fixture: judge alarms put

S = Settings()
# The activity judges up to the wall clock: the data is from the last minute.
T0 = int(time.time()) - 60


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[SqlRegistry]:
    registry = SqlRegistry(f"sqlite:///{tmp_path / 'registry.db'}", arn_for=S.arn)
    yield registry
    registry.close()


def look(n: int) -> JudgeInput:
    return JudgeInput(
        endpoint="e1",
        deployment_id="d1",
        alarms=["errors-judge", "plain"],
        since=datetime.fromtimestamp(T0, UTC),
        step_index=2,
        look=n,
        at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def test_each_look_records_its_verdicts_once_and_webhooks_get_the_figures(
    store: MetricStore, reg: SqlRegistry
) -> None:
    published: list[dict[str, Any]] = []
    events = RegistryEventSource(reg, S, published.append)
    events.poll_once()  # the baseline
    _create(reg, "e1", "d1")
    for second in range(30):
        served(store, "green", T0 + second, total=1, errors=0)
        served(store, "blue", T0 + second, total=10, errors=0)
    activities = JudgeActivities(StoreJudgeSource(store), reg)

    first = activities.judge_bake(look(1))
    assert [v.outcome for v in first.verdicts] == [Outcome.LACKS_DATA]
    activities.judge_bake(look(1))  # a retried activity writes nothing new
    recorded = [e for e in reg.list_events("d1") if e.type == VERDICT_EVENT]
    assert len(recorded) == 1
    assert recorded[0].detail["Verdict"] == "LacksData" and recorded[0].detail["Look"] == 1
    assert recorded[0].detail["Step"] == 3 and recorded[0].detail["NewRequests"] == 30

    events.poll_once()
    deployment = [e for e in published if e["detail-type"] == DEPLOYMENT_STATE_CHANGE]
    verdicts = [e for e in deployment if e["detail"]["Deployment"]["Type"] == VERDICT_EVENT]
    assert len(verdicts) == 1
    sent = verdicts[0]["detail"]["Deployment"]
    assert "not enough data" in sent["Message"] and "30 requests" in sent["Message"]
    assert sent["Detail"]["AlarmName"] == "errors-judge" and sent["Detail"]["OldRequests"] == 300


def test_without_a_judge_source_there_is_no_verdict(reg: SqlRegistry) -> None:
    _create(reg, "e1", "d1")
    assert JudgeActivities(None, reg).judge_bake(look(1)).verdicts == []
    assert not [e for e in reg.list_events("d1") if e.type == VERDICT_EVENT]
