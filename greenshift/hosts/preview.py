"""What `greenshift plan` shows of placement: where the new config's instances would go over the
hosts registered now (the same pure `place` a deployment uses), or what is short."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from greenshift.errors import ResourceLimitExceeded
from greenshift.hosts.placement import place
from greenshift.hosts.records import HostRecord, is_alive, room_of
from greenshift.registry.records import InstanceRecord
from greenshift.status import HOLDING_STATES

HOLDING = HOLDING_STATES


def placement_lines(
    variants: list[dict[str, Any]],
    hosts: list[HostRecord],
    instances: list[InstanceRecord],
    fleet_types: dict[str, str],
    lost_after: float,
    now: datetime | None = None,
) -> list[str]:
    """One line per variant: `VARIANT  TYPE x N  ->  host a: 2, host b: 2`, placed in order
    beside what already runs (the green fleet launches before blue is retired)."""
    now = now or datetime.now(UTC)
    open_hosts = [h for h in hosts if is_alive(h, now, lost_after) and not h.draining]
    if not hosts:
        return ["Placement: no host registered (instances go to the worker's own agent)."]
    held: dict[str, list[str]] = {h.address: [] for h in open_hosts}
    for record in instances:
        if record.host in held and record.state in HOLDING:
            held[record.host].append(fleet_types.get(record.fleet_id, ""))
    lines = ["Placement over the hosts registered now:"]
    for v in variants:
        name, kind = str(v.get("VariantName")), str(v.get("InstanceType"))
        count = int(v.get("InitialInstanceCount") or 0)
        rooms = [room_of(h, held[h.address]) for h in open_hosts]
        try:
            placed = place(kind, count, rooms)
        except ResourceLimitExceeded as error:
            lines.append(f"  {name}  {kind} x {count}  ->  refused: {error.message}")
            continue
        for address, n in placed.items():
            held[address] += [kind] * n
        spread = ", ".join(f"{a}: {n}" for a, n in placed.items()) or "none"
        lines.append(f"  {name}  {kind} x {count}  ->  {spread}")
    return lines
