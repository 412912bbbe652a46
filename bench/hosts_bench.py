"""Control-plane overhead of 50 concurrent CANARY deployments through 1, 2 and 4 worker
processes on the shared task queue (`greenshift up --workers N` shape).

    PYTHONPATH=. .venv/bin/python bench/hosts_bench.py [--concurrent 50] [--workers 1 2 4]

A real Temporal dev server, N worker *processes* (the real workflows and activities on one SQLite
registry file) and instant in-memory fakes of the fleet, router and alarms, so what is measured
is the control plane: each deployment's wall time minus the waits its DeploymentConfig asks for.
The host-loss figure comes from tests/e2e/test_hosts.py (real agents), which prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from bench.workflow_bench import WAITS, WorkerProcess, one_deployment  # noqa: E402
from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_cli  # noqa: E402
from greenshift.registry.sql import SqlRegistry  # noqa: E402
from greenshift.settings import Settings  # noqa: E402
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter  # noqa: E402
from tests.workflow.harness import World  # noqa: E402


async def run(workers: int, concurrent: int) -> dict[str, float]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        dev_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    procs: list[WorkerProcess] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            settings = Settings(home=home, task_queue=queue)
            url = f"sqlite:///{home / 'registry.db'}"
            registry = SqlRegistry(url, arn_for=settings.arn)
            for n in range(workers):  # as bench/workflow_bench.py runs its one
                control = home / f"worker-{n}"
                control.mkdir()
                config = {
                    "folder": str(control),
                    "address": env.client.service_client.config.target_host,
                    "home": str(home),
                    "task_queue": queue,
                    "registry_url": url,
                    "alarms": [],
                    "threads": None,
                }
                procs.append(WorkerProcess(control, config))
            w = World(
                client=env.client,
                settings=settings,
                registry=registry,
                fleet=FakeFleet(),
                router=FakeRouter(),
                alarms=FakeAlarms(None),
                task_queue=queue,
            )
            w.add_model("m1")
            w.add_model("m2")
            await one_deployment(w, "warmup")
            started = time.perf_counter()
            many = await asyncio.gather(
                *(one_deployment(w, f"many-{i}") for i in range(concurrent))
            )
            total = time.perf_counter() - started
            registry.close()
    finally:
        for worker in procs:
            worker.stop()
        await env.shutdown()
    ordered = sorted(many)
    return {
        "workers": workers,
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "total": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print(f"{args.concurrent} concurrent CANARY deployments; waits of {WAITS} s each subtracted")
    print(f"{'workers':>7} {'p50 s':>7} {'p99 s':>7} {'all s':>7}  load")
    for n in args.workers:
        f = asyncio.run(run(n, args.concurrent))
        print(
            f"{n:>7} {f['p50']:>7.2f} {f['p99']:>7.2f} {f['total']:>7.1f}  "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
