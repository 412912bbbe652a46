"""ReplaceInstances: a lost host's share of one fleet launched again on the hosts left.

Started by the healer (greenshift.hosts.healer) with the id `replace/<fleet id>`, so however many
workers notice the loss, one replacement runs per fleet at a time. It places the fleet's stored
desired count over the alive hosts (running instances stay where they are) and waits for each
host's share to be healthy; a deployment running meanwhile keeps its own steps, which are
absolute too, so whichever runs last leaves the fleet at its desired count.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from greenshift.hosts.messages import REPLACE_INSTANCES, ReplaceInput
    from workflows import hosts, options


@workflow.defn(name=REPLACE_INSTANCES)
class ReplaceInstances:
    @workflow.run
    async def run(self, data: ReplaceInput) -> Any:
        async def nothing() -> None:
            return None  # no host registered any more: nothing to replace onto

        return await hosts.scale_fleet(
            data.fleet_id, 0, True, options.provision(600), nothing, replace=True
        )
