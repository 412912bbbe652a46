"""The statistics CloudWatch computes, as pure functions over per-second aggregates.

Everything that turns stored seconds into a CloudWatch datapoint lives here: which periods are
allowed, how seconds fall into periods, how seconds merge, and how a statistic (`Sum`, `p99`, ...)
is read from the merge. The store and the alarm evaluator only move data around these functions.

Percentiles come from a bounded sample per second (at most `SAMPLE_CAP` values, evenly spaced
order statistics of what happened in that second). When seconds merge, each sampled value stands
for `count / len(sample)` requests, so a busy second weighs more than a quiet one, as it would if
every raw value had been kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

STANDARD_STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
SAMPLE_CAP = 32
# GetMetricStatistics / GetMetricData return at most this many datapoints per call (AWS limit).
MAX_DATAPOINTS = 1440
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)$")


def is_valid_period(period: int) -> bool:
    """Periods CloudWatch accepts for 1-second (high-resolution) data: 1, 5, 10, 20, 30 seconds or
    any multiple of 60."""
    return period in (1, 5, 10, 20, 30) or (period > 0 and period % 60 == 0)


def is_valid_alarm_period(period: int) -> bool:
    """Alarm periods CloudWatch accepts: 10, 20, 30 seconds or any multiple of 60."""
    return period in (10, 20, 30) or (period > 0 and period % 60 == 0)


def parse_percentile(name: str) -> float | None:
    """`p99` -> 99.0, `p99.9` -> 99.9; None when `name` is not a percentile statistic."""
    if _PERCENTILE.match(name) is None:
        return None
    value = float(name[1:])
    return value if 0.0 <= value <= 100.0 else None


def is_statistic(name: str) -> bool:
    return name in STANDARD_STATISTICS or parse_percentile(name) is not None


def period_start(timestamp: int, period: int) -> int:
    """Periods are aligned to the epoch, as CloudWatch aligns them to the clock."""
    return timestamp - timestamp % period


def downsample(values: Sequence[float], cap: int = SAMPLE_CAP) -> list[float]:
    """At most `cap` evenly spaced order statistics of `values` (all of them when few enough),
    sorted. Keeps the minimum and the maximum, so tail percentiles stay honest."""
    ordered = sorted(values)
    if len(ordered) <= cap:
        return ordered
    if cap == 1:
        return [ordered[-1]]
    step = (len(ordered) - 1) / (cap - 1)
    return [ordered[round(i * step)] for i in range(cap)]


@dataclass
class Aggregate:
    """What CloudWatch knows about a metric over some seconds: count, sum, extremes and a
    weighted sample of values (value, weight) for percentiles."""

    count: float = 0.0
    sum: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    sample: list[tuple[float, float]] = field(default_factory=list)

    def add(
        self, count: float, total: float, minimum: float, maximum: float, values: Sequence[float]
    ) -> None:
        """Merge one second's aggregate."""
        if count <= 0:
            return
        self.count += count
        self.sum += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        if values:
            weight = count / len(values)
            self.sample.extend((v, weight) for v in values)
        else:
            # No sample kept (e.g. all values equal): the extremes stand for the second.
            half = count / 2
            self.sample.extend(((minimum, half), (maximum, half)))

    @property
    def empty(self) -> bool:
        return self.count <= 0

    def statistic(self, name: str) -> float | None:
        """The value of a statistic, or None when there is no data (a missing datapoint)."""
        if self.empty:
            return None
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.sum
        if name == "Average":
            return self.sum / self.count
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        pct = parse_percentile(name)
        if pct is None:
            raise ValueError(f"unknown statistic {name!r}")
        return weighted_percentile(self.sample, pct)


def weighted_percentile(sample: Iterable[tuple[float, float]], pct: float) -> float | None:
    """Nearest-rank percentile over weighted values: the smallest value whose cumulative weight
    reaches `pct` percent of the total. p0 is the minimum, p100 the maximum."""
    ordered = sorted(sample)
    if not ordered:
        return None
    total = sum(weight for _, weight in ordered)
    if pct <= 0:
        return ordered[0][0]
    target = total * pct / 100.0
    running = 0.0
    for value, weight in ordered:
        running += weight
        # A small tolerance keeps float sums from skipping the exact rank.
        if running >= target - 1e-9 * total:
            return value
    return ordered[-1][0]


@dataclass(frozen=True)
class Second:
    """One stored second of one metric series (the shape the store hands to these functions)."""

    timestamp: int
    count: float
    sum: float
    minimum: float
    maximum: float
    values: tuple[float, ...] = ()


def bucketize(seconds: Iterable[Second], start: int, end: int, period: int) -> dict[int, Aggregate]:
    """Group seconds in [start, end) into epoch-aligned periods; only periods with data appear.
    Keys are period start times."""
    buckets: dict[int, Aggregate] = {}
    for s in seconds:
        if not start <= s.timestamp < end:
            continue
        key = period_start(s.timestamp, period)
        buckets.setdefault(key, Aggregate()).add(s.count, s.sum, s.minimum, s.maximum, s.values)
    return buckets


def period_starts(start: int, end: int, period: int) -> list[int]:
    """Starts of the aligned periods that begin in [start, end), oldest first."""
    first = period_start(start, period)
    if first < start:
        first += period
    return list(range(first, end, period))
