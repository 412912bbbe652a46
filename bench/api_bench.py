"""Control API latency: DescribeEndpoint and UpdateEndpoint p50/p99 with 200 endpoints in the
registry, and ListEndpoints paging through them.

The API runs in its own process (uvicorn, SqlRegistry on a SQLite file, a fake workflow starter
so no Temporal is needed: the figure is the API's own cost, registry writes included); the
client is a keep-alive httpx client sending the same JSON 1.1 requests boto3 sends.

    .venv/bin/python bench/api_bench.py [--endpoints 200] [--describes 2000]

Targets (issue 5): DescribeEndpoint p99 <= 10 ms, UpdateEndpoint p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(db_url: str, port: int) -> None:
    """Child process: the API with a fake starter."""
    from greenshift.api.app import build_app
    from greenshift.api.context import ApiContext
    from greenshift.registry.sql import SqlRegistry
    from greenshift.settings import Settings
    from tests.harness.api_testing import FakeStarter, ServerThread

    settings = Settings(
        home=Path(tempfile.mkdtemp()),
        max_endpoints=10_000,
        max_instances=100_000,
        max_instances_per_endpoint=1000,
    )
    registry = SqlRegistry(db_url, arn_for=settings.arn)
    ctx = ApiContext(settings=settings, registry=registry, starter=FakeStarter())
    with ServerThread(build_app(ctx), port=port):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the parent closes our stdin


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def call(client: httpx.Client, op: str, doc: dict[str, object]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    r = client.post(
        "/",
        content=json.dumps(doc),
        headers={"X-Amz-Target": f"SageMaker.{op}", "Content-Type": "application/x-amz-json-1.1"},
    )
    elapsed = (time.perf_counter() - started) * 1000
    if r.status_code != 200:
        raise SystemExit(f"{op} failed: {r.status_code} {r.text}")
    return elapsed, r.json()


def settle_all(db_url: str, config: str) -> None:
    """Play the worker: every endpoint InService on `config`."""
    from greenshift.registry.api import ListQuery
    from greenshift.registry.records import VariantState
    from greenshift.registry.sql import SqlRegistry
    from greenshift.status import DeploymentOutcome, EndpointStatus

    reg = SqlRegistry(db_url)
    token = None
    while True:
        page = reg.list_endpoints(ListQuery(max_results=100, next_token=token))
        for e in page.items:
            if e.current_deployment_id:
                reg.finish_operation(
                    e.name,
                    e.current_deployment_id,
                    status=EndpointStatus.IN_SERVICE,
                    outcome=DeploymentOutcome.SUCCEEDED,
                    config_name=config,
                    variants=[
                        VariantState(
                            variant="A",
                            model_name="m1",
                            instance_type="ml.m5.large",
                            current_weight=1.0,
                            desired_weight=1.0,
                            current_instance_count=2,
                            desired_instance_count=2,
                        )
                    ],
                )
        token = page.next_token
        if not token:
            break
    reg.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--describes", type=int, default=2000)
    args = parser.parse_args()
    from tests.harness.api_testing import free_port

    tmp = Path(tempfile.mkdtemp())
    db_url = f"sqlite:///{tmp / 'registry.db'}"
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", db_url, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            call(client, "CreateModel", {"ModelName": "m1", "PrimaryContainer": {"Image": "img"}})
            for name in ("c1", "c2"):
                call(
                    client,
                    "CreateEndpointConfig",
                    {
                        "EndpointConfigName": name,
                        "ProductionVariants": [
                            {
                                "VariantName": "A",
                                "ModelName": "m1",
                                "InstanceType": "ml.m5.large",
                                "InitialInstanceCount": 2,
                            }
                        ],
                    },
                )
            names = [f"bench-{i:04d}" for i in range(args.endpoints)]
            creates = [
                call(client, "CreateEndpoint", {"EndpointName": n, "EndpointConfigName": "c1"})[0]
                for n in names
            ]
            settle_all(db_url, "c1")
            for n in names[:20]:  # warm-up
                call(client, "DescribeEndpoint", {"EndpointName": n})
            describes = [
                call(client, "DescribeEndpoint", {"EndpointName": names[i % len(names)]})[0]
                for i in range(args.describes)
            ]
            updates = [
                call(client, "UpdateEndpoint", {"EndpointName": n, "EndpointConfigName": "c2"})[0]
                for n in names
            ]
            scans: dict[int, list[float]] = {}
            for size in (10, 100):
                runs = []
                for _ in range(5):
                    started = time.perf_counter()
                    token, seen = None, 0
                    while True:
                        doc: dict[str, object] = {"MaxResults": size}
                        if token:
                            doc["NextToken"] = token
                        _, page = call(client, "ListEndpoints", doc)
                        seen += len(page["Endpoints"])  # type: ignore[arg-type]
                        token = page.get("NextToken")
                        if not token:
                            break
                    assert seen == len(names), seen
                    runs.append((time.perf_counter() - started) * 1000)
                scans[size] = runs
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=20)

    def line(label: str, xs: list[float]) -> str:
        return (
            f"| {label} | {len(xs)} | {statistics.median(xs):.2f} | "
            f"{percentile(xs, 99):.2f} | {max(xs):.2f} |"
        )

    print(f"Control API, {args.endpoints} endpoints, SQLite registry, API in its own process")
    print("| operation | n | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    print(line("CreateEndpoint", creates))
    print(line("DescribeEndpoint", describes))
    print(line("UpdateEndpoint", updates))
    for size, runs in scans.items():
        print(line(f"ListEndpoints, all {args.endpoints} in pages of {size}", runs))
    ok_d = percentile(describes, 99) <= 10
    ok_u = percentile(updates, 99) <= 50
    print(
        f"targets: DescribeEndpoint p99 <= 10 ms: {'met' if ok_d else 'MISSED'}; "
        f"UpdateEndpoint p99 <= 50 ms: {'met' if ok_u else 'MISSED'}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
