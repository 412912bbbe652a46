"""Quotas (SEMANTICS.md section 2, `ResourceLimitExceeded`): pure checks, clear messages.

Instances are counted at the plan's peak: blue/green keeps the whole old fleet while the whole
new one comes up, rolling needs only one batch more than the endpoint has. The message names the
limit, its value, the current use and what the request needs, and says when a rolling update
would fit where blue/green does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from greenshift.errors import ResourceLimitExceeded
from greenshift.settings import Settings

# The smallest rolling batch SEMANTICS.md allows: 5 % of the variant's instances, at least 1.
MIN_ROLLING_BATCH_PERCENT = 5


@dataclass(frozen=True)
class InstanceAsk:
    """What one request needs, in instances."""

    operation: str
    endpoint: str
    peak: int  # the endpoint's instance count at the plan's peak
    endpoint_now: int  # instances the endpoint has now (already part of the host's use)
    strategy: str  # "blue/green", "rolling", "create", "in place"
    rolling_peak: int | None = None  # the peak a rolling update would have, when one is allowed


def rolling_peak(blue_total: int, green_total: int) -> int:
    """Peak of a rolling update with the smallest batch: the larger fleet plus one batch."""
    batch = max(1, math.ceil(MIN_ROLLING_BATCH_PERCENT * green_total / 100))
    return max(blue_total, green_total) + batch


def _rolling_hint(ask: InstanceAsk, fits: bool) -> str:
    if ask.rolling_peak is None or ask.strategy == "rolling" or not fits:
        return ""
    return (
        f" A rolling update (DeploymentConfig.RollingUpdatePolicy) needs only one batch more: "
        f"{ask.rolling_peak} instance(s) at its peak, which would fit."
    )


def check_endpoints(settings: Settings, endpoints_now: int) -> None:
    if endpoints_now + 1 > settings.max_endpoints:
        raise ResourceLimitExceeded(
            f"The limit max_endpoints (GREENSHIFT_MAX_ENDPOINTS) is {settings.max_endpoints} "
            f"endpoint(s), with current utilization of {endpoints_now} endpoint(s) and a request "
            "delta of 1 endpoint(s). Delete an endpoint or raise the limit."
        )


def check_instances(settings: Settings, ask: InstanceAsk, host_used: int) -> None:
    """Raise ResourceLimitExceeded when `ask` does not fit the per-endpoint or the host limit."""
    how = {
        "blue/green": "blue/green keeps both fleets up at its peak",
        "rolling": "a rolling update needs one batch more than the endpoint has",
        "create": "the new endpoint's fleet",
        "in place": "the requested instance counts",
    }.get(ask.strategy, ask.strategy)
    per_endpoint = settings.max_instances_per_endpoint
    if ask.peak > per_endpoint:
        fits = ask.rolling_peak is not None and ask.rolling_peak <= per_endpoint
        raise ResourceLimitExceeded(
            f"The limit max_instances_per_endpoint (GREENSHIFT_MAX_INSTANCES_PER_ENDPOINT) is "
            f"{per_endpoint} instance(s); endpoint {ask.endpoint} has {ask.endpoint_now} "
            f"instance(s) now and this {ask.operation} needs {ask.peak} at its peak ({how})."
            + _rolling_hint(ask, fits)
        )
    delta = max(0, ask.peak - ask.endpoint_now)
    limit = settings.max_instances
    if host_used + delta > limit:
        others = host_used - ask.endpoint_now
        fits = ask.rolling_peak is not None and others + ask.rolling_peak <= limit
        raise ResourceLimitExceeded(
            f"The limit max_instances (GREENSHIFT_MAX_INSTANCES, model instances this host may "
            f"run) is {limit} instance(s), with current utilization of {host_used} instance(s) "
            f"and a request delta of {delta} instance(s): this {ask.operation} of endpoint "
            f"{ask.endpoint} needs {ask.peak} instance(s) at its peak ({how})."
            + _rolling_hint(ask, fits)
        )
