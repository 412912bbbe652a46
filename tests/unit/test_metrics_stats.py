"""The pure statistics: periods, percentiles, merging seconds into periods."""

from __future__ import annotations

import pytest

from greenshift.metrics import stats
from greenshift.metrics.stats import Aggregate, Second


@pytest.mark.parametrize("period", [1, 5, 10, 20, 30, 60, 120, 3600])
def test_valid_periods(period: int) -> None:
    assert stats.is_valid_period(period)


@pytest.mark.parametrize("period", [0, 2, 15, 45, 61, 90])
def test_invalid_periods(period: int) -> None:
    assert not stats.is_valid_period(period)


def test_alarm_periods_exclude_sub_ten_seconds() -> None:
    assert [p for p in (1, 5, 10, 20, 30, 60, 90, 300) if stats.is_valid_alarm_period(p)] == [
        10,
        20,
        30,
        60,
        300,
    ]


@pytest.mark.parametrize(
    ("name", "value"), [("p99", 99.0), ("p50", 50.0), ("p99.9", 99.9), ("p0", 0.0), ("p100", 100.0)]
)
def test_parse_percentile(name: str, value: float) -> None:
    assert stats.parse_percentile(name) == value


@pytest.mark.parametrize("name", ["p", "p101", "P99", "p99.999", "Average", "tm99"])
def test_not_percentiles(name: str) -> None:
    assert stats.parse_percentile(name) is None


def test_downsample_keeps_extremes_and_cap() -> None:
    values = [float(v) for v in range(1000)]
    sample = stats.downsample(values, 32)
    assert len(sample) == 32
    assert sample[0] == 0.0 and sample[-1] == 999.0
    assert sample == sorted(sample)
    assert stats.downsample([3.0, 1.0], 32) == [1.0, 3.0]


def test_standard_statistics() -> None:
    agg = Aggregate()
    agg.add(2, 3.0, 1.0, 2.0, [1.0, 2.0])
    agg.add(3, 12.0, 3.0, 5.0, [3.0, 4.0, 5.0])
    assert agg.statistic("SampleCount") == 5
    assert agg.statistic("Sum") == 15.0
    assert agg.statistic("Average") == 3.0
    assert agg.statistic("Minimum") == 1.0
    assert agg.statistic("Maximum") == 5.0


def test_empty_aggregate_is_missing() -> None:
    assert Aggregate().statistic("Sum") is None


def test_percentiles_of_exact_values() -> None:
    agg = Aggregate()
    values = [float(v) for v in range(1, 101)]
    agg.add(100, sum(values), 1.0, 100.0, values)
    assert agg.statistic("p50") == 50.0
    assert agg.statistic("p90") == 90.0
    assert agg.statistic("p99") == 99.0
    assert agg.statistic("p100") == 100.0


def test_percentile_weights_busy_seconds_more() -> None:
    # One quiet second at 1000 us, one busy second (99 requests) at 10 us: p50 is 10.
    agg = Aggregate()
    agg.add(1, 1000.0, 1000.0, 1000.0, [1000.0])
    agg.add(99, 990.0, 10.0, 10.0, [])
    assert agg.statistic("p50") == 10.0
    assert agg.statistic("p99") == 10.0
    assert agg.statistic("p100") == 1000.0


def test_bucketize_aligns_to_period() -> None:
    seconds = [Second(t, 1, 1.0, 1.0, 1.0) for t in range(95, 125)]
    buckets = stats.bucketize(seconds, 90, 130, 10)
    assert sorted(buckets) == [90, 100, 110, 120]
    assert buckets[90].count == 5 and buckets[100].count == 10 and buckets[120].count == 5


def test_bucketize_excludes_outside_range() -> None:
    seconds = [Second(t, 1, 1.0, 1.0, 1.0) for t in (9, 10, 19, 20)]
    buckets = stats.bucketize(seconds, 10, 20, 10)
    assert list(buckets) == [10] and buckets[10].count == 2


def test_period_starts() -> None:
    assert stats.period_starts(95, 130, 10) == [100, 110, 120]
