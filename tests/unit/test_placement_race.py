"""Placements racing (issue 16): PlaceFleet run at the same moment by several workers, each with
registry and host store objects of its own (as separate processes hold them), on SQLite and on
PostgreSQL. The placement lock and the reservations it writes must let no index be handed out
twice and no room be given to two fleets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from temporalio.exceptions import ApplicationError

from activities.hosts import RESERVATION_TTL_SECONDS, HostPlacementActivities
from greenshift.hosts.messages import PlaceInput, Placement
from greenshift.hosts.service import advertisement
from greenshift.hosts.shares import with_reservations
from greenshift.hosts.store import HostStore
from greenshift.registry.sql import SqlRegistry
from tests.registry_records import fleet, instance

T = TypeVar("T")
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


class Worker:
    """What one worker process holds: its own registry and host store (own pools)."""

    def __init__(self, url: str) -> None:
        self.registry = SqlRegistry(url)
        self.store = HostStore(url)
        self.activities = HostPlacementActivities(self.registry, self.store, 30.0)

    def close(self) -> None:
        self.store.close()
        self.registry.close()


@pytest.fixture
def workers(registry_url: str) -> Iterator[list[Worker]]:
    made = [Worker(registry_url) for _ in range(8)]
    try:
        yield made
    finally:
        for worker in made:
            worker.close()


def race(contenders: list[Callable[[], T]]) -> list[T | ApplicationError]:
    """Run every contender on a thread of its own, all released at once."""
    barrier = threading.Barrier(len(contenders), timeout=30)

    def run(contender: Callable[[], T]) -> T | ApplicationError:
        barrier.wait()
        try:
            return contender()
        except ApplicationError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(contenders)) as pool:
        return list(pool.map(run, contenders, timeout=120))


def _register(store: HostStore, vcpus: int = 0) -> None:
    for address in HOSTS:
        store.register(advertisement(address, "greenshift", vcpus=vcpus))


def _new_indices(placement: Placement) -> list[int]:
    return [i for share in placement.shares for i in share.indices]


def test_one_fleet_placed_by_eight_workers_at_once_launches_each_index_once(
    workers: list[Worker],
) -> None:
    """A deployment's provision step and the healer's replacement placing one fleet together:
    the first gets the six new instances, the others find them reserved and launch nothing."""
    _register(workers[0].store)
    workers[0].registry.upsert_fleet(fleet(desired_count=6))
    data = PlaceInput(fleet_id="ep.A.d1", count=6, grow=True)
    results = race([lambda w=w: w.activities.place_fleet(data) for w in workers])
    placements = [r for r in results if isinstance(r, Placement)]
    assert len(placements) == len(workers), results
    handed_out = [i for p in placements for i in _new_indices(p)]
    assert sorted(handed_out) == [0, 1, 2, 3, 4, 5]
    for placement in placements:  # every one of them sees the same 2/2/2 target
        assert [(s.address, s.count) for s in placement.shares] == [(h, 2) for h in HOSTS]
    reserved = workers[0].store.reservations()
    assert sorted((r.index, r.host) for r in reserved) == sorted(
        (i, s.address) for p in placements for s in p.shares for i in s.indices
    )


def test_two_fleets_racing_for_the_last_room_get_it_once(workers: list[Worker]) -> None:
    """Hosts of 4 vCPU hold two ml.m5.large each: 6 in all. Two fleets of 4 placed at once:
    exactly one fits; the other is refused with what is short, before anything launches."""
    _register(workers[0].store, vcpus=4)
    workers[0].registry.upsert_fleet(fleet("ep.A.x", desired_count=4))
    workers[0].registry.upsert_fleet(fleet("ep.A.y", desired_count=4))
    results = race(
        [
            lambda: workers[0].activities.place_fleet(
                PlaceInput(fleet_id="ep.A.x", count=4, grow=True)
            ),
            lambda: workers[1].activities.place_fleet(
                PlaceInput(fleet_id="ep.A.y", count=4, grow=True)
            ),
        ]
    )
    won = [r for r in results if isinstance(r, Placement)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(won) == 1 and len(refused) == 1, results
    assert refused[0].type == "ResourceLimitExceeded"
    assert "can hold 2 of the 4" in refused[0].message, refused[0].message
    assert len(_new_indices(won[0])) == 4
    assert len(workers[0].store.reservations()) == 4


def test_a_launched_reservation_gives_way_to_its_record_and_a_stale_one_expires(
    registry_url: str,
) -> None:
    store = HostStore(registry_url)
    registry = SqlRegistry(registry_url)
    try:
        _register(store)
        registry.upsert_fleet(fleet(desired_count=3))
        activities = HostPlacementActivities(registry, store, 30.0)
        first = activities.place_fleet(PlaceInput(fleet_id="ep.A.d1", count=3, grow=True))
        assert sorted(_new_indices(first)) == [0, 1, 2]
        # Host .2 launched its index: the record stands in for the reservation, released.
        share = first.shares[0]
        registry.upsert_instance(instance(index=share.indices[0], host=share.address))
        store.release("ep.A.d1", share.indices)
        counted = with_reservations(registry.list_instances(), store.reservations())
        assert sorted(r.index for r in counted) == [0, 1, 2]
        assert {r.state for r in counted} == {"InService", "Launching"}
        # The others never launched: past the TTL their indices are free again.
        later = datetime.now(UTC) + timedelta(seconds=RESERVATION_TTL_SECONDS + 1)
        placed = store.place(
            "ep.A.d1", lambda pending, hosts: Placement(hosts_registered=True), 30.0
        )
        assert placed.shares == []
        assert len(store.reservations()) == 2
        store.place(
            "ep.A.d1", lambda pending, hosts: Placement(hosts_registered=True), 30.0, now=later
        )
        assert store.reservations() == []
    finally:
        registry.close()
        store.close()


def test_on_hosts_without_limits_a_placement_reads_its_own_fleet_not_every_instance(
    registry_url: str,
) -> None:
    """`greenshift up` registers its machine with no limits: what other fleets run there takes
    no room, so a placement reads its own fleet's instances only, and costs the same however
    many endpoints the installation holds (issue 17). With limits it weighs them all."""
    store = HostStore(registry_url)
    registry = SqlRegistry(registry_url)
    reads: list[tuple[object, ...]] = []
    listed = registry.list_instances

    def spy(*args: object, **kwargs: object) -> list[Any]:
        reads.append((*args, *sorted(kwargs.items())))
        return listed(*args, **kwargs)  # type: ignore[arg-type]

    registry.list_instances = spy  # type: ignore[method-assign]
    typed: list[set[str]] = []
    types_of = registry.instance_types

    def types_spy(fleet_ids: Any) -> dict[str, str]:
        typed.append(set(fleet_ids))
        return types_of(fleet_ids)

    registry.instance_types = types_spy  # type: ignore[method-assign]
    try:
        _register(store)
        registry.upsert_fleet(fleet("ep.A.x", desired_count=2))
        registry.upsert_fleet(fleet("ep.A.y", desired_count=3))
        for index in range(3):
            registry.upsert_instance(instance("ep.A.y", index, host=HOSTS[0]))
        registry.upsert_instance(instance("ep.A.x", 0, host=HOSTS[1]))
        activities = HostPlacementActivities(registry, store, 30.0)
        placed = activities.place_fleet(PlaceInput(fleet_id="ep.A.x", count=2, grow=True))
        assert reads == [(("fleet_id", "ep.A.x"),)]
        assert typed == [set()]  # its own type is on its record: no query
        # Its own instance counts: one more, at the lowest free index.
        assert _new_indices(placed) == [1] and sum(s.count for s in placed.shares) == 2
        # A host with limits: the other fleet's three instances take its room, so all are read.
        store.register(advertisement(HOSTS[0], "greenshift", vcpus=6))  # three ml.m5.large
        reads.clear()
        grown = activities.place_fleet(PlaceInput(fleet_id="ep.A.x", count=4, grow=True))
        assert reads == [()] and typed[-1] == {"ep.A.y"}  # only the other fleet's type
        assert HOSTS[0] not in {s.address for s in grown.shares if s.indices}
    finally:
        registry.close()
        store.close()


def test_more_placements_at_once_than_one_worker_has_connections_all_complete(
    registry_url: str,
) -> None:
    """One worker's placements share its host store's pool (15 connections on PostgreSQL).
    Those queued for the placement lock hold connections meanwhile, so the placement holding
    the lock must need no second one: reading the hosts on another connection left it waiting
    for the pool while the others waited for it, until the pool's 30 s timeout failed them."""
    worker = Worker(registry_url)
    try:
        _register(worker.store)
        fleets = [f"ep.A.f{n}" for n in range(20)]
        for fleet_id in fleets:
            worker.registry.upsert_fleet(fleet(fleet_id, desired_count=2))
        results = race(
            [
                lambda f=f: worker.activities.place_fleet(  # type: ignore[misc]
                    PlaceInput(fleet_id=f, count=2, grow=True)
                )
                for f in fleets
            ]
        )
        assert all(isinstance(r, Placement) for r in results), results
        assert [sorted(_new_indices(r)) for r in results] == [[0, 1]] * len(fleets)  # type: ignore[arg-type]
    finally:
        worker.close()
