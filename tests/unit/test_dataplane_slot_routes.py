"""The slots map's routes (config.slot_routes): a slot whose whole range of picks is one backend
is routed to it by name (no counter, no picks lookup); any other slot by its base key."""

from __future__ import annotations

from greenshift.dataplane.config import slot_routes
from greenshift.dataplane.desired import DesiredState
from greenshift.dataplane.routing import RESOLUTION


def test_a_one_backend_slot_is_routed_by_name_and_a_split_one_by_its_base_key() -> None:
    state = DesiredState(
        slots=(("Shop", 0), ("Shop/A", 1), ("Cart", 16), ("Cart/A", 17), ("Down", 32)),
        picks=(
            (0, 999, "f.blue"),  # Shop: a canary split
            (1000, RESOLUTION - 1, "f.green"),
            (RESOLUTION, 2 * RESOLUTION - 1, "f.blue"),  # Shop/A: all on blue
            (16 * RESOLUTION, 17 * RESOLUTION - 1, "f.cart"),
            (17 * RESOLUTION, 18 * RESOLUTION - 1, "f.cart"),
        ),
    )
    assert slot_routes(state) == [
        ("Shop", "0"),
        ("Shop/A", "f.blue"),
        ("Cart", "f.cart"),
        ("Cart/A", "f.cart"),
        ("Down", str(32 * RESOLUTION)),  # no picks at all: the counter path ends in a 503
    ]
