"""Control-plane overhead of deployments: what the workflows, activities, registry writes and
Temporal add on top of the waits a DeploymentConfig asks for.

    PYTHONPATH=. .venv/bin/python bench/workflow_bench.py [--concurrent 50] [--write]

A real Temporal dev server (real time), one in-process worker (the real workflows and activities,
the real SqlRegistry on a SQLite file) and instant fakes of the fleet, router and alarms, so
what is measured is the control plane alone:

1. one CANARY deployment: wall time from start to result, minus the configured waits;
2. `--concurrent` CANARY deployments (one per endpoint) started at once through the same worker.

`--write` puts the figures under "## Workflows" in docs/benchmarks.md (only that section).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker.workflow_sandbox import (  # noqa: E402
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)

from greenshift.binaries import temporal_cli  # noqa: E402
from greenshift.registry.sql import SqlRegistry  # noqa: E402
from greenshift.settings import Settings  # noqa: E402
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter  # noqa: E402
from tests.workflow.harness import World, canary, variant  # noqa: E402
from worker.build import Dependencies, build_worker  # noqa: E402

WAIT, FINAL = 2, 1
WAITS = WAIT + WAIT + FINAL  # canary bake, full bake, termination wait


class CallTimes:
    """Wall time spent inside each registry method (count, seconds), summed over threads: where
    the activities' time goes. Wraps the bound methods of one registry object."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wrap(self, registry: Any) -> None:
        for name in dir(type(registry)):
            if name.startswith("_") or not callable(getattr(registry, name)):
                continue
            setattr(registry, name, self._timed(name, getattr(registry, name)))

    def _timed(self, name: str, method: Any) -> Any:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                with self._lock:
                    entry = self.calls.setdefault(name, [0, 0.0])
                    entry[0] += 1
                    entry[1] += spent

        return timed

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def snapshot(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            return {k: (int(v[0]), v[1]) for k, v in self.calls.items()}


class TimedLock:
    """Stands in for SqlRegistry's per-process write lock: how long writers queued for it and
    how long they held it (the held time is the registry's serial part)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acquired = 0.0
        self.waited = self.held = 0.0
        self.count = 0

    def __enter__(self) -> None:
        started = time.perf_counter()
        self._lock.acquire()
        self._acquired = time.perf_counter()
        self.waited += self._acquired - started
        self.count += 1

    def __exit__(self, *_: object) -> None:
        self.held += time.perf_counter() - self._acquired
        self._lock.release()

    def reset(self) -> None:
        with self._lock:
            self.waited = self.held = 0.0
            self.count = 0


@contextlib.asynccontextmanager
async def bench_world(client: Client, tmp: Path, passthrough: bool) -> AsyncIterator[World]:
    """tests/workflow/harness.py's world, with the worker as `greenshift up` builds it; with
    `passthrough` the sandbox shares the `workflows` package instead of importing it again for
    every workflow run (an experiment: see the report)."""
    settings = Settings(home=tmp, task_queue=f"bench-{uuid.uuid4().hex[:8]}")
    registry = SqlRegistry(f"sqlite:///{tmp / 'registry.db'}", arn_for=settings.arn)
    w = World(
        client=client,
        settings=settings,
        registry=registry,
        fleet=FakeFleet(),
        router=FakeRouter(),
        alarms=FakeAlarms(None),
        task_queue=settings.task_queue,
    )
    deps = Dependencies(
        settings=settings, registry=registry, fleet=w.fleet, router=w.router, alarms=w.alarms
    )
    options: dict[str, Any] = {}
    if passthrough:
        restrictions = SandboxRestrictions.default.with_passthrough_modules("workflows")
        options["workflow_runner"] = SandboxedWorkflowRunner(restrictions=restrictions)
    try:
        async with build_worker(client, deps, **options):
            yield w
    finally:
        registry.close()


async def one_deployment(w: World, endpoint: str) -> float:
    """Create `endpoint`, then time one CANARY UpdateEndpoint; returns its overhead in s."""
    config = f"{endpoint}-c1"
    w.add_config(config, variant(model="m1", count=4))
    await w.run("CreateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": config})
    w.add_config(f"{endpoint}-c2", variant(model="m2", count=4))
    request: dict[str, Any] = {
        "EndpointName": endpoint,
        "EndpointConfigName": f"{endpoint}-c2",
        "DeploymentConfig": canary(wait=WAIT, size=1, final=FINAL),
    }
    started = time.perf_counter()
    await w.run("UpdateEndpoint", request)
    return time.perf_counter() - started - WAITS


async def bench(concurrent: int, passthrough: bool = False) -> dict[str, Any]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_cli()
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with bench_world(env.client, Path(tmp), passthrough) as w:
                w.add_model("m1")
                w.add_model("m2")
                times = CallTimes()
                times.wrap(w.registry)
                lock = TimedLock()
                w.registry._local_writes = lock
                await one_deployment(w, "warmup")
                singles = [await one_deployment(w, f"single-{i}") for i in range(3)]
                times.reset()
                lock.reset()
                cpu, load = os.times(), os.getloadavg()[0]
                started = time.perf_counter()
                many = await asyncio.gather(
                    *(one_deployment(w, f"many-{i}") for i in range(concurrent))
                )
                total = time.perf_counter() - started
                used = os.times()
                worker_cpu = (used.user - cpu.user) + (used.system - cpu.system)
    finally:
        await env.shutdown()
    return {
        "singles": singles,
        "many": many,
        "total": total,
        "n": concurrent,
        "registry": times.snapshot(),
        "write_lock": (lock.count, lock.waited, lock.held),
        "worker_cpu": worker_cpu,
        "load": (load, os.getloadavg()[0]),
    }


def profile(figures: dict[str, Any]) -> str:
    """The registry calls of the concurrent run, slowest total first, and the worker's CPU."""
    lines = [
        f"worker process CPU {figures['worker_cpu']:.1f} s over {figures['total']:.1f} s wall; "
        f"load average {figures['load'][0]:.1f} -> {figures['load'][1]:.1f}",
        "SQLite write lock: {} writes, queued for {:.2f} s in all, held {:.2f} s in all".format(
            *figures["write_lock"]
        ),
        "registry call            count   total s   mean ms",
    ]
    calls = sorted(figures["registry"].items(), key=lambda kv: -kv[1][1])
    for name, (count, spent) in calls:
        lines.append(f"{name:<24} {count:>5} {spent:>9.2f} {spent / count * 1000:>9.1f}")
    return "\n".join(lines)


def report(figures: dict[str, Any]) -> str:
    singles, many = figures["singles"], sorted(figures["many"])
    p95 = many[max(0, int(len(many) * 0.95) - 1)]
    return "\n".join(
        [
            "## Workflows",
            "",
            "`PYTHONPATH=. .venv/bin/python bench/workflow_bench.py --concurrent "
            f"{figures['n']} --write`: Temporal dev server",
            "(real time), one in-process worker, the real workflows, activities and SqlRegistry",
            "(SQLite), instant fakes of fleet, router and alarms. A CANARY UpdateEndpoint of a",
            f"4-instance variant (canary 1, WaitInterval {WAIT} s, TerminationWait {FINAL} s: "
            f"{WAITS} s of configured",
            "waits, 8 steps, ~20 activities); overhead = wall time minus those waits. "
            "Target: < 1 s.",
            "",
            "| case | n | overhead p50 s | overhead max s |",
            "| --- | ---: | ---: | ---: |",
            f"| one deployment at a time | {len(singles)} | {statistics.median(singles):.3f} | "
            f"{max(singles):.3f} |",
            f"| {figures['n']} at once through one worker (each also creates its endpoint) | "
            f"{len(many)} | {statistics.median(many):.3f} | {max(many):.3f} |",
            "",
            f"The {figures['n']} concurrent deployments took {figures['total']:.1f} s in all "
            f"(p95 overhead {p95:.3f} s); the time-skipping tests bound the",
            "history: a 28,800 s rolling deployment of 20 batches is ~1,100 events (limit "
            "10,000), and the",
            "dev-server test measures an alarm reaching the rollback's first traffic change in "
            "~0.5 s (limit 2 s).",
            "",
            "Why concurrent deployments wait: every step writes progress and an event to the "
            "registry, and SQLite",
            "takes one writer at a time. Timing the registry calls of 30 concurrent deployments "
            "showed ~870 writes",
            "summing to ~13 s (set_progress 19 ms, append_event 8 ms, finish_operation 33 ms on "
            "average, mostly",
            "waiting for the write lock) against ~19 s of wall time; the machine was also "
            "shared (load average 4-5",
            "on 2 cores). PostgreSQL, or fewer writes per step (progress and event in one "
            "transaction), is the lever.",
            "",
        ]
    )


def write_section(text: str, path: Path = ROOT / "docs" / "benchmarks.md") -> None:
    """Replace (or append) only the "## Workflows" section."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Workflows\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text + "\n", doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--passthrough-workflows",
        action="store_true",
        help="experiment: let the sandbox share the workflows package between runs",
    )
    args = parser.parse_args()
    figures = asyncio.run(bench(args.concurrent, args.passthrough_workflows))
    text = report(figures)
    print(text)
    print("singles:", ", ".join(f"{s:.3f}" for s in figures["singles"]))
    print(profile(figures))
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
