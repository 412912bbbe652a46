"""The rules of replacing a lost host's instances, pure: how long to wait between attempts, when
to give up, and the words of the events that tell the operator what the healer did.

A replacement that fails (no host has room, a launch that does not pass /ping, a host that stops
polling) is tried again with exponential backoff: the hosts may come back or gain room. After
the last attempt it gives up with an event that says why, rather than retrying forever behind
the operator's back.
"""

from __future__ import annotations

# Event types (the deployment event log of the fleet's deployment).
HOST_LOST = "HostLost"
REPLACEMENT_RETRYING = "ReplacementRetrying"
INSTANCES_REPLACED = "InstancesReplaced"
REPLACEMENT_ABANDONED = "ReplacementAbandoned"

# Defaults: 2, 4, 8, 16, 32, 60, 60 s between 8 attempts, about 3 minutes in all.
ATTEMPTS = 8
FIRST_BACKOFF_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0


def backoff(
    attempt: int, first: float = FIRST_BACKOFF_SECONDS, cap: float = MAX_BACKOFF_SECONDS
) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): doubling from `first`, at most
    `cap`."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    return float(min(cap, first * 2 ** (attempt - 1)))


def host_lost_message(address: str, seconds: float, fleet_id: str, count: int) -> str:
    return (
        f"Host {address} lost (no heartbeat for {seconds:g} s): {count} instance(s) of fleet "
        f"{fleet_id} taken out of rotation; replacing them on the other hosts."
    )


def retrying_message(fleet_id: str, attempt: int, attempts: int, cause: str, wait: float) -> str:
    return (
        f"Replacing the instances of fleet {fleet_id} failed (attempt {attempt} of {attempts}): "
        f"{cause} Trying again in {wait:g} s."
    )


def replaced_message(fleet_id: str, healthy: int, desired: int, attempt: int) -> str:
    if desired == 0:  # retired by its deployment meanwhile (blue terminated, or rolled back)
        return f"Fleet {fleet_id} was retired meanwhile: nothing left to replace."
    return (
        f"Fleet {fleet_id} is back to {healthy} of {desired} healthy instance(s) on the hosts "
        f"left (attempt {attempt})."
    )


def abandoned_message(fleet_id: str, lost_host: str, attempts: int, cause: str) -> str:
    return (
        f"Gave up replacing the instances of fleet {fleet_id} lost with host {lost_host} after "
        f"{attempts} attempt(s): {cause} The fleet serves with the instances it has left; a "
        f"host that joins (registers, comes back or stops draining) starts the replacement "
        f"again; or free room and update the endpoint."
    )
