"""The worker process: `python -m worker` or `greenshift worker`.

Builds the real dependencies from Settings (registry, fleet agent, traffic router, alarm
source), runs the workflows and activities on the task queue, the alarm watcher and the fleet
agent's supervision, and stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress
from typing import Any

from greenshift import temporal
from greenshift.settings import Settings
from worker.alarm_watcher import AlarmWatcher
from worker.build import Dependencies, build_worker
from worker.reconciler import Reconciler

log = logging.getLogger("greenshift.worker")


def build_dependencies(settings: Settings) -> tuple[Dependencies, Any]:
    """The real dependencies, and the fleet agent (whose supervision the worker runs). Imported
    here so that tests, which pass fakes, never load them."""
    from greenshift.dataplane.router import RegistryTrafficRouter
    from greenshift.fleet.agent import FleetAgent
    from greenshift.hosts.store import HostStore
    from greenshift.registry.sql import SqlRegistry

    registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
    agent = FleetAgent(registry, settings)
    deps = Dependencies(
        settings=settings,
        registry=registry,
        fleet=agent,
        router=RegistryTrafficRouter(registry),
        alarms=alarm_source(settings),
        hosts=HostStore(settings.registry_url),
        judges=judge_source(settings),
    )
    return deps, agent


def judge_source(settings: Settings) -> Any:
    """The built-in judge reads Greenshift's own metric store; real CloudWatch has no judge."""
    from greenshift.metrics.judge_source import StoreJudgeSource
    from greenshift.metrics.store import MetricStore

    if settings.cloudwatch_endpoint_url:
        return None
    return StoreJudgeSource(MetricStore(settings.registry_url))


def alarm_source(settings: Settings) -> Any:
    """Alarm states for deployments. Greenshift's own alarms also carry when the local evaluator
    last judged them, so a hung evaluator reads as stale, not as "all OK"; real CloudWatch's
    evaluation is AWS's to keep running."""
    from greenshift.metrics.alarm_source import CloudWatchAlarmSource, EvaluatedAlarmSource
    from greenshift.metrics.store import MetricStore

    source = CloudWatchAlarmSource.from_settings(settings)
    if settings.cloudwatch_endpoint_url:
        return source
    return EvaluatedAlarmSource(source, MetricStore(settings.registry_url))


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when none is given)."""
    stop = stop or _stop_on_signals()
    client = await temporal.connect(settings)
    deps, agent = build_dependencies(settings)
    watcher = AlarmWatcher(client, deps.registry, deps.alarms)
    # Instances this host ran before a restart are adopted, then supervised in the background.
    # Extra workers of `greenshift up --workers N` run workflows only: one agent per host.
    if settings.worker_agent:
        await asyncio.to_thread(agent.adopt)
        agent.start()
        # Heard from before the healer's first look: a restart longer than the loss bound must
        # not make this worker write off its own host.
        await asyncio.to_thread(_register_local_host, deps)
    try:
        async with build_worker(client, deps):
            background = [
                asyncio.create_task(watcher.run(stop)),
                asyncio.create_task(
                    Reconciler(client, deps.registry, settings.task_queue).run(stop)
                ),
                asyncio.create_task(_alive(settings, stop)),
                asyncio.create_task(_healer(client, deps, settings, stop)),
            ]
            if settings.worker_agent:
                background.append(asyncio.create_task(_local_host(client, deps, agent, stop)))
            log.info("worker running on task queue %s", settings.task_queue)
            await stop.wait()
            for task in background:
                with suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)
    finally:
        # Instances keep serving across a worker restart: the agent stops supervising only.
        await asyncio.to_thread(agent.stop)
        close = getattr(deps.registry, "close", None)
        if close is not None:
            close()


def _register_local_host(deps: Dependencies) -> None:
    from greenshift.hosts.service import advertisement

    if deps.hosts is not None:
        deps.hosts.register(advertisement(deps.settings.host, deps.settings.task_queue))


async def _local_host(client: Any, deps: Dependencies, agent: Any, stop: asyncio.Event) -> None:
    """This machine as a host of its own (registered, heartbeating, polling its host queue), so
    `greenshift up` places instances exactly as a fleet of `greenshift agent` hosts does."""
    from greenshift.hosts.service import HostService, advertisement

    assert deps.hosts is not None
    host = advertisement(deps.settings.host, deps.settings.task_queue)
    service = HostService(
        client, agent, deps.registry, deps.hosts, host, deps.settings.host_heartbeat_seconds
    )
    await service.run(stop)


async def _healer(client: Any, deps: Dependencies, settings: Settings, stop: asyncio.Event) -> None:
    from greenshift.hosts.healer import Healer

    if deps.hosts is not None:
        await Healer(client, deps.registry, deps.hosts, settings).run(stop)


async def _alive(settings: Settings, stop: asyncio.Event, every: float = 3.0) -> None:
    """Tell `greenshift up`'s supervisor this worker is alive (it has no port to probe)."""
    from greenshift.heartbeat import touch_heartbeat

    while not stop.is_set():
        await asyncio.to_thread(touch_heartbeat, settings, settings.worker_name)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Ends without the interpreter's teardown (greenshift/temporal.py says why).
    temporal.run_process(lambda: asyncio.run(run_worker(Settings())))
