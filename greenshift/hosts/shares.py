"""From hosts and instance records to per-host shares of one fleet. Pure: the placement activity
reads the registry and calls this; tests call it with records they make."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from greenshift.hosts.messages import HostShare, Placement
from greenshift.hosts.placement import HostRoom, place
from greenshift.hosts.records import HostRecord, Reservation, is_alive, room_of
from greenshift.naming import instance_id
from greenshift.registry.records import FleetRecord, InstanceRecord
from greenshift.status import HOLDING_STATES, RUNNING_STATES, InstanceState

# Instance states that hold a host's room and count toward a fleet's share there.
HOLDING = HOLDING_STATES
LIVE = RUNNING_STATES
# How a reserved index shows in placement: an instance about to launch.
RESERVED = InstanceState.LAUNCHING


def with_reservations(
    instances: Sequence[InstanceRecord], reserved: Sequence[Reservation]
) -> list[InstanceRecord]:
    """The instance records plus one Launching record per reservation whose instance has no
    record yet, so placement counts an index handed out a moment ago (its host has not launched
    it yet) as taken, on its host, holding its room. Once the host writes the record, the
    record speaks for it and the reservation is ignored."""
    recorded = {r.instance_id for r in instances}
    pending = [
        InstanceRecord(
            instance_id=instance_id(r.fleet_id, r.index),
            fleet_id=r.fleet_id,
            endpoint="",
            variant="",
            index=r.index,
            host=r.host,
            state=RESERVED,
            state_reason="reserved by placement",
            updated_at=r.reserved_at,
        )
        for r in reserved
        if instance_id(r.fleet_id, r.index) not in recorded
    ]
    return [*instances, *pending]


def shares_for(
    fleet: FleetRecord,
    count: int,
    grow: bool,
    hosts: Sequence[HostRecord],
    instances: Sequence[InstanceRecord],
    fleet_types: dict[str, str],
    now: datetime,
    lost_after_seconds: float,
    drain: bool = False,
) -> Placement:
    """Each alive host's share of `fleet` for `count` instances. Growing places the missing
    ones on alive hosts that are not draining (ResourceLimitExceeded when they do not fit) and
    reserves their indices; shrinking takes from the hosts holding the most. `drain`: the
    draining hosts' instances are placed again on the others, and their shares (count 0,
    `draining`) are stopped after. Lost hosts get no share: their instances are out of rotation
    and replaced (greenshift.hosts.healer). `fleet_types`: fleet id -> instance type, for the
    room other fleets take."""
    if not hosts:
        return Placement(hosts_registered=False)
    alive = [h for h in hosts if is_alive(h, now, lost_after_seconds)]
    mine = [r for r in instances if r.fleet_id == fleet.fleet_id]
    current = {h.address: 0 for h in alive}
    for record in mine:
        if record.host in current and record.state in LIVE:
            current[record.host] += 1
    if not grow:
        rooms = [room_of(h, []) for h in alive]
        return _shares(alive, place(fleet.instance_type, count, rooms, current), current, mine)
    leaving = {h.address for h in alive if h.draining} if drain else set()
    # A draining host keeps what it runs (until a drain moves it) but takes nothing new.
    kept = {a: n for a, n in current.items() if a not in leaving}
    open_hosts = [h for h in alive if h.address not in leaving and not h.draining]
    holding = [h for h in alive if h.address not in leaving and h.draining and kept[h.address]]
    rooms = _rooms(fleet, open_hosts, instances, fleet_types)
    rooms += [
        HostRoom(address=h.address, instance_types=frozenset({"-"}))  # holds, takes no more
        for h in holding
    ]
    target = place(fleet.instance_type, count, rooms, kept)
    return _shares(alive, target, current, mine, grow=True, leaving=leaving)


def _rooms(
    fleet: FleetRecord,
    hosts: Sequence[HostRecord],
    instances: Sequence[InstanceRecord],
    fleet_types: dict[str, str],
) -> list[HostRoom]:
    rooms = []
    for host in hosts:
        others = [
            fleet_types.get(r.fleet_id, "")
            for r in instances
            if r.host == host.address and r.fleet_id != fleet.fleet_id and r.state in HOLDING
        ]
        rooms.append(room_of(host, others))
    return rooms


def _shares(
    alive: Sequence[HostRecord],
    target: dict[str, int],
    current: dict[str, int],
    mine: Sequence[InstanceRecord],
    grow: bool = False,
    leaving: set[str] | None = None,
) -> Placement:
    """Shares of the hosts that get or hold any, with fresh indices for the new instances
    (lowest not used by any record of the fleet, on any host, in address order)."""
    taken = {r.index for r in mine}
    need = sum(target.values()) + len(taken) + 1
    free = (i for i in range(need) if i not in taken)
    shares = []
    for host in sorted(alive, key=lambda h: h.address):
        share = target.get(host.address, 0)
        if share == 0 and current[host.address] == 0:
            continue
        new = max(0, share - current[host.address]) if grow else 0
        shares.append(
            HostShare(
                address=host.address,
                task_queue=host.task_queue,
                count=share,
                indices=[next(free) for _ in range(new)],
                draining=host.address in (leaving or set()),
            )
        )
    return Placement(hosts_registered=True, shares=shares)
