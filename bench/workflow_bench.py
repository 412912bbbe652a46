"""Control-plane overhead of deployments: what the workflows, activities, registry writes and
Temporal add on top of the waits a DeploymentConfig asks for.

    PYTHONPATH=. .venv/bin/python bench/workflow_bench.py [--concurrent 50]
        [--temporal-db memory|file|file-sqlite-defaults] [--postgres] [--in-process]
        [--no-local-host] [--rounds 5]

A real Temporal dev server (real time), one worker (the real workflows and activities, the real
SqlRegistry on a SQLite file) and instant fakes of the fleet, router and alarms, so what is
measured is the control plane alone. The worker runs in a process of its own, as `greenshift up`
runs it (`--in-process`: in the bench's process, as before 2026-12-06, where its CPU figure also
held the bench's own: the API's side of each deployment, its configs' registry writes and the
client's calls). As `greenshift up`, it registers its machine as a host: steps are placed, then
run on the host's own queue by the fake fleet as that host's agent (tests/fakes.FakeHostAgent,
keeping instance records as an agent does); `--no-local-host` registers none, as the figures
before 2026-12-07 (later) were taken:

1. one CANARY deployment: wall time from start to result, minus the configured waits;
2. `--concurrent` CANARY deployments (one per endpoint) started at once through the same worker;
   `--rounds N` runs the bench N times, each on a world of its own, and prints each round's
   figures and their medians (this box's speed moves by ~10 % within minutes, so one round says
   little about a margin).

It prints its figures; docs/benchmarks.md ("Workflows") keeps them with what they taught, and
bench/run_all pastes its latest output there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_cli  # noqa: E402
from greenshift.hosts.service import HostService, advertisement  # noqa: E402
from greenshift.hosts.store import HostStore  # noqa: E402
from greenshift.registry.sql import SqlRegistry  # noqa: E402
from greenshift.settings import Settings  # noqa: E402
from greenshift.supervisor.components import temporal_sqlite_args  # noqa: E402
from tests.fakes import FakeAlarms, FakeFleet, FakeHostAgent, FakeRouter  # noqa: E402
from tests.sql_statements import Statements  # noqa: E402
from tests.workflow.harness import World, canary, variant  # noqa: E402
from worker.build import Dependencies, build_worker  # noqa: E402

WAIT, FINAL = 2, 1
WAITS = WAIT + WAIT + FINAL  # canary bake, full bake, termination wait


class CallTimes:
    """Wall time and CPU (the calling thread's) spent inside each registry method (count, wall
    seconds, CPU seconds), summed over threads: where the activities' time goes. Wraps the bound
    methods of one registry object; a method that calls another counts it in both."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}
        self.outer_cpu = 0.0  # CPU inside the outermost registry calls: each counted once
        self._depth = threading.local()
        self._lock = threading.Lock()

    def wrap(self, registry: Any) -> None:
        for name in dir(type(registry)):
            if name.startswith("_") or not callable(getattr(registry, name)):
                continue
            setattr(registry, name, self._timed(name, getattr(registry, name)))

    def _timed(self, name: str, method: Any) -> Any:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth.n = depth
                spent, cpu = time.perf_counter() - started, time.thread_time() - cpu
                with self._lock:
                    entry = self.calls.setdefault(name, [0, 0.0, 0.0])
                    entry[0] += 1
                    entry[1] += spent
                    entry[2] += cpu
                    if depth == 0:
                        self.outer_cpu += cpu

        return timed

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.outer_cpu = 0.0

    def snapshot(self) -> dict[str, tuple[int, float, float]]:
        with self._lock:
            return {k: (int(v[0]), v[1], v[2]) for k, v in self.calls.items()}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def children_of(pid: int) -> list[int]:
    """The child processes of `pid` alive now (over all its threads)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def children_cpu(exclude: frozenset[int] = frozenset()) -> float:
    """CPU seconds used so far by this process's child processes but `exclude` (the Temporal
    dev server)."""
    total = 0.0
    for child in children_of(os.getpid()):
        if child not in exclude:
            with contextlib.suppress(OSError):  # ended meanwhile
                total += process_cpu(child)
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process `pid` and its children alive now (PostgreSQL's
    postmaster and its backends: a backend's CPU is lost with it, so this is a lower bound).
    From schedstat, in nanoseconds: /proc/<pid>/stat counts in 10 ms ticks, too coarse for
    many small processes. Their main threads only: PostgreSQL's processes have no others."""

    def ran(process: int) -> float:
        return int(Path(f"/proc/{process}/schedstat").read_text().split()[0]) / 1e9

    total = ran(pid)
    for child in children_of(pid):
        with contextlib.suppress(OSError):  # ended meanwhile
            total += ran(child)
    return total


def own_cpu() -> float:
    used = os.times()
    return used.user + used.system


class TimedLock:
    """Wraps SqlRegistry's per-process write lock (`inner`; on SQLite shared with the host
    store's writes to the same file, greenshift.registry.database.local_write_lock): how many
    write transactions, how long writers queued for the lock and how long they held it (the
    held time is the registry's serial part). On PostgreSQL `inner` serializes nothing, and
    this counts and times the transactions without serializing them."""

    def __init__(self, inner: AbstractContextManager[Any]) -> None:
        self._inner = inner
        self._stats = threading.Lock()
        self._local = threading.local()
        self.waited = self.held = 0.0
        self.count = 0

    def __enter__(self) -> None:
        started = time.perf_counter()
        self._inner.__enter__()
        self._local.acquired = time.perf_counter()
        with self._stats:
            self.waited += self._local.acquired - started
            self.count += 1

    def __exit__(self, *exc: Any) -> None:
        held = time.perf_counter() - self._local.acquired
        with self._stats:
            self.held += held
        self._inner.__exit__(*exc)

    def reset(self) -> None:
        with self._stats:
            self.waited = self.held = 0.0
            self.count = 0


def bench_settings(home: Path, task_queue: str) -> Settings:
    # The API's quotas (greenshift/admission.py) would refuse the 33rd endpoint: not measured here.
    return Settings(
        home=home, task_queue=task_queue, max_endpoints=100_000, max_instances=1_000_000
    )


class Measured:
    """The worker's side of the figures: its CPU, its registry calls, write transactions and
    statements since `reset()`."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.times = CallTimes()
        self.times.wrap(registry)
        self.lock = TimedLock(registry._local_writes)
        registry._local_writes = self.lock
        # every engine of the process: the registry's and the host store's (with --in-process,
        # the API's side too)
        self.statements = Statements()
        self._cpu = own_cpu()

    def reset(self) -> None:
        self.times.reset()
        self.lock.reset()
        self.statements.reset()
        self._cpu = own_cpu()

    def figures(self) -> dict[str, Any]:
        return {
            "cpu": own_cpu() - self._cpu,
            "registry": self.times.snapshot(),
            "registry_cpu": self.times.outer_cpu,
            "write_lock": (self.lock.count, self.lock.waited, self.lock.held),
            "statements": self.statements.count,
        }


class WorkerProcess:
    """The worker in a process of its own (`--serve-worker`), as `greenshift up` runs it.
    SIGUSR1 resets its figures; SIGUSR2 has it write them to `figures.json`."""

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        self.folder = folder
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-worker", json.dumps(config)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._wait_for(folder / "ready", "the worker process to start")

    def _wait_for(self, path: Path, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker process exited ({self.proc.returncode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def reset(self) -> None:
        done = self.folder / "reset"
        done.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        self._wait_for(done, "the worker's reset", 30)

    def figures(self) -> dict[str, Any]:
        path = self.folder / "figures.json"
        path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR2)
        self._wait_for(path, "the worker's figures", 30)
        figures: dict[str, Any] = json.loads(path.read_text())
        return figures

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


async def serve_worker(config: dict[str, Any]) -> None:
    """The worker process: build_worker over the registry and instant fakes, until SIGTERM."""
    folder = Path(config["folder"])
    client = await Client.connect(config["address"], data_converter=pydantic_data_converter)
    settings = bench_settings(Path(config["home"]), config["task_queue"])
    url = config["registry_url"]
    registry = SqlRegistry(url, arn_for=settings.arn)
    measured = Measured(registry)
    # As `greenshift up`: the machine is a host, and the worker's fleet is that host's agent.
    agent = FakeHostAgent(registry, settings.host) if config["local_host"] else None
    deps = Dependencies(
        settings=settings,
        registry=registry,
        fleet=agent or FakeFleet(),
        router=FakeRouter(),
        alarms=FakeAlarms(list(config["alarms"])),
        hosts=HostStore(url) if agent else None,
    )
    background: list[asyncio.Task[None]] = []
    options: dict[str, Any] = {}
    if config["threads"]:
        options["executor"] = ThreadPoolExecutor(max_workers=config["threads"])
    stop = asyncio.Event()

    def reset() -> None:
        measured.reset()
        (folder / "reset").touch()

    def report() -> None:
        written = folder / "figures.tmp"
        written.write_text(json.dumps(measured.figures()))
        written.rename(folder / "figures.json")

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, reset)
    loop.add_signal_handler(signal.SIGUSR2, report)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with build_worker(client, deps, **options):
            if agent is not None and deps.hosts is not None:
                # Registered, heartbeating, its instance activities on the host's own queue.
                host = advertisement(settings.host, settings.task_queue)
                await asyncio.to_thread(deps.hosts.register, host)
                service = HostService(
                    client,
                    agent,  # type: ignore[arg-type]  # FakeHostAgent: this host's agent
                    registry,
                    deps.hosts,
                    host,
                    settings.host_heartbeat_seconds,
                )
                background.append(asyncio.create_task(service.run(stop)))
            (folder / "ready").touch()
            await stop.wait()
            await asyncio.gather(*background)
    finally:
        registry.close()
        if deps.hosts is not None:
            deps.hosts.close()


@contextlib.asynccontextmanager
async def bench_world(
    env: WorkflowEnvironment,
    tmp: Path,
    threads: int | None,
    registry_url: str | None = None,
    alarms: tuple[str, ...] = (),
    in_process: bool = False,
    local_host: bool = True,
) -> AsyncIterator[tuple[World, Measured | WorkerProcess]]:
    """tests/workflow/harness.py's world, with the worker as `greenshift up` builds it: in a
    process of its own, or `in_process`."""
    settings = bench_settings(tmp, f"bench-{uuid.uuid4().hex[:8]}")
    url = registry_url or f"sqlite:///{tmp / 'registry.db'}"
    registry = SqlRegistry(url, arn_for=settings.arn)
    w = World(
        client=env.client,
        settings=settings,
        registry=registry,
        fleet=FakeFleet(),
        router=FakeRouter(),
        alarms=FakeAlarms(list(alarms)),
        task_queue=settings.task_queue,
    )
    try:
        if not in_process:
            control = tmp / "worker-control"
            control.mkdir()
            config = {
                "folder": str(control),
                "address": env.client.service_client.config.target_host,
                "home": str(tmp),
                "task_queue": settings.task_queue,
                "registry_url": url,
                "alarms": list(alarms),
                "threads": threads,
                "local_host": local_host,
            }
            worker = WorkerProcess(control, config)
            try:
                yield w, worker
            finally:
                worker.stop()
            return
        measured = Measured(registry)
        deps = Dependencies(
            settings=settings, registry=registry, fleet=w.fleet, router=w.router, alarms=w.alarms
        )
        options: dict[str, Any] = {}
        executor = ThreadPoolExecutor(max_workers=threads) if threads else None
        if executor is not None:
            options["executor"] = executor
        try:
            async with build_worker(env.client, deps, **options):
                yield w, measured
        finally:
            if executor is not None:
                executor.shutdown(wait=False)
    finally:
        registry.close()


async def one_deployment(w: World, endpoint: str, alarms: tuple[str, ...] = ()) -> float:
    """Create `endpoint`, then time one CANARY UpdateEndpoint watching `alarms` (all OK);
    returns its overhead in s."""
    config = f"{endpoint}-c1"
    w.add_config(config, variant(model="m1", count=4))
    await w.run("CreateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": config})
    w.add_config(f"{endpoint}-c2", variant(model="m2", count=4))
    request: dict[str, Any] = {
        "EndpointName": endpoint,
        "EndpointConfigName": f"{endpoint}-c2",
        "DeploymentConfig": canary(wait=WAIT, size=1, final=FINAL, alarms=alarms),
    }
    started = time.perf_counter()
    await w.run("UpdateEndpoint", request)
    return time.perf_counter() - started - WAITS


async def bench(
    concurrent: int,
    threads: int | None = None,
    new_registry: Callable[[], str] | None = None,
    alarms: tuple[str, ...] = (),
    temporal_db: str = "memory",
    in_process: bool = False,
    local_host: bool = True,
    rounds: int = 1,
    database_pid: int | None = None,
) -> dict[str, Any]:
    """`rounds` runs of the bench, each on a world of its own (a new dev server, worker and
    registry): a server holding the rounds before would cost more per deployment
    (docs/benchmarks.md). `new_registry` gives each round's registry URL (PostgreSQL: a new
    schema); None: a SQLite file in the round's folder. The one-at-a-time figures are the first
    round's."""
    runs = []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            env = await WorkflowEnvironment.start_local(
                data_converter=pydantic_data_converter,
                dev_server_existing_path=temporal_cli(),
                dev_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
                **temporal_persistence(temporal_db, Path(tmp)),
            )
            try:
                world = Path(tmp) / "world"
                world.mkdir()
                runs.append(
                    await _bench(
                        env,
                        world,
                        concurrent,
                        threads,
                        new_registry() if new_registry else None,
                        alarms,
                        in_process,
                        local_host,
                        singles=r == 0,
                        database_pid=database_pid,
                    )
                )
            finally:
                await env.shutdown()
    return {
        # the other figures are the round of median CPU's (the profile and the table's row)
        **median_round(runs),
        "singles": runs[0]["singles"],
        "rounds": runs,
        "temporal_db": temporal_db,
        "local_host": local_host,
    }


def temporal_persistence(mode: str, folder: Path) -> dict[str, Any]:
    """The dev server's persistence: in memory (the default here), a SQLite file as
    `greenshift up` runs it (`file`: WAL, synchronous=NORMAL), or a file on SQLite's defaults
    (`file-sqlite-defaults`: what `greenshift up` ran before)."""
    if mode == "memory":
        return {}
    extra = temporal_sqlite_args() if mode == "file" else []
    return {
        "dev_server_database_filename": str(folder / "temporal.db"),
        "dev_server_extra_args": extra,
    }


async def _bench(
    env: WorkflowEnvironment,
    folder: Path,
    concurrent: int,
    threads: int | None,
    registry_url: str | None,
    alarms: tuple[str, ...],
    in_process: bool,
    local_host: bool,
    singles: bool = True,
    database_pid: int | None = None,
) -> dict[str, Any]:
    """One round: a warm-up deployment, three one at a time (`singles`), then `concurrent` at
    once."""
    async with bench_world(env, folder, threads, registry_url, alarms, in_process, local_host) as (
        w,
        worker,
    ):
        w.add_model("m1")
        w.add_model("m2")
        await one_deployment(w, "warmup", alarms)
        count = 3 if singles else 0
        alone = [await one_deployment(w, f"single-{i}", alarms) for i in range(count)]
        # the dev server's CPU: this process's children but the worker's
        others = frozenset({worker.proc.pid}) if isinstance(worker, WorkerProcess) else frozenset()
        worker.reset()
        bench_cpu, load, server = own_cpu(), os.getloadavg()[0], children_cpu(others)
        database = tree_cpu(database_pid) if database_pid else 0.0
        started = time.perf_counter()
        many = await asyncio.gather(
            *(one_deployment(w, f"many-{i}", alarms) for i in range(concurrent))
        )
        total = time.perf_counter() - started
        measured = worker.figures()
        server_cpu = children_cpu(others) - server
        bench_cpu = own_cpu() - bench_cpu
        database_cpu = tree_cpu(database_pid) - database if database_pid else None
        histories = await history_counts(w, "many-")
    return {
        "singles": alone,
        "many": many,
        "total": total,
        "n": concurrent,
        "registry": measured["registry"],
        "registry_cpu": measured["registry_cpu"],
        "write_lock": tuple(measured["write_lock"]),
        "statements": measured["statements"],
        "worker_cpu": measured["cpu"],
        # in a process of its own: the bench's own (the API's side and the client's calls)
        "bench_cpu": None if in_process else bench_cpu,
        "server_cpu": server_cpu,
        "database_cpu": database_cpu,  # PostgreSQL's own (--postgres), else None
        "load": (load, os.getloadavg()[0]),
        "history": histories,
    }


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose worker + server CPU is the median (the lower middle of an even count)."""
    ordered = sorted(runs, key=lambda r: r["worker_cpu"] + r["server_cpu"])
    return ordered[(len(ordered) - 1) // 2]


# History event types counted per workflow run: what the server and the worker pay for.
COUNTED = {
    "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED": "activities",
    "EVENT_TYPE_MARKER_RECORDED": "markers",
    "EVENT_TYPE_WORKFLOW_TASK_COMPLETED": "workflow_tasks",
}


async def history_counts(w: World, prefix: str) -> dict[str, dict[str, float]]:
    """Mean activities, markers (local activities, patches), workflow tasks and history events
    per workflow type over the runs whose endpoint starts with `prefix`."""
    from temporalio.api.enums.v1 import EventType

    sums: dict[str, dict[str, float]] = {}
    runs: dict[str, int] = {}
    for handle in w.started:
        if not handle.id.startswith(f"endpoint/{prefix}"):
            continue
        history = await handle.fetch_history()
        kind = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        entry = sums.setdefault(kind, {v: 0.0 for v in [*COUNTED.values(), "events"]})
        runs[kind] = runs.get(kind, 0) + 1
        entry["events"] += len(history.events)
        for event in history.events:
            counted = COUNTED.get(EventType.Name(event.event_type))
            if counted is not None:
                entry[counted] += 1
    return {kind: {k: v / runs[kind] for k, v in entry.items()} for kind, entry in sums.items()}


def profile(figures: dict[str, Any]) -> str:
    """The registry calls of the concurrent run, slowest total first, and the worker's CPU."""
    bench = figures["bench_cpu"]
    own = "" if bench is None else f", the bench's own process {bench:.1f} s"
    lines = [
        f"worker process CPU {figures['worker_cpu']:.1f} s, Temporal dev server CPU "
        f"{figures['server_cpu']:.1f} s{own}, over {figures['total']:.1f} s wall; "
        f"load average {figures['load'][0]:.1f} -> {figures['load'][1]:.1f}",
        "SQLite write lock: {} writes, queued for {:.2f} s in all, held {:.2f} s in all".format(
            *figures["write_lock"]
        ),
        "registry call            count   total s   mean ms   CPU ms/call",
    ]
    calls = sorted(figures["registry"].items(), key=lambda kv: -kv[1][1])
    for name, (count, spent, cpu) in calls:
        lines.append(
            f"{name:<24} {count:>5} {spent:>9.2f} {spent / count * 1000:>9.1f}"
            f" {cpu / count * 1000:>13.2f}"
        )
    lines.append(per_deployment_table(figures))
    return "\n".join(lines)


def per_deployment(figures: dict[str, Any]) -> dict[str, float]:
    """One deployment = its CreateEndpoint + its CANARY UpdateEndpoint, as the issue counts."""
    n = figures["n"]
    history = figures["history"]
    totals = {
        k: sum(h.get(k, 0.0) for h in history.values())
        for k in ("activities", "markers", "workflow_tasks", "events")
    }
    bench = figures["bench_cpu"]
    return {
        "worker_ms": figures["worker_cpu"] / n * 1000,
        # the worker's threads inside registry calls (thread CPU): part of worker_ms
        "registry_ms": figures["registry_cpu"] / n * 1000,
        "server_ms": figures["server_cpu"] / n * 1000,
        "bench_ms": float("nan") if bench is None else bench / n * 1000,
        "database_ms": float("nan")
        if figures["database_cpu"] is None
        else figures["database_cpu"] / n * 1000,
        **totals,
        "writes": figures["write_lock"][0] / n,
        "statements": figures["statements"] / n,
    }


def per_deployment_table(figures: dict[str, Any]) -> str:
    d = per_deployment(figures)
    own = "" if figures["bench_cpu"] is None else " (the bench's own process: {bench_ms:.0f} ms)"
    if figures["database_cpu"] is not None:
        own += ", PostgreSQL's own CPU at least {database_ms:.0f} ms"
    template = (
        "per deployment (create + CANARY update): worker CPU {worker_ms:.0f} ms (of which "
        "inside registry calls {registry_ms:.0f} ms), server CPU {server_ms:.0f} ms"
        + own
        + ", activities {activities:.1f}, markers {markers:.1f}, workflow tasks "
        "{workflow_tasks:.1f}, history events {events:.1f}, registry writes {writes:.1f} "
        "(SQL statements {statements:.1f})"
    )
    lines = [template.format(**d)]
    for kind, h in sorted(figures["history"].items()):
        lines.append(
            f"  {kind}: activities {h['activities']:.1f}, markers {h['markers']:.1f}, workflow "
            f"tasks {h['workflow_tasks']:.1f}, events {h['events']:.1f}"
        )
    return "\n".join(lines)


# The same bench on the branch point of issue 17 (commit a1d4384, before the lean round trips),
# one run at load average 4.6 -> 6.2: the "before" row of the report.
BEFORE = {
    "p50": 6.219,
    "max": 7.315,
    "worker_ms": 160,
    "server_ms": 151,
    "activities": 22.0,
    "markers": 2.0,
    "workflow_tasks": 27.0,
    "events": 161.0,
    "writes": 23.0,
}


# Issue 17's targets at 50 concurrent deployments.
TARGET_P50_S = 1.5
TARGET_CPU_MS = 150


def rounds_table(figures: dict[str, Any]) -> str:
    """Each round's figures, then their medians and how many rounds met the targets; empty for
    one round."""
    rounds = figures["rounds"]
    if len(rounds) < 2:
        return ""
    n = figures["n"]
    p50s = [statistics.median(r["many"]) for r in rounds]
    cpus = [(r["worker_cpu"] + r["server_cpu"]) / n * 1000 for r in rounds]
    lines = [
        "| round | p50 s | max s | worker CPU ms | server CPU ms | worker + server ms | took s |",
        "| ---: |" + " ---: |" * 6,
    ]
    for i, (r, p50, cpu) in enumerate(zip(rounds, p50s, cpus, strict=True), 1):
        lines.append(
            f"| {i} | {p50:.2f} | {max(r['many']):.2f} | {r['worker_cpu'] / n * 1000:.0f} | "
            f"{r['server_cpu'] / n * 1000:.0f} | {cpu:.0f} | {r['total']:.1f} |"
        )
    cpu_met = p50_met = ""
    if n == 50:  # the targets' load
        cpu_met = f", at or under {TARGET_CPU_MS} in {sum(c <= TARGET_CPU_MS for c in cpus)}"
        cpu_met += f" of {len(rounds)}"
        p50_met = f", at or under {TARGET_P50_S} in {sum(p <= TARGET_P50_S for p in p50s)}"
        p50_met += f" of {len(rounds)}"
    lines += [
        "",
        f"Over {len(rounds)} rounds: worker + server CPU per deployment median "
        f"{statistics.median(cpus):.0f} ms ({min(cpus):.0f}-{max(cpus):.0f}){cpu_met}; p50 "
        f"overhead median {statistics.median(p50s):.2f} s ({min(p50s):.2f}-{max(p50s):.2f})"
        f"{p50_met}. The table above and the profile below are the round of median CPU's.",
    ]
    return "\n".join(lines)


def report(figures: dict[str, Any], backend: str = "SQLite") -> str:
    singles, many = figures["singles"], sorted(figures["many"])
    n, total = figures["n"], figures["total"]
    writes, queued, held = figures["write_lock"]
    d = per_deployment(figures)
    load = "{:.1f} -> {:.1f}".format(*figures["load"])
    b = BEFORE
    row = (
        "| {label} | {p50:.2f} | {max:.2f} | {worker_ms:.0f} | {server_ms:.0f} | "
        "{activities:.0f} | {markers:.0f} | {workflow_tasks:.0f} | {events:.0f} | {writes:.0f} |"
    )
    after = {"p50": statistics.median(many), "max": max(many), **d}
    header = (
        f"| {n} concurrent | p50 s | max s | worker CPU ms | server CPU ms | activities | "
        "markers | workflow tasks | history events | registry writes |"
    )
    rows = [header, "| --- |" + " ---: |" * 9]
    if n == 50 and backend == "SQLite" and figures["temporal_db"] == "memory":
        rows.append(row.format(label="before (a1d4384, worker in the bench's process)", **b))
    label = "now" if len(figures["rounds"]) < 2 else "now (the round of median CPU)"
    rows.append(row.format(label=label, **after))
    table = "\n".join(rows)
    by_round = rounds_table(figures)
    if by_round:
        table += "\n\n" + by_round
    in_process = figures["bench_cpu"] is None
    flags = f"--concurrent {n}" + (" --postgres" if backend == "PostgreSQL" else "")
    flags += " --in-process" if in_process else ""
    local_host = figures["local_host"] and not in_process
    flags += "" if local_host or in_process else " --no-local-host"
    rounds = len(figures["rounds"])
    flags += f" --rounds {rounds}" if rounds > 1 else ""
    where = "in the bench's process" if in_process else "in a process of its own"
    hosts = (
        "its machine registered as a host, as `greenshift up` does (provisions and terminates "
        "placed, then run on the host's own queue)"
        if local_host
        else "no host registered (the shared queue's fleet provisions and terminates)"
    )
    text = f"""`PYTHONPATH=. .venv/bin/python bench/workflow_bench.py {flags}
--temporal-db {figures["temporal_db"]}`: Temporal dev server (real time; persistence:
{figures["temporal_db"]}), one worker built as `greenshift up` builds it ({where}; the real
workflows, activities and SqlRegistry on {backend}), {hosts}, instant fakes of fleet, router
and alarms.
Each deployment creates its endpoint (4 instances), then runs a CANARY UpdateEndpoint (canary 1,
WaitInterval {WAIT} s, TerminationWait {FINAL} s: {WAITS} s of configured waits, 6 steps);
overhead = the update's wall time minus those waits. {n} deployments at once through one worker.
Per deployment (create + update): CPU of the worker process and of the dev server over the
concurrent run divided by {n}; activities, markers (local activities and patches), workflow
tasks and history events from the runs' histories; registry write transactions. Targets
(issue 17): p50 overhead <= {TARGET_P50_S} s at 50, worker + server CPU <= {TARGET_CPU_MS} ms per
deployment.

{table}

One deployment at a time: overhead p50 {statistics.median(singles):.3f} s, max {max(singles):.3f} s.
The concurrent run took {total:.1f} s; load average {load} on 2 cores. {backend} write
transactions: {writes} ({writes / n:.1f} per deployment), open {held:.1f} s summed over threads;
writers queued for SQLite's lock {queued:.1f} s summed over threads.
"""
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the registry on a throwaway PostgreSQL server (tests/postgres.py) instead of SQLite",
    )
    parser.add_argument(
        "--activity-threads",
        type=int,
        default=None,
        help="experiment: run activities in this many threads (default: the worker's)",
    )
    parser.add_argument(
        "--alarms",
        type=int,
        default=0,
        help="each deployment watches this many alarms (plain ones, all OK; default none)",
    )
    parser.add_argument(
        "--temporal-db",
        choices=("memory", "file", "file-sqlite-defaults"),
        default="memory",
        help="the dev server's persistence: in memory (default), a SQLite file as `greenshift up` "
        "keeps it (WAL, synchronous=NORMAL), or a file on SQLite's own defaults",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the worker in the bench's process (as before 2026-12-06): its CPU figure then "
        "also holds the bench's own (the API's side of each deployment and the client's calls)",
    )
    parser.add_argument(
        "--no-local-host",
        action="store_true",
        help="register no host: the shared queue's fleet does every provision and terminate "
        "(as the figures before 2026-12-07 were taken; `greenshift up` registers its machine as "
        "a host, whose queue takes them)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the bench this many times, each on a new dev server, worker and registry, and "
        "print each round's figures and their medians (this box's speed moves by ~10 %% within "
        "minutes: one round says little about a margin)",
    )
    parser.add_argument("--serve-worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        asyncio.run(serve_worker(json.loads(args.serve_worker)))
        return
    alarms = tuple(f"alarm-{i}" for i in range(args.alarms))
    if args.postgres:
        from tests.postgres import PostgresServer

        server = PostgresServer()
        server.start()
        try:
            figures = asyncio.run(
                bench(
                    args.concurrent,
                    args.activity_threads,
                    lambda: server.url(schema=server.create_schema()),  # a schema per round
                    alarms,
                    args.temporal_db,
                    args.in_process,
                    not args.no_local_host,
                    args.rounds,
                    server.postmaster_pid(),
                )
            )
        finally:
            server.stop()
    else:
        figures = asyncio.run(
            bench(
                args.concurrent,
                args.activity_threads,
                None,
                alarms,
                args.temporal_db,
                args.in_process,
                not args.no_local_host,
                args.rounds,
            )
        )
    text = report(figures, "PostgreSQL" if args.postgres else "SQLite")
    print(text)
    print("singles:", ", ".join(f"{s:.3f}" for s in figures["singles"]))
    print(profile(figures))


if __name__ == "__main__":
    main()
