"""The hosts table and the pure host rules: registration, heartbeats, liveness, drain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from greenshift.hosts.healer import HOST_LOST
from greenshift.hosts.messages import HostShare, Placement
from greenshift.hosts.records import (
    ALIVE,
    DRAINING,
    LOST,
    HostRecord,
    Reservation,
    room_of,
    state_of,
)
from greenshift.hosts.service import HostService, advertisement
from greenshift.hosts.store import HostStore
from greenshift.names import host_task_queue
from greenshift.registry.sql import SqlRegistry
from tests.registry_records import instance


def test_register_heartbeat_and_drain(tmp_path: Path) -> None:
    store = HostStore(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        assert not store.any_registered()
        host = advertisement("127.0.0.2", "greenshift", vcpus=8, memory_gib=32)
        store.register(host)
        assert store.any_registered()
        assert store.get("127.0.0.2") == host
        assert host.task_queue == host_task_queue("greenshift", "127.0.0.2")
        later = host.heartbeat_at + timedelta(seconds=7)
        assert store.heartbeat("127.0.0.2", later)
        assert not store.heartbeat("127.0.0.9", later)
        assert store.set_draining("127.0.0.2", True)
        store.register(advertisement("127.0.0.2", "greenshift", vcpus=4))
        again = store.get("127.0.0.2")
        assert again is not None and again.draining and again.vcpus == 4
        assert again.registered_at == host.registered_at
        assert [h.address for h in store.list()] == ["127.0.0.2"]
    finally:
        store.close()


def test_a_host_is_lost_once_its_heartbeat_is_older_than_the_bound() -> None:
    host = advertisement("127.0.0.3", "greenshift")
    now = host.heartbeat_at
    assert state_of(host, now + timedelta(seconds=4.9), 5.0) == ALIVE
    assert state_of(host, now + timedelta(seconds=5.1), 5.0) == LOST
    draining = host.model_copy(update={"draining": True})
    assert state_of(draining, now, 5.0) == DRAINING


def test_room_subtracts_the_instances_held() -> None:
    host = advertisement("127.0.0.4", "q", vcpus=8, memory_gib=32, gpus=0)
    room = room_of(host, ["ml.m5.large", "ml.m5.xlarge"])
    assert (room.used_vcpus, room.used_memory_gib) == (6, 24.0)
    assert datetime.now(UTC) >= host.registered_at


def _reserving(index: int, seen: list[list[str]]) -> Callable[..., Placement]:
    """A placement's compute that records which reservations it was given and reserves
    `index` on the first host."""

    def compute(pending: list[Reservation], hosts: list[HostRecord]) -> Placement:
        seen.append(sorted(f"{r.fleet_id}.{r.index}" for r in pending))
        host = hosts[0]
        share = HostShare(
            address=host.address, task_queue=host.task_queue, count=1, indices=[index]
        )
        return Placement(hosts_registered=True, shares=[share])

    return compute


def test_a_placement_on_hosts_without_limits_is_given_its_own_fleets_reservations_only(
    tmp_path: Path,
) -> None:
    """What other fleets reserved takes no room on a host that counts none (as `greenshift up`
    registers its machine): their reservations, as many as deployments placing at once, are
    not read. On a host with limits every reservation is weighed."""
    store = HostStore(f"sqlite:///{tmp_path / 'registry.db'}")
    seen: list[list[str]] = []
    try:
        store.register(advertisement("127.0.0.2", "greenshift"))
        for fleet_id in ("ep.A.x", "ep.A.y", "ep.A.z"):
            store.place(fleet_id, _reserving(0, seen), ttl_seconds=60)
        store.place("ep.A.y", _reserving(1, seen), ttl_seconds=60)
        assert seen == [[], [], [], ["ep.A.y.0"]]
        store.register(advertisement("127.0.0.2", "greenshift", vcpus=8))
        store.place("ep.A.w", _reserving(0, seen), ttl_seconds=60)
        assert seen[-1] == ["ep.A.x.0", "ep.A.y.0", "ep.A.y.1", "ep.A.z.0"]
    finally:
        store.close()


def test_a_host_knows_it_was_written_off_by_the_reason_its_instances_stop(
    registry: SqlRegistry,
) -> None:
    """The heartbeat's look (HostService._written_off): an instance of this host being stopped
    because the host was taken for lost (the healer's reason) means its instances were replaced
    elsewhere; one stopped for any other reason does not, one that only begins as the
    healer's does (another host's) neither."""
    host = advertisement("10.0.0.1", "greenshift")
    service = HostService(None, None, registry, None, host)  # type: ignore[arg-type]
    registry.upsert_instances(
        [
            instance("f1", 0, host="10.0.0.1"),
            instance("f1", 1, state="Stopping", host="10.0.0.1", state_reason="scaled in"),
            instance("f1", 3, state="Stopping", host="10.0.0.1", state_reason="host 10.0.0.9 lost"),
            instance("f2", 0, state="Stopping", host="10.0.0.2", state_reason="host 10.0.0.2 lost"),
        ]
    )
    assert not service._written_off()
    lost = HOST_LOST.format(address="10.0.0.1", seconds=30)
    registry.upsert_instance(
        instance("f1", 2, state="Stopping", host="10.0.0.1", state_reason=lost)
    )
    assert service._written_off()
