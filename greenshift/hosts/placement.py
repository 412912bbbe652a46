"""Placement: which host holds how many instances of a fleet. Pure, beside the planner.

A fleet's instances are spread evenly over the hosts that can hold them, as SageMaker balances a
variant over Availability Zones: each instance goes to the eligible host holding the fewest of
this fleet so far, ties broken by the most room left and then by the address, so the same input
always gives the same answer. Capacity is the instance-type table's vCPUs, memory and GPUs
against what each host advertised, less what other fleets already hold there; a dimension a host
advertises as 0 is unlimited (a development host that does not want to be sized). A fleet that
does not fit fails before any launch, with `ResourceLimitExceeded` wording that says what is short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from greenshift.errors import ResourceLimitExceeded
from greenshift.fleet.instance_types import InstanceType, instance_type


@dataclass(frozen=True)
class HostRoom:
    """What one host can still give a fleet: advertised capacity less other fleets' use."""

    address: str
    vcpus: int = 0  # 0: unlimited
    memory_gib: float = 0.0  # 0: unlimited
    gpus: int = 0
    used_vcpus: int = 0
    used_memory_gib: float = 0.0
    used_gpus: int = 0
    # Instance types the host accepts; empty: any the capacity fits.
    instance_types: frozenset[str] = frozenset()

    def fits(self, shape: InstanceType, extra: int) -> bool:
        """One more instance of `shape` fits beside `extra` already placed here."""
        if self.instance_types and shape.name not in self.instance_types:
            return False
        n = extra + 1
        if self.vcpus and self.used_vcpus + n * shape.vcpus > self.vcpus:
            return False
        if self.memory_gib and self.used_memory_gib + n * shape.memory_gib > self.memory_gib:
            return False
        # GPUs are never unlimited: an instance that needs them needs real ones.
        return not shape.gpus or self.used_gpus + n * shape.gpus <= self.gpus

    def room_after(self, shape: InstanceType, extra: int) -> float:
        """How much of the tightest limited dimension is left after `extra` instances (larger is
        roomier); unlimited dimensions count as infinite."""
        free: list[float] = []
        if self.vcpus:
            free.append((self.vcpus - self.used_vcpus - extra * shape.vcpus) / self.vcpus)
        if self.memory_gib:
            left = self.memory_gib - self.used_memory_gib - extra * shape.memory_gib
            free.append(left / self.memory_gib)
        return min(free) if free else float("inf")


def place(
    type_name: str,
    count: int,
    hosts: Sequence[HostRoom],
    current: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Instances per host address for `count` instances of `type_name` (hosts with none left
    out). Raises ResourceLimitExceeded when the hosts cannot hold them all.

    `current`: what the fleet already runs on each host (its rooms must not count these as
    used). Running instances stay where they are (a scale-up or a replacement moves nothing);
    only the missing ones are spread, and a shrink takes from the hosts holding the most."""
    shape = instance_type(type_name)
    held = {h.address: (current or {}).get(h.address, 0) for h in hosts}
    if sum(held.values()) >= count:
        return _trim(held, count)
    placed = dict(held)
    ordered = sorted(hosts, key=lambda h: h.address)
    for _ in range(count - sum(held.values())):
        eligible = [h for h in ordered if h.fits(shape, placed[h.address])]
        if not eligible:
            raise ResourceLimitExceeded(_shortfall(type_name, shape, count, hosts, placed))
        best = min(
            eligible,
            key=lambda h: (placed[h.address], -h.room_after(shape, placed[h.address]), h.address),
        )
        placed[best.address] += 1
    return {address: n for address, n in sorted(placed.items()) if n}


def _trim(held: Mapping[str, int], count: int) -> dict[str, int]:
    """Take instances away one at a time from the host holding the most (the highest address
    among equals), so what remains stays as even as it was."""
    left = dict(held)
    for _ in range(sum(held.values()) - count):
        top = max(left, key=lambda a: (left[a], a))
        left[top] -= 1
    return {address: n for address, n in sorted(left.items()) if n}


def moves(current: Mapping[str, int], target: Mapping[str, int]) -> dict[str, int]:
    """Per host, how many instances to add (positive) or remove (negative) to go from `current`
    to `target`; hosts with no change are left out."""
    hosts = sorted(set(current) | set(target))
    delta = {h: target.get(h, 0) - current.get(h, 0) for h in hosts}
    return {h: d for h, d in delta.items() if d}


def _shortfall(
    type_name: str,
    shape: InstanceType,
    count: int,
    hosts: Sequence[HostRoom],
    placed: Mapping[str, int],
) -> str:
    held = sum(placed.values())
    rooms = "; ".join(_room_text(h) for h in sorted(hosts, key=lambda h: h.address))
    if not hosts:
        return (
            f"The account-level service limit for {type_name} for endpoint usage cannot hold "
            f"{count} instance(s): no host is registered and alive."
        )
    need = f"{shape.vcpus} vCPU, {shape.memory_gib:g} GiB"
    if shape.gpus:
        need += f", {shape.gpus} GPU"
    return (
        f"The hosts can hold {held} of the {count} {type_name} instance(s) requested "
        f"({need} each); {count - held} more need room on a host that is not there. "
        f"Free on each host: {rooms}."
    )


def _room_text(host: HostRoom) -> str:
    if host.instance_types:
        types = "/".join(sorted(host.instance_types))
        return f"{host.address} (holds only {types})"
    cpus = f"{host.vcpus - host.used_vcpus} vCPU" if host.vcpus else "any vCPU"
    mem = f"{host.memory_gib - host.used_memory_gib:g} GiB" if host.memory_gib else "any memory"
    return f"{host.address} {cpus}, {mem}, {host.gpus - host.used_gpus} GPU"
