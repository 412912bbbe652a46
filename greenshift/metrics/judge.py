"""The built-in baseline judge: is the new fleet clearly worse than the old one? Pure.

Two tests, each one-sided (only "worse" matters) and each giving a z score that an alarm
compares with its Threshold:

- Error rate: the two-proportion z test (pooled) of the new fleet's 5XX rate against the old
  fleet's, over every request both served in the alarm's range.
- Latency: the Mann-Whitney U test (normal approximation, weighted samples as the metric store
  keeps them) of the new fleet's ModelLatency against the old fleet's; a shift counts only when
  the new median is also at least `LATENCY_MARGIN` above the old, so a huge sample cannot alarm
  on a meaningless microsecond.

The judge is sequential: the evaluator looks every second, so the boundary must hold up under
many looks. `Z_BOUNDARY` = 3.5 is a one-sided p of 0.00023 per look; over a bake's hundreds of
(strongly correlated) looks the false-alarm rate stays far below 5 % (tests/unit/test_judge.py
measures it), while a canary 5 points worse than a 1 % baseline at 50 req/s crosses it within
a minute. Too little data is no verdict (None): `MIN_REQUESTS` requests on each fleet.

At the end of every bake the deployment also asks for each judge's verdict over the whole bake
(greenshift.metrics.judge_source); one that lacks data extends the bake, then pauses it
(greenshift.metrics.verdicts), and every verdict is an event of the deployment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_BOUNDARY = 3.5
MIN_REQUESTS = 100  # the normal approximation needs some volume
LATENCY_MARGIN = 0.10  # the new median at least 10 % above the old one


@dataclass(frozen=True)
class Counts:
    requests: float
    errors: float

    @property
    def rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def error_z(new: Counts, old: Counts, min_requests: float = MIN_REQUESTS) -> float | None:
    """z of "the new fleet's error rate is higher than the old one's"; None without enough
    requests on either fleet."""
    if new.requests < min_requests or old.requests < min_requests:
        return None
    pooled = (new.errors + old.errors) / (new.requests + old.requests)
    variance = pooled * (1 - pooled) * (1 / new.requests + 1 / old.requests)
    if variance <= 0:
        return 0.0  # both fleets all-good (or all-bad): no difference to see
    return (new.rate - old.rate) / math.sqrt(variance)


Sample = Sequence[tuple[float, float]]  # (value, weight), as stats.Aggregate.sample


def latency_z(
    new: Sample, old: Sample, min_requests: float = MIN_REQUESTS, margin: float = LATENCY_MARGIN
) -> float | None:
    """z of "the new fleet is slower" (Mann-Whitney, ties counted half), 0 when its median is
    within `margin` of the old one's; None without enough requests on either fleet."""
    n1, n0 = sum(w for _, w in new), sum(w for _, w in old)
    if n1 < min_requests or n0 < min_requests:
        return None
    if median(new) < median(old) * (1 + margin):
        return 0.0
    # U of the new sample: for each new value, the old weight below it plus half the ties.
    merged = sorted([(v, w, 1) for v, w in new] + [(v, w, 0) for v, w in old])
    u = 0.0
    old_below = 0.0
    i = 0
    while i < len(merged):
        j = i
        tie_old = tie_new = 0.0
        while j < len(merged) and merged[j][0] == merged[i][0]:
            if merged[j][2]:
                tie_new += merged[j][1]
            else:
                tie_old += merged[j][1]
            j += 1
        u += tie_new * (old_below + tie_old / 2)
        old_below += tie_old
        i = j
    mean = n1 * n0 / 2
    sd = math.sqrt(n1 * n0 * (n1 + n0 + 1) / 12)
    return (u - mean) / sd if sd > 0 else 0.0


def median(sample: Sample) -> float:
    """The weighted median (0 for an empty sample)."""
    ordered = sorted(sample)
    half = sum(w for _, w in ordered) / 2
    running = 0.0
    for value, weight in ordered:
        running += weight
        if running >= half:
            return value
    return ordered[-1][0] if ordered else 0.0


def describe(kind: str, z: float | None, new: Counts, old: Counts) -> str:
    """The verdict with its figures, for the alarm's reason and the deployment's events."""
    if z is None:
        return (
            f"{kind}: not enough data (new {new.requests:.0f}, old {old.requests:.0f} requests; "
            f"{MIN_REQUESTS} each needed)"
        )
    return (
        f"{kind}: new {new.rate:.2%} of {new.requests:.0f} vs old {old.rate:.2%} of "
        f"{old.requests:.0f}, z {z:.2f} (boundary {Z_BOUNDARY})"
    )
