"""Containers against built-in instances, through a real `greenshift up` stack on this machine.

1. Time to InService: CreateEndpoint of one instance, from the call to `InService` as
   DescribeEndpoint reports it, for the example container image and for the built-in model
   server (echo-v1); rounds interleaved, the endpoint deleted (and its instance gone) between.
2. Data-plane throughput: the same closed-loop client (aiohttp, `--connections` keep-alive
   connections, POST of a small JSON body) through Greenshift's data plane
   (`/endpoints/<name>/invocations`) to an endpoint of one container instance and to one of one
   built-in instance, both up at once, alternating rounds; median and [min-max] req/s, p50/p99.
   The container path adds Docker's userland proxy (docker-proxy) between HAProxy and the server.

Needs a Docker Engine; builds the example image offline (examples/container/build_image.py).

    .venv/bin/python bench/container_bench.py [--rounds 3] [--seconds 5] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report_doc import replace_section  # noqa: E402
from tests.docker_support import IMAGE, build_images, remove_containers  # noqa: E402
from tests.e2e.stack import Stack, running_stack  # noqa: E402

MODELS = REPO / "examples" / "models"
CONTAINER_MODEL = REPO / "examples" / "container" / "model"
KINDS = {
    "container": (IMAGE, CONTAINER_MODEL),
    "built-in": ("greenshift/model-server", MODELS / "echo-v1"),
}


def _models(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    for kind, (image, data) in KINDS.items():
        name = kind.replace("-", "")
        sm.create_model(
            ModelName=f"m-{name}",
            PrimaryContainer={"Image": image, "ModelDataUrl": f"file://{data}"},
        )
        sm.create_endpoint_config(
            EndpointConfigName=f"c-{name}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"m-{name}",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": 1.0,
                }
            ],
        )


def _status(sm: Any, endpoint: str) -> str:
    try:
        return str(sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"])
    except sm.exceptions.ClientError:
        return "gone"


def time_to_in_service(stack: Stack, kind: str, endpoint: str) -> float:
    sm = stack.client("sagemaker")
    began = time.monotonic()
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"c-{kind.replace('-', '')}")
    while (status := _status(sm, endpoint)) != "InService":
        if status == "Failed" or time.monotonic() - began > 120:
            raise RuntimeError(f"{endpoint}: {status}")
        time.sleep(0.05)
    return time.monotonic() - began


def delete(stack: Stack, endpoint: str) -> None:
    sm = stack.client("sagemaker")
    sm.delete_endpoint(EndpointName=endpoint)
    deadline = time.monotonic() + 60
    while _status(sm, endpoint) != "gone" and time.monotonic() < deadline:
        time.sleep(0.1)


async def _load(url: str, connections: int, seconds: float) -> tuple[int, int, list[float]]:
    body = json.dumps({"hello": "greenshift"}).encode()
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            began = time.monotonic()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.monotonic() - began)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session) for _ in range(connections)))
    return len(latencies), errors, latencies


def throughput(stack: Stack, endpoint: str, connections: int, seconds: float) -> dict[str, float]:
    url = f"{stack.settings.runtime_url}/endpoints/{endpoint}/invocations"
    asyncio.run(_load(url, connections, 1.0))  # warm-up: connections, caches
    count, errors, latencies = asyncio.run(_load(url, connections, seconds))
    ordered = sorted(latencies)
    return {
        "rps": count / seconds,
        "errors": errors,
        "p50": ordered[len(ordered) // 2] * 1000,
        "p99": ordered[int(len(ordered) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    startup: dict[str, list[float]] = {kind: [] for kind in KINDS}
    load: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        build_images(Path(tmp))
        home = (Path(tmp) / "home").resolve()
        try:
            with running_stack(home) as stack:
                _models(stack)
                for n in range(args.rounds):
                    order = list(KINDS) if n % 2 == 0 else list(reversed(KINDS))
                    for kind in order:
                        seconds = time_to_in_service(stack, kind, f"s{n}-{kind.replace('-', '')}")
                        startup[kind].append(seconds)
                        print(f"round {n + 1}: {kind} InService in {seconds:.2f} s", flush=True)
                        delete(stack, f"s{n}-{kind.replace('-', '')}")
                for kind in KINDS:
                    time_to_in_service(stack, kind, f"t-{kind.replace('-', '')}")
                for n in range(args.rounds):
                    order = list(KINDS) if n % 2 == 0 else list(reversed(KINDS))
                    for kind in order:
                        figures = throughput(
                            stack, f"t-{kind.replace('-', '')}", args.connections, args.seconds
                        )
                        load[kind].append(figures)
                        print(
                            f"round {n + 1}: {kind} {figures['rps']:.0f} req/s, p50 "
                            f"{figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, "
                            f"{figures['errors']:.0f} errors",
                            flush=True,
                        )
        finally:
            remove_containers(home)
    rows = []
    for kind in KINDS:
        s = startup[kind]
        rps = [f["rps"] for f in load[kind]]
        rows.append(
            f"| {kind} | {statistics.median(s):.2f} [{min(s):.2f}-{max(s):.2f}] | "
            f"{statistics.median(rps):.0f} [{min(rps):.0f}-{max(rps):.0f}] | "
            f"{statistics.median(f['p50'] for f in load[kind]):.1f} | "
            f"{statistics.median(f['p99'] for f in load[kind]):.1f} | "
            f"{sum(f['errors'] for f in load[kind]):.0f} |"
        )
    table = "\n".join(
        [
            "| instance | time to InService s, median [min-max] | req/s median [min-max] "
            "| p50 ms | p99 ms | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )
    print(table)
    if args.write:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        load_avg = Path("/proc/loadavg").read_text().split()[0]
        body = (
            f"`.venv/bin/python bench/container_bench.py --rounds {args.rounds} --seconds "
            f"{args.seconds:g} --connections {args.connections} --write`: one instance per "
            "endpoint (ml.m5.large: 2 vCPUs, 8 GiB for the container), through `greenshift up`. "
            "Time to InService is CreateEndpoint to `InService` in DescribeEndpoint; throughput "
            "is a closed-loop aiohttp client (Python, on the same machine: it shares the 2 cores "
            "with what it measures, so the figures compare the two instance kinds, not the "
            "machine's ceiling) through the data plane. The two differ in more than the runtime: "
            "the container path adds docker-proxy, and the example container's server is the "
            "standard library's threaded http.server where the built-in one is a raw asyncio "
            "protocol on httptools and uvloop.\n\n"
            f"Run at {datetime.now(UTC):%H:%M on %Y-%m-%d} (code as of {commit}), load average "
            f"{load_avg}:\n\n{table}\n"
        )
        replace_section("Containers", body)


if __name__ == "__main__":
    main()
