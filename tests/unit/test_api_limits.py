"""Quota checks (pure): which limit, its value, the use, the request, and the rolling hint."""

from __future__ import annotations

import pytest

from greenshift.errors import ResourceLimitExceeded
from greenshift.limits import InstanceAsk, check_endpoints, check_instances, rolling_peak
from greenshift.settings import Settings

S = Settings(max_instances=10, max_endpoints=2, max_instances_per_endpoint=8)


def test_fits() -> None:
    check_instances(
        S, InstanceAsk("UpdateEndpoint", "e", peak=8, endpoint_now=4, strategy="blue/green"), 6
    )
    check_endpoints(S, 1)


def test_host_limit_counts_only_the_delta() -> None:
    ask = InstanceAsk("UpdateEndpoint", "e", peak=8, endpoint_now=4, strategy="blue/green")
    with pytest.raises(ResourceLimitExceeded) as exc:
        check_instances(S, ask, 7)  # 7 + 4 more > 10
    message = exc.value.message
    assert "max_instances" in message and "is 10 instance(s)" in message
    assert "utilization of 7" in message and "request delta of 4" in message
    assert "rolling" not in message.lower().replace("blue/green keeps both fleets", "")


def test_rolling_hint_only_when_rolling_would_fit() -> None:
    fits = InstanceAsk("UpdateEndpoint", "e", 8, 4, "blue/green", rolling_peak=5)
    with pytest.raises(ResourceLimitExceeded) as exc:
        check_instances(S, fits, 7)  # others 3 + rolling 5 = 8 <= 10
    assert "would fit" in exc.value.message
    too_big = InstanceAsk("UpdateEndpoint", "e", 8, 4, "blue/green", rolling_peak=8)
    with pytest.raises(ResourceLimitExceeded) as exc:
        check_instances(S, too_big, 7)  # others 3 + 8 = 11 > 10
    assert "would fit" not in exc.value.message


def test_per_endpoint_limit() -> None:
    with pytest.raises(ResourceLimitExceeded) as exc:
        check_instances(S, InstanceAsk("CreateEndpoint", "e", 9, 0, "create"), 0)
    assert "max_instances_per_endpoint" in exc.value.message and "is 8" in exc.value.message


def test_endpoint_limit() -> None:
    with pytest.raises(ResourceLimitExceeded) as exc:
        check_endpoints(S, 2)
    assert "max_endpoints" in exc.value.message and "utilization of 2" in exc.value.message


@pytest.mark.parametrize(
    ("blue", "green", "peak"), [(4, 4, 5), (1, 1, 2), (40, 40, 42), (3, 10, 11)]
)
def test_rolling_peak_is_one_minimum_batch_more(blue: int, green: int, peak: int) -> None:
    assert rolling_peak(blue, green) == peak
