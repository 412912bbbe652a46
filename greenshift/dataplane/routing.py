"""Routing maths: desired traffic shares -> the integer ranges HAProxy picks backends from.

How traffic is split (why ranges, not server weights): the n-th request of a slot (an endpoint,
or an endpoint + target variant) gets the key `pick_key(n) = n x STRIDE mod RESOLUTION` and a map
of integer ranges turns the key into a fleet backend; within a fleet the instances are identical
and share that fleet's traffic evenly (HAProxy `leastconn` or `random`).
- Not server weights: those are exact only with a weight-respecting algorithm; `leastconn` at
  low concurrency sends everything to the heaviest idle server, so weights between blue and
  green fleets would not give the shares a deployment set.
- Not rand(): a random draw is exact only on average; 50 % measured over 750 requests is off by
  more than 3 points one time in ten. STRIDE / RESOLUTION is close to the golden ratio, so the
  keys of any run of consecutive requests are spread evenly over [0, RESOLUTION) (a Weyl
  sequence): a 10 % canary gets one request in ten, interleaved, in every second.

Pure functions only: these are the numbers easiest to get wrong and cheapest to test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from greenshift.registry.records import EndpointRouting, VariantRoute

RESOLUTION = 10_000  # shares are exact to 0.01 %
STRIDE = 6_181  # ~ RESOLUTION / golden ratio, coprime with RESOLUTION: every key is visited


def pick_key(n: int) -> int:
    """The key of a slot's n-th request (what the HAProxy config computes)."""
    return n * STRIDE % RESOLUTION


def allocate(shares: Sequence[tuple[str, float]], total: int = RESOLUTION) -> list[tuple[str, int]]:
    """Split `total` integer units in proportion to `shares` (largest remainder method).

    The parts sum to exactly `total` when any share is positive (else all are 0); each part
    differs from its exact proportion by less than one unit; a share of 0 gets 0.
    """
    positive = [max(0.0, s) if math.isfinite(s) else 0.0 for _, s in shares]
    mass = sum(positive)
    if mass <= 0:
        return [(key, 0) for key, _ in shares]
    exact = [s * total / mass for s in positive]
    parts = [math.floor(x) for x in exact]
    left = total - sum(parts)
    # Hand the leftover units to the largest remainders; ties go to the earlier entry so the
    # result is deterministic (a re-render of the same routing gives the same map).
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        if positive[i] > 0:
            parts[i] += 1
    return [(key, part) for (key, _), part in zip(shares, parts, strict=True)]


def ranges(parts: Sequence[tuple[str, int]], base: int = 0) -> list[tuple[int, int, str]]:
    """Consecutive inclusive ranges [lo, hi] for the non-empty parts, starting at `base`."""
    out: list[tuple[int, int, str]] = []
    lo = base
    for key, size in parts:
        if size > 0:
            out.append((lo, lo + size - 1, key))
            lo += size
    return out


def fleet_shares_in_variant(
    variant: VariantRoute, healthy: Mapping[str, int]
) -> list[tuple[str, float]]:
    """Shares of the variant's fleets among the fleets that can serve (>= 1 InService instance).

    A fleet with no healthy instance gets nothing, and its share is spread over the others in
    proportion, so traffic never goes where nobody can answer while capacity exists elsewhere.
    """
    serving = [(f.fleet_id, f.share) for f in variant.fleets if healthy.get(f.fleet_id, 0) > 0]
    mass = sum(max(0.0, s) for _, s in serving)
    if mass <= 0:
        return [(f.fleet_id, 0.0) for f in variant.fleets]
    serving_ids = {fid for fid, _ in serving}
    return [
        (f.fleet_id, max(0.0, f.share) / mass if f.fleet_id in serving_ids else 0.0)
        for f in variant.fleets
    ]


def endpoint_fleet_shares(
    routing: EndpointRouting, healthy: Mapping[str, int]
) -> list[tuple[str, float]]:
    """Each fleet's share of the endpoint's traffic: weight_v / sum(weights) x fleet share.

    Variants that cannot serve at all drop out of the sum (their traffic goes to the others).
    """
    per_variant = [(v, fleet_shares_in_variant(v, healthy)) for v in routing.variants]
    able = [(v, fs) for v, fs in per_variant if sum(s for _, s in fs) > 0]
    total_weight = sum(max(0.0, v.weight) for v, _ in able)
    out: list[tuple[str, float]] = []
    for v, fs in per_variant:
        vshare = (
            max(0.0, v.weight) / total_weight
            if total_weight > 0 and any(v is a for a, _ in able)
            else 0.0
        )
        out.extend((fid, vshare * s) for fid, s in fs)
    return out
