"""The typed messages between the workflows and the host activities. Pure data, so workflow
modules may import it through the sandbox."""

from __future__ import annotations

from pydantic import BaseModel, Field

from greenshift.hosts import replacement


class PlaceInput(BaseModel):
    fleet_id: str
    count: int  # the fleet's desired count, absolute
    grow: bool  # True: a provision step (launch what is missing); False: terminate / retire
    # Replacing a lost host's instances: the count is the fleet's stored desired count, read at
    # placement (a deployment may have changed it since), and nothing is written.
    replace: bool = False
    # Draining: the instances on draining hosts are placed again on the others (their shares
    # come back with `draining` set and count 0, to be stopped once the others are healthy).
    drain: bool = False


class HostShare(BaseModel):
    address: str
    task_queue: str
    count: int  # this host's share, absolute
    indices: list[int] = Field(default_factory=list)  # instance indices reserved for new ones
    draining: bool = False


class Placement(BaseModel):
    """Per-host shares; `hosts_registered` False: no host is known, so the shared queue's own
    fleet (a worker with its agent in-process, as before hosts existed) does the work."""

    hosts_registered: bool
    shares: list[HostShare] = Field(default_factory=list)


class ReplaceInput(BaseModel):
    fleet_id: str
    lost_host: str
    # Retry with backoff (greenshift.hosts.replacement); defaults there.
    attempts: int = replacement.ATTEMPTS
    first_backoff_seconds: float = replacement.FIRST_BACKOFF_SECONDS
    max_backoff_seconds: float = replacement.MAX_BACKOFF_SECONDS


class ReplaceResult(BaseModel):
    fleet_id: str
    attempts: int  # the attempt that succeeded
    healthy: int
    desired: int


class HostEventInput(BaseModel):
    """An event in the log of the fleet's deployment; `key` makes a retried write a no-op."""

    fleet_id: str
    type: str
    message: str
    key: str
    detail: dict[str, str | int | float] = Field(default_factory=dict)


class HostScaleInput(BaseModel):
    fleet_id: str
    count: int  # this host's share of the fleet, absolute
    indices: list[int] = Field(default_factory=list)
