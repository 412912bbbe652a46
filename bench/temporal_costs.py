"""What each kind of Temporal operation costs on this machine: the price list behind every
decision on how a deployment workflow is cut into activities, local activities and timers.

    PYTHONPATH=. .venv/bin/python bench/temporal_costs.py [--workflows 50] [--rounds 2]

A Temporal dev server (in memory, headless) and one worker as Greenshift builds it (the same
sandbox runner, pydantic data converter and payload-visit skip), running a trivial workflow that
does k no-op operations of one kind, `--workflows` of them at once. Printed per workflow: the
CPU of the worker's process (with the client's starts and result waits, a few ms) and of the dev
server, for k = 0, 4 and 8; the cost of one operation is the slope between k = 4 and k = 8.
docs/benchmarks.md ("Workflows") keeps the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_cli  # noqa: E402
from tests.ports import free_port  # noqa: E402
from worker import payload_visits  # noqa: E402
from worker.build import workflow_runner  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from temporal_costs_workflow import Operations, noop  # noqa: E402
from workflow_bench import own_cpu, process_cpu  # noqa: E402

KINDS = ("activity", "local activity", "timer")


async def connect(port: int, server: subprocess.Popen[bytes]) -> Client:
    deadline = asyncio.get_running_loop().time() + SERVER_STARTUP_TIMEOUT.total_seconds()
    while True:
        try:
            return await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)
        except RuntimeError:
            if server.poll() is not None or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def measure(
    client: Client, server_pid: int, queue: str, kind: str, k: int, workflows: int
) -> tuple[float, float]:
    """Worker (+ client) and server CPU ms per workflow for `workflows` runs at once."""
    await asyncio.sleep(1.0)  # let the previous round's tail settle
    worker0, server0 = own_cpu(), process_cpu(server_pid)
    handles = [
        await client.start_workflow(
            "Operations", args=[kind, k], id=str(uuid.uuid4()), task_queue=queue
        )
        for _ in range(workflows)
    ]
    await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=300)
    worker = (own_cpu() - worker0) * 1000 / workflows
    server = (process_cpu(server_pid) - server0) * 1000 / workflows
    return worker, server


async def run(port: int, server: subprocess.Popen[bytes], workflows: int, rounds: int) -> None:
    client = await connect(port, server)
    payload_visits.install()
    queue = "temporal-costs"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[Operations],
        activities=[noop],
        activity_executor=ThreadPoolExecutor(max_workers=32),
        workflow_runner=workflow_runner(),
    ):
        await measure(client, server.pid, queue, "activity", 2, workflows)  # warm up
        print(f"{workflows} workflows at once; CPU ms per workflow (worker + client / server)")
        print("| operation | k = 0 | k = 4 | k = 8 | one more: worker | one more: server |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for _ in range(rounds):
            base = await measure(client, server.pid, queue, "activity", 0, workflows)
            for kind in KINDS:
                four = await measure(client, server.pid, queue, kind, 4, workflows)
                eight = await measure(client, server.pid, queue, kind, 8, workflows)
                cells = " | ".join(f"{w:.1f} / {s:.1f}" for w, s in (base, four, eight))
                slope_worker = (eight[0] - four[0]) / 4
                slope_server = (eight[1] - four[1]) / 4
                print(f"| {kind} | {cells} | {slope_worker:.1f} | {slope_server:.1f} |")


def main(workflows: int, rounds: int) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            temporal_cli(),
            *("server", "start-dev", "--headless", "--log-level", "error"),
            *("--ip", "127.0.0.1", "--port", str(port)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        asyncio.run(run(port, server, workflows, rounds))
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    main(args.workflows, args.rounds)
