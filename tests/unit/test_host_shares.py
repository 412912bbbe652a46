"""Per-host shares of a fleet (greenshift.hosts.shares): lost hosts get none, new instances get
indices no record holds, a drain moves a draining host's instances to the others."""

from __future__ import annotations

from datetime import timedelta

import pytest

from greenshift.errors import ResourceLimitExceeded
from greenshift.hosts.records import HostRecord
from greenshift.hosts.service import advertisement
from greenshift.hosts.shares import shares_for
from tests.registry_records import fleet, instance

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def _hosts(*addresses: str, vcpus: int = 0) -> list[HostRecord]:
    return [advertisement(a, "greenshift", vcpus=vcpus) for a in addresses]


def test_new_instances_are_spread_with_indices_no_record_holds() -> None:
    hosts = _hosts(A, B, C)
    now = hosts[0].heartbeat_at
    records = [instance(index=0, host=A), instance(index=4, host=B, state="Stopping")]
    placed = shares_for(fleet(), 6, True, hosts, records, {}, now, 5.0)
    assert [(s.address, s.count) for s in placed.shares] == [(A, 2), (B, 2), (C, 2)]
    indices = [i for s in placed.shares for i in s.indices]
    assert len(indices) == 5 and len(set(indices)) == 5
    assert not {0, 4} & set(indices)


def test_a_lost_host_gets_no_share_and_its_instances_are_placed_on_the_others() -> None:
    hosts = _hosts(A, B, C)
    now = hosts[0].heartbeat_at
    hosts[2] = hosts[2].model_copy(update={"heartbeat_at": now - timedelta(seconds=10)})
    records = [instance(index=i, host=h) for i, h in enumerate([A, A, B, B, C, C])]
    placed = shares_for(fleet(), 6, True, hosts, records, {}, now, 5.0)
    assert [(s.address, s.count, len(s.indices)) for s in placed.shares] == [(A, 3, 1), (B, 3, 1)]


def test_a_drain_moves_the_draining_hosts_instances_and_marks_its_share() -> None:
    hosts = _hosts(A, B, C)
    now = hosts[0].heartbeat_at
    hosts[0] = hosts[0].model_copy(update={"draining": True})
    records = [instance(index=i, host=h) for i, h in enumerate([A, A, B, B, C, C])]
    placed = shares_for(fleet(), 6, True, hosts, records, {}, now, 5.0, drain=True)
    assert [(s.address, s.count, s.draining) for s in placed.shares] == [
        (A, 0, True),
        (B, 3, False),
        (C, 3, False),
    ]


def test_a_drain_the_others_cannot_hold_is_refused() -> None:
    hosts = _hosts(A, B, vcpus=4)  # two ml.m5.large (2 vCPU) each
    now = hosts[0].heartbeat_at
    hosts[0] = hosts[0].model_copy(update={"draining": True})
    records = [instance(index=i, host=h) for i, h in enumerate([A, A, B, B])]
    with pytest.raises(ResourceLimitExceeded, match=r"hold 2 of the 4 ml\.m5\.large"):
        shares_for(fleet(), 4, True, hosts, records, {}, now, 5.0, drain=True)


def test_no_host_registered_leaves_the_work_to_the_shared_queue() -> None:
    placed = shares_for(fleet(), 2, True, [], [], {}, advertisement(A, "q").heartbeat_at, 5.0)
    assert not placed.hosts_registered and placed.shares == []


def test_plan_preview_places_each_variant_beside_what_runs() -> None:
    from greenshift.hosts.preview import placement_lines

    hosts = [advertisement(a, "q", vcpus=4) for a in (A, B)]
    variants = [
        {"VariantName": "V1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2},
        {"VariantName": "V2", "InstanceType": "ml.m5.large", "InitialInstanceCount": 3},
    ]
    lines = placement_lines(variants, hosts, [], {}, 5.0, now=hosts[0].heartbeat_at)
    assert lines[1] == f"  V1  ml.m5.large x 2  ->  {A}: 1, {B}: 1"
    assert lines[2].startswith("  V2  ml.m5.large x 3  ->  refused: The hosts can hold 2 of the 3")
