"""The metric store and alarm tables on SQLite (the same code runs on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.metrics.model import Datapoint
from greenshift.metrics.stats import SAMPLE_CAP
from greenshift.metrics.store import MetricStore

DIMS = {"EndpointName": "ep", "VariantName": "v"}


@pytest.fixture
def store(registry_url: str) -> Iterator[MetricStore]:
    """Once on SQLite, once on PostgreSQL (conftest's registry_url)."""
    s = MetricStore(registry_url)
    yield s
    s.close()


def point(
    ts: int, values: list[float], metric: str = "ModelLatency", dims: dict[str, str] = DIMS
) -> Datapoint:
    return Datapoint(
        metric_name=metric,
        dimensions=dims,
        timestamp=ts,
        count=len(values),
        sum=sum(values),
        minimum=min(values),
        maximum=max(values),
        values=values,
    )


def test_put_then_read_back_exact_dimensions_only(store: MetricStore) -> None:
    store.put([point(100, [1.0, 2.0]), point(101, [3.0])])
    store.put([point(100, [9.0], dims={**DIMS, "EndpointConfigName": "c2"})])
    seconds = store.seconds("AWS/SageMaker", "ModelLatency", DIMS, 0, 1000)
    assert [(s.timestamp, s.count, s.sum) for s in sorted(seconds, key=lambda s: s.timestamp)] == [
        (100, 2, 3.0),
        (101, 1, 3.0),
    ]
    assert store.seconds("AWS/SageMaker", "ModelLatency", {"EndpointName": "ep"}, 0, 1000) == []


def test_samples_are_capped(store: MetricStore) -> None:
    store.put([point(100, [float(v) for v in range(500)])])
    (second,) = store.seconds("AWS/SageMaker", "ModelLatency", DIMS, 0, 1000)
    assert len(second.values) == SAMPLE_CAP and second.count == 500


def test_empty_seconds_are_not_stored(store: MetricStore) -> None:
    store.put(
        [
            Datapoint(
                metric_name="Invocations",
                dimensions=DIMS,
                timestamp=5,
                count=0,
                sum=0,
                minimum=0,
                maximum=0,
            )
        ]
    )
    assert store.stored_seconds() == 0


def test_retention_deletes_old_seconds(tmp_path: Path) -> None:
    store = MetricStore(f"sqlite:///{tmp_path / 'r.db'}", retention_seconds=100)
    try:
        store.put([point(1000, [1.0]), point(1950, [1.0])])
        assert store.prune(now=2000) == 1
        assert [
            s.timestamp for s in store.seconds("AWS/SageMaker", "ModelLatency", DIMS, 0, 5000)
        ] == [1950]
    finally:
        store.close()


def test_list_series_filters_by_dimension(store: MetricStore) -> None:
    store.put(
        [
            point(100, [1.0]),
            point(100, [1.0], metric="Invocations"),
            point(100, [1.0], dims={**DIMS, "EndpointConfigName": "c2"}),
        ]
    )
    assert len(store.list_series("AWS/SageMaker")) == 3
    with_config = store.list_series(dimension_filters=[("EndpointConfigName", None)])
    assert [s.dimensions for s in with_config] == [
        (("EndpointConfigName", "c2"), ("EndpointName", "ep"), ("VariantName", "v"))
    ]
    assert store.list_series(dimension_filters=[("EndpointConfigName", "other")]) == []


def test_alarm_state_compare_and_set(store: MetricStore) -> None:
    alarms = store.alarms
    assert alarms.put("a", {"AlarmName": "a"}, now=1.0) is True
    row = alarms.get("a")
    assert row is not None and row.state_value == "INSUFFICIENT_DATA"
    assert alarms.set_state("a", "ALARM", "manual", None, now=2.0)
    # An evaluation that read the state before the SetAlarmState loses.
    assert not alarms.set_state("a", "OK", "eval", None, now=3.0, expect_updated=row.state_updated)
    assert alarms.get("a").state_value == "ALARM"  # type: ignore[union-attr]
    assert alarms.put("a", {"AlarmName": "a", "Period": 10}, now=4.0) is False
    assert alarms.get("a").state_value == "ALARM"  # type: ignore[union-attr]
    types = [h.item_type for h in alarms.history("a", None, None, None, descending=False)]
    assert types == ["ConfigurationUpdate", "StateUpdate", "ConfigurationUpdate"]


def test_delete_is_all_or_nothing(store: MetricStore) -> None:
    store.alarms.put("a", {}, now=1.0)
    assert store.alarms.delete(["a", "missing"], now=2.0) == ["missing"]
    assert store.alarms.get("a") is not None
    assert store.alarms.delete(["a"], now=2.0) == []
    assert store.alarms.get("a") is None
