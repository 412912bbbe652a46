"""`python -m greenshift.metrics`: the alarm evaluator, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from greenshift.heartbeat import touch_heartbeat
from greenshift.metrics.evaluator import run_evaluator
from greenshift.settings import Settings


async def _main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings = Settings()
    await run_evaluator(settings, stop, heartbeat=lambda: touch_heartbeat(settings, "metrics"))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main())


if __name__ == "__main__":
    main()
