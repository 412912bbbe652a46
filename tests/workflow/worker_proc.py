"""A worker process for the dev-server tests: the real workflows and activities, the real
SqlRegistry, and fakes whose state lives in files, so a test can SIGKILL it, start another, and
see exactly what each one did.

    python -m tests.workflow.worker_proc <temporal target> <task queue> <state dir>
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.temporal import connect
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter
from worker.build import Dependencies, build_worker


def fakes(state: Path) -> tuple[FakeFleet, FakeRouter]:
    return FakeFleet(state / "fleet.json"), FakeRouter(state / "router.json")


async def main(target: str, task_queue: str, state: Path) -> None:
    settings = Settings(home=state, task_queue=task_queue)
    registry = SqlRegistry(f"sqlite:///{state / 'registry.db'}", arn_for=settings.arn)
    fleet, router = fakes(state)
    deps = Dependencies(
        settings=settings, registry=registry, fleet=fleet, router=router, alarms=FakeAlarms()
    )
    client = await connect(settings, target)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with build_worker(client, deps):
        (state / "worker.ready").write_text("ready")
        await stop.wait()
    registry.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
