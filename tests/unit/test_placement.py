"""Placement (greenshift.hosts.placement): evenness, capacity and determinism, as properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenshift.errors import ResourceLimitExceeded
from greenshift.fleet.instance_types import instance_type
from greenshift.hosts.placement import HostRoom, moves, place

TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.c5.2xlarge", "ml.g5.xlarge"]


@st.composite
def hosts(draw: st.DrawFn, unlimited: bool = False) -> list[HostRoom]:
    addresses = draw(st.lists(st.integers(2, 250), min_size=1, max_size=6, unique=True))
    found = []
    for a in addresses:
        if unlimited:
            found.append(HostRoom(address=f"127.0.0.{a}", gpus=1000))
            continue
        vcpus = draw(st.integers(1, 64))
        memory = float(draw(st.integers(1, 256)))
        found.append(
            HostRoom(
                address=f"127.0.0.{a}",
                vcpus=vcpus,
                memory_gib=memory,
                gpus=draw(st.integers(0, 8)),
                used_vcpus=draw(st.integers(0, vcpus)),
                used_memory_gib=float(draw(st.integers(0, int(memory)))),
            )
        )
    return found


@settings(max_examples=200, deadline=None)
@given(hosts(unlimited=True), st.sampled_from(TYPES), st.integers(0, 40))
def test_unlimited_hosts_are_filled_evenly(
    rooms: list[HostRoom], type_name: str, count: int
) -> None:
    placed = place(type_name, count, rooms)
    per_host = [placed.get(h.address, 0) for h in rooms]
    assert sum(per_host) == count
    assert max(per_host) - min(per_host) <= 1


@settings(max_examples=300, deadline=None)
@given(hosts(), st.sampled_from(TYPES), st.integers(0, 30))
def test_capacity_is_respected_or_the_fleet_is_refused(
    rooms: list[HostRoom], type_name: str, count: int
) -> None:
    shape = instance_type(type_name)
    try:
        placed = place(type_name, count, rooms)
    except ResourceLimitExceeded as error:
        assert type_name in str(error)
        # Refused only when truly short: the most each host could hold adds up to less.
        most = sum(_most(h, type_name) for h in rooms)
        assert most < count
        return
    assert sum(placed.values()) == count
    for room in rooms:
        n = placed.get(room.address, 0)
        assert room.used_vcpus + n * shape.vcpus <= room.vcpus
        assert room.used_memory_gib + n * shape.memory_gib <= room.memory_gib
        assert n * shape.gpus <= room.gpus
    # Evenness among hosts with room to spare: a host below another by 2 or more is full.
    for a in rooms:
        for b in rooms:
            if placed.get(a.address, 0) + 1 < placed.get(b.address, 0):
                assert not a.fits(shape, placed.get(a.address, 0))


@settings(max_examples=100, deadline=None)
@given(hosts(), st.sampled_from(TYPES), st.integers(0, 20), st.randoms())
def test_the_same_input_gives_the_same_answer_in_any_order(
    rooms: list[HostRoom], type_name: str, count: int, rng: object
) -> None:
    shuffled = list(rooms)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    try:
        first = place(type_name, count, rooms)
    except ResourceLimitExceeded as error:
        with pytest.raises(ResourceLimitExceeded) as again:
            place(type_name, count, shuffled)
        assert str(again.value) == str(error)
        return
    assert place(type_name, count, shuffled) == first


def test_six_instances_over_three_hosts_are_two_each() -> None:
    rooms = [HostRoom(address=f"127.0.0.{i}", vcpus=8, memory_gib=32) for i in (2, 3, 4)]
    assert place("ml.m5.large", 6, rooms) == {"127.0.0.2": 2, "127.0.0.3": 2, "127.0.0.4": 2}


def test_a_fleet_that_does_not_fit_says_what_is_short() -> None:
    rooms = [HostRoom(address="127.0.0.2", vcpus=4, memory_gib=16)]
    with pytest.raises(ResourceLimitExceeded) as refused:
        place("ml.m5.large", 3, rooms)
    text = str(refused.value)
    assert "hold 2 of the 3 ml.m5.large" in text
    assert "2 vCPU, 8 GiB each" in text
    assert "127.0.0.2" in text


def test_no_host_refuses_with_its_reason() -> None:
    with pytest.raises(ResourceLimitExceeded, match="no host is registered and alive"):
        place("ml.m5.large", 1, [])


def test_moves_are_the_per_host_difference() -> None:
    assert moves({"a": 2, "b": 2}, {"a": 1, "b": 2, "c": 1}) == {"a": -1, "c": 1}


def _most(room: HostRoom, type_name: str) -> int:
    shape = instance_type(type_name)
    n = 0
    while room.fits(shape, n) and n < 1000:
        n += 1
    return n


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 6)),
    st.integers(0, 30),
)
def test_running_instances_stay_where_they_are(current: dict[str, int], count: int) -> None:
    rooms = [HostRoom(address=a) for a in ("a", "b", "c", "d")]
    placed = place("ml.m5.large", count, rooms, current)
    assert sum(placed.values()) == count
    if count >= sum(current.values()):  # growing: nothing moves
        assert all(placed.get(a, 0) >= n for a, n in current.items())
    else:  # shrinking: nothing is added anywhere
        assert all(placed.get(a, 0) <= current.get(a, 0) for a in placed)


def test_replacements_of_a_lost_host_go_to_the_others_evenly() -> None:
    rooms = [HostRoom(address=a) for a in ("127.0.0.2", "127.0.0.3")]
    current = {"127.0.0.2": 2, "127.0.0.3": 2}  # 127.0.0.4 was lost with its 2
    assert place("ml.m5.large", 6, rooms, current) == {"127.0.0.2": 3, "127.0.0.3": 3}
