"""A worker process for the ReplaceInstances crash test: the real workflow and the real
placement and event activities on a SQLite registry with its hosts table, so a test can SIGKILL
it in the middle of a backoff and start another.

    python -m tests.workflow.replace_worker_proc <temporal target> <task queue> <state dir>
"""

from __future__ import annotations

import asyncio
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.worker import Worker

from activities.hosts import HostPlacementActivities
from greenshift.hosts.store import HostStore
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.temporal import connect
from workflows.replace_instances import ReplaceInstances


async def main(target: str, task_queue: str, state: Path) -> None:
    settings = Settings(home=state, task_queue=task_queue)
    url = f"sqlite:///{state / 'registry.db'}"
    registry = SqlRegistry(url, arn_for=settings.arn)
    store = HostStore(url)
    placement = HostPlacementActivities(registry, store, 60.0)
    client = await connect(settings, target)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[ReplaceInstances],
            activities=placement.all(),
            activity_executor=pool,
        ):
            (state / "worker.ready").write_text("ready")
            await stop.wait()
    store.close()
    registry.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
