"""Capacity arithmetic: sizes, limits, shares and batch sequences.

Small pure functions, because rounding is where deployments go wrong: a canary that rounds to the
whole fleet is no canary, a batch that rounds to zero never finishes. Integer maths throughout;
shares are the only floats and are always `k / n` of integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenshift.contracts.sagemaker_shapes import CapacitySize

INSTANCE_COUNT = "INSTANCE_COUNT"
CAPACITY_PERCENT = "CAPACITY_PERCENT"


def ceil_div(a: int, b: int) -> int:
    """`ceil(a / b)` for non-negative integers, without floats."""
    return -(-a // b)


def instances_for(size: CapacitySize, n: int) -> int:
    """Instances a CapacitySize means for a variant of `n` instances.

    A percentage is `ceil(pct * n / 100)`, at least 1 (our rule): rounding down could make a
    canary of nothing, which would bake on no traffic and prove nothing.
    """
    if size.Type == CAPACITY_PERCENT:
        return max(1, ceil_div(size.Value * n, 100))
    return size.Value


@dataclass(frozen=True)
class Limit:
    """Allowed range of a size as a percentage of the variant's instances (inclusive)."""

    name: str
    low_pct: int
    high_pct: int

    def allows(self, size: CapacitySize, n: int) -> bool:
        """Checked on the requested value (SEMANTICS.md 4): a percentage as given, an instance
        count as the fraction `count / n`."""
        if size.Type == CAPACITY_PERCENT:
            return self.low_pct <= size.Value <= self.high_pct
        # low <= 100 * v / n <= high, multiplied out to stay in integers.
        return self.low_pct * n <= 100 * size.Value <= self.high_pct * n

    def count_range(self, n: int) -> tuple[int, int]:
        """The INSTANCE_COUNT values this limit allows for `n` instances (empty when lo > hi)."""
        return ceil_div(self.low_pct * n, 100), (self.high_pct * n) // 100


CANARY_LIMIT = Limit("CanarySize", 0, 50)
LINEAR_LIMIT = Limit("LinearStepSize", 10, 50)
ROLLING_LIMIT = Limit("MaximumBatchSize", 5, 50)


def share(k: int, n: int) -> float:
    """Share of a variant's traffic served by `k` of its `n` slots (our rule: traffic follows
    serving capacity)."""
    if n <= 0:
        return 0.0
    return min(k, n) / n


def linear_counts(n: int, step: int) -> list[int]:
    """Green instances carrying traffic after each linear step: step, 2*step, ..., n."""
    return cumulative(n, step)


def rolling_counts(n: int, batch: int) -> list[int]:
    """New instances after each rolling batch; the last batch may be smaller."""
    return cumulative(n, batch)


def cumulative(n: int, step: int) -> list[int]:
    if step <= 0:
        raise ValueError("step must be positive")
    return [min(n, i * step) for i in range(1, ceil_div(n, step) + 1)]


def blue_needed(green_active: int, green_n: int, blue_n: int) -> int:
    """Old instances still needed when `green_active` of `green_n` new slots serve: the old fleet
    carries the remaining share `(green_n - green_active) / green_n` of its `blue_n` slots,
    rounded up so it is never short of capacity."""
    if green_n <= 0:
        return blue_n
    return ceil_div((green_n - min(green_active, green_n)) * blue_n, green_n)


def rollback_batch(size: CapacitySize | None, n: int) -> int | None:
    """RollbackMaximumBatchSize in instances of the old fleet; None means all at once (absent,
    or a size that covers the whole fleet)."""
    if size is None or n <= 0:
        return None
    batch = instances_for(size, n)
    return None if batch >= n else batch
