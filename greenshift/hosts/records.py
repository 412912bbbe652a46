"""A host as the registry records it, and the pure rules about hosts: whether it is alive by its
heartbeats, and its room for placement (its task queue name is greenshift.names's)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field

from greenshift.fleet.instance_types import instance_type
from greenshift.hosts.placement import HostRoom

# A host is lost when its last heartbeat is older than this (Settings.host_lost_after_seconds).
DEFAULT_LOST_AFTER_SECONDS = 5.0

ALIVE = "Alive"
LOST = "Lost"
DRAINING = "Draining"


class HostRecord(BaseModel):
    """What an agent advertises when it registers, and when it was last heard from."""

    address: str
    task_queue: str
    vcpus: int = 0  # 0: unlimited (a development host that does not want to be sized)
    memory_gib: float = 0.0
    gpus: int = 0
    instance_types: list[str] = Field(default_factory=list)  # empty: any that fits
    registered_at: datetime
    heartbeat_at: datetime
    draining: bool = False


class Reservation(BaseModel):
    """An instance index a placement gave a host, not launched there yet (hosts.store)."""

    fleet_id: str
    index: int
    host: str
    reserved_at: datetime


def is_alive(host: HostRecord, now: datetime, lost_after_seconds: float) -> bool:
    """Heard from within the bound. A clock skew between hosts shifts this by the skew, which is
    why the bound is seconds, not milliseconds."""
    return (now - host.heartbeat_at).total_seconds() <= lost_after_seconds


def state_of(host: HostRecord, now: datetime, lost_after_seconds: float) -> str:
    if not is_alive(host, now, lost_after_seconds):
        return LOST
    return DRAINING if host.draining else ALIVE


def counts_room(host: HostRecord) -> bool:
    """Whether what a host already runs limits what more it takes: not when it advertises no
    vCPU, memory or GPU (0 is unlimited, and a GPU instance never fits a host of 0 GPUs,
    whatever else it runs), as `greenshift up` registers its own machine."""
    return bool(host.vcpus or host.memory_gib or host.gpus)


def room_of(host: HostRecord, instance_types_held: Iterable[str]) -> HostRoom:
    """The host's room for placement, less what the instances it holds already take."""
    shapes = [instance_type(name) for name in instance_types_held]
    return HostRoom(
        address=host.address,
        vcpus=host.vcpus,
        memory_gib=host.memory_gib,
        gpus=host.gpus,
        used_vcpus=sum(s.vcpus for s in shapes),
        used_memory_gib=sum(s.memory_gib for s in shapes),
        used_gpus=sum(s.gpus for s in shapes),
        instance_types=frozenset(host.instance_types),
    )
