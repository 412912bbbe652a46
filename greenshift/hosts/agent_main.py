"""`greenshift agent --address ADDR`: the fleet agent of one host, as a process of its own.

It owns the model instances of `ADDR` (they listen there, so ADDR must be a loopback address
or one of this machine's), keeps its own home (instance directories, logs), registers the host
and polls its task queue. The registry and Temporal are shared with the rest of the stack.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from greenshift.hosts.service import HostService, advertisement
from greenshift.hosts.store import HostStore
from greenshift.settings import Settings
from greenshift.temporal import connect

log = logging.getLogger("greenshift.agent")


async def run_agent(
    settings: Settings,
    *,
    vcpus: int = 0,
    memory_gib: float = 0.0,
    instance_types: list[str] | None = None,
    heartbeat_seconds: float = 1.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT). `settings.host` is the host's address."""
    from greenshift.fleet.agent import FleetAgent
    from greenshift.registry.sql import SqlRegistry

    stop = stop or _stop_on_signals()
    client = await connect(settings)
    registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
    store = HostStore(settings.registry_url)
    agent = FleetAgent(registry, settings)
    host = advertisement(
        settings.host,
        settings.task_queue,
        vcpus=vcpus,
        memory_gib=memory_gib,
        gpus=len(agent.gpus.host),
        instance_types=instance_types,
    )
    await asyncio.to_thread(agent.adopt)
    agent.start()
    try:
        await HostService(client, agent, registry, store, host, heartbeat_seconds).run(stop)
    finally:
        await asyncio.to_thread(agent.stop)
        store.close()
        registry.close()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
