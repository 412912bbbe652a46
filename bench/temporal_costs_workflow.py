"""The workflow bench/temporal_costs.py measures, in a module of its own: the workflow sandbox
imports a workflow's module again, which a script run as `__main__` cannot be."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

TIMER_SECONDS = 0.2


@activity.defn(name="noop")
def noop(n: int) -> int:
    return n


@workflow.defn(name="Operations")
class Operations:
    @workflow.run
    async def run(self, kind: str, k: int) -> int:
        for n in range(k):
            if kind == "activity":
                await workflow.execute_activity(
                    "noop", n, start_to_close_timeout=timedelta(seconds=30)
                )
            elif kind == "local activity":
                await workflow.execute_local_activity(
                    "noop", n, start_to_close_timeout=timedelta(seconds=30)
                )
            else:
                await asyncio.sleep(TIMER_SECONDS)
        return k
