"""Scaling a fleet over hosts, from inside a workflow: ask where its instances go (PlaceFleet on
the shared queue), then send each host its absolute share on the host's own task queue, where
only that host's agent polls (Temporal's worker-specific task queues). With no host registered
the shared queue's fleet does it, as on one machine before hosts existed.

Deterministic: only activities and the SDK's asyncio; the arithmetic is in greenshift.hosts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from greenshift.hosts.messages import HostScaleInput, HostShare, PlaceInput, Placement
    from greenshift.names import HOST_SCALE_DOWN, HOST_SCALE_UP, PLACE_FLEET
    from greenshift.ports import FleetStatus
    from workflows import options
    from workflows.calls import run_activity, run_local

# The patch id old histories replay without (they called the shared queue's fleet directly).
PATCH = "hosts-placement"

# A host that stops polling its queue after placement: its share fails after this, and the
# step fails or rolls back by the usual rules rather than waiting for a host that is gone.
SCHEDULE_TO_START = timedelta(seconds=30)


async def scale_fleet(
    fleet_id: str,
    count: int,
    grow: bool,
    opts: options.ActivityOptions,
    fallback: Callable[[], Awaitable[Any]],
    replace: bool = False,
    drain: bool = False,
    local: bool = False,
) -> Any:
    """Have `count` instances of the fleet over the hosts (absolute); returns the fleet's
    FleetStatus summed over hosts, or whatever `fallback` returns when no host is known.
    `local`: the placement (registry work only) as a local activity."""
    place = PlaceInput(fleet_id=fleet_id, count=count, grow=grow, replace=replace, drain=drain)
    call = run_local if local else run_activity
    placement = await call(PLACE_FLEET, place, options.REGISTRY, Placement)
    return await scale_placed(fleet_id, placement, grow, opts, fallback)


async def scale_placed(
    fleet_id: str,
    placement: Placement,
    grow: bool,
    opts: options.ActivityOptions,
    fallback: Callable[[], Awaitable[Any]],
) -> Any:
    """The fleet scaled as `placement` says: each host its share on its own queue (a drain's
    leaving hosts after the others); `fallback` when no host is known."""
    if not placement.hosts_registered:
        return await fallback()
    name = HOST_SCALE_UP if grow else HOST_SCALE_DOWN
    staying = [s for s in placement.shares if not s.draining]
    results: list[FleetStatus] = list(
        await asyncio.gather(*(_on_host(name, fleet_id, s, opts) for s in staying))
    )
    # A drain stops the old instances only once their replacements are healthy (above); the
    # agent takes each out of rotation before its SIGTERM, so no request is cut.
    leaving = [s for s in placement.shares if s.draining]
    results += await asyncio.gather(
        *(_on_host(HOST_SCALE_DOWN, fleet_id, s, options.TERMINATE) for s in leaving)
    )
    return FleetStatus(
        fleet_id=fleet_id,
        desired=sum(share.count for share in staying),
        healthy=sum(r.healthy for r in results),
        launching=sum(r.launching for r in results),
        failed=sum(r.failed for r in results),
    )


def _on_host(
    name: str, fleet_id: str, share: HostShare, opts: options.ActivityOptions
) -> Awaitable[FleetStatus]:
    return workflow.execute_activity(
        name,
        HostScaleInput(fleet_id=fleet_id, count=share.count, indices=share.indices),
        task_queue=share.task_queue,
        result_type=FleetStatus,
        start_to_close_timeout=opts.start_to_close,
        schedule_to_start_timeout=SCHEDULE_TO_START,
        heartbeat_timeout=opts.heartbeat,
        retry_policy=opts.retry(),
    )


async def retire_fleets(
    fleet_ids: Sequence[str],
    opts: options.ActivityOptions,
    fallback: Callable[[], Awaitable[Any]],
    local: bool = False,
) -> None:
    """Every instance of these fleets stopped, on whichever host runs it (`local`: each
    placement as a local activity)."""
    needs_fallback = False
    for fleet_id in fleet_ids:

        async def none() -> None:
            nonlocal needs_fallback
            needs_fallback = True

        await scale_fleet(fleet_id, 0, False, opts, none, local=local)
    if needs_fallback or not fleet_ids:
        await fallback()
