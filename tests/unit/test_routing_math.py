"""Routing maths: shares -> integer ranges of rand(RESOLUTION), exact to 1/RESOLUTION."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from greenshift.dataplane.routing import (
    RESOLUTION,
    STRIDE,
    allocate,
    endpoint_fleet_shares,
    fleet_shares_in_variant,
    pick_key,
    ranges,
)
from greenshift.registry.records import EndpointRouting, FleetRoute, VariantRoute

shares = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1000.0)), min_size=1, max_size=12
)


@given(shares)
def test_allocate_is_exact_to_one_unit_and_sums_to_the_total(values: list[float]) -> None:
    parts = allocate([(str(i), v) for i, v in enumerate(values)])
    sizes = [p for _, p in parts]
    mass = sum(values)
    if mass == 0:
        assert sizes == [0] * len(values)
        return
    assert sum(sizes) == RESOLUTION
    for v, size in zip(values, sizes, strict=True):
        assert abs(size - v * RESOLUTION / mass) < 1
        if v == 0:
            assert size == 0


@given(shares)
def test_ranges_tile_the_slot_without_gaps(values: list[float]) -> None:
    parts = allocate([(str(i), v) for i, v in enumerate(values)])
    rs = ranges(parts, base=3 * RESOLUTION)
    expected_lo = 3 * RESOLUTION
    for lo, hi, _ in rs:
        assert lo == expected_lo and hi >= lo
        expected_lo = hi + 1
    if sum(values) > 0:
        assert expected_lo == 4 * RESOLUTION


def test_canary_split_is_exact() -> None:
    parts = dict(allocate([("blue", 0.9), ("green", 0.1)]))
    assert parts == {"blue": 9000, "green": 1000}
    assert dict(allocate([("a", 1), ("b", 1), ("c", 1)])) == {"a": 3334, "b": 3333, "c": 3333}


def _routing(*variants: tuple[str, float, list[tuple[str, float]]]) -> EndpointRouting:
    return EndpointRouting(
        endpoint="e",
        variants=[
            VariantRoute(
                variant=v, weight=w, fleets=[FleetRoute(fleet_id=f, share=s) for f, s in fleets]
            )
            for v, w, fleets in variants
        ],
    )


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=10.0),
            st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_endpoint_shares_are_weight_over_sum_times_fleet_share(
    spec: list[tuple[float, list[float]]],
) -> None:
    routing = _routing(
        *[
            (f"v{i}", w, [(f"v{i}f{j}", s) for j, s in enumerate(fs)])
            for i, (w, fs) in enumerate(spec)
        ]
    )
    healthy = {f.fleet_id: 1 for v in routing.variants for f in v.fleets}
    got = dict(endpoint_fleet_shares(routing, healthy))
    able = [(w, fs) for w, fs in spec if sum(fs) > 0]
    total_w = sum(w for w, _ in able)
    for i, (w, fs) in enumerate(spec):
        for j, s in enumerate(fs):
            want = 0.0
            if total_w > 0 and sum(fs) > 0:
                want = (w / total_w) * (s / sum(fs))
            assert abs(got[f"v{i}f{j}"] - want) < 1e-9
    # And the integer ranges built from them stay within 1 point (in fact 0.01 point).
    parts = dict(allocate(list(got.items())))
    if sum(got.values()) > 0:
        for k, share in got.items():
            assert abs(parts[k] / RESOLUTION - share / sum(got.values())) <= 0.01


def test_fleets_without_healthy_instances_get_nothing() -> None:
    variant = VariantRoute(
        variant="A",
        weight=1,
        fleets=[FleetRoute(fleet_id="blue", share=0.5), FleetRoute(fleet_id="green", share=0.5)],
    )
    assert fleet_shares_in_variant(variant, {"blue": 2}) == [("blue", 1.0), ("green", 0.0)]
    assert fleet_shares_in_variant(variant, {}) == [("blue", 0.0), ("green", 0.0)]


def test_a_variant_without_capacity_passes_its_traffic_to_the_others() -> None:
    routing = _routing(("A", 1.0, [("a", 1.0)]), ("B", 3.0, [("b", 1.0)]))
    assert dict(endpoint_fleet_shares(routing, {"a": 1})) == {"a": 1.0, "b": 0.0}
    assert dict(endpoint_fleet_shares(routing, {"a": 1, "b": 1})) == {"a": 0.25, "b": 0.75}


def test_stride_visits_every_key() -> None:
    assert math.gcd(STRIDE, RESOLUTION) == 1
    assert len({pick_key(n) for n in range(RESOLUTION)}) == RESOLUTION


@given(
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=200, max_value=20_000),
)
def test_any_run_of_requests_gets_its_share(share: float, start: int, length: int) -> None:
    """Consecutive requests of a slot follow the shares within 1 point from 200 requests on."""
    parts = (
        allocate([("green", share), ("blue", 1.0 - share)])
        if share < 1
        else [("green", RESOLUTION)]
    )
    green = dict(parts).get("green", 0)
    hits = sum(1 for n in range(start, start + length) if pick_key(n) < green)
    assert abs(hits / length - green / RESOLUTION) <= 0.01
