"""DrainHost: every instance of a draining host moved to the others, replacement first.

For each fleet on the host: its desired count is placed over the hosts that stay (running
instances stay where they are), those launch and pass /ping, and only then the draining host's
instances are stopped (out of rotation, in-flight requests finish, SIGTERM). The CLI checks that
the rest can hold them before it marks the host draining, so a drain that cannot fit changes
nothing. Id `drain/<address>`: one drain per host at a time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from greenshift.names import DRAIN_HOST, HOST_FLEETS
    from workflows import hosts, options


@workflow.defn(name=DRAIN_HOST)
class DrainHost:
    @workflow.run
    async def run(self, address: str) -> list[str]:
        fleet_ids: list[str] = await workflow.execute_activity(
            HOST_FLEETS,
            address,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=options.REGISTRY.retry(),
        )

        async def nothing() -> Any:
            return None

        for fleet_id in fleet_ids:
            await hosts.scale_fleet(
                fleet_id, 0, True, options.provision(600), nothing, replace=True, drain=True
            )
        return fleet_ids
