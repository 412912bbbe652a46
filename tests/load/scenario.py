"""The load scenario shared by bench/load.py (10 endpoints, 30 instances) and its short form in
tests/load: endpoints under steady traffic updated concurrently with mixed strategies, then many
UpdateEndpoint calls racing on one endpoint. Traffic goes only to the stack on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from greenshift.loadgen import LoadReport, SteadyLoad
from tests.e2e.stack import Stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
STRATEGIES = ("ALL_AT_ONCE", "CANARY", "LINEAR", "ROLLING")


def deployment_config(strategy: str, wait: int = 4) -> dict[str, Any]:
    """A DeploymentConfig of `strategy` with one-instance steps and short waits."""
    one = {"Type": "INSTANCE_COUNT", "Value": 1}
    if strategy == "ROLLING":
        return {
            "RollingUpdatePolicy": {
                "MaximumBatchSize": one,
                "WaitIntervalInSeconds": wait,
                "MaximumExecutionTimeoutInSeconds": 1800,
            }
        }
    routing: dict[str, Any] = {"Type": strategy, "WaitIntervalInSeconds": wait}
    if strategy == "CANARY":
        routing["CanarySize"] = one
    elif strategy == "LINEAR":
        routing["LinearStepSize"] = one
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 1,
            "MaximumExecutionTimeoutInSeconds": 1800,
        }
    }


@dataclass
class Deployment:
    endpoint: str
    strategy: str
    started: float = 0.0
    seconds: float | None = None
    outcome: str = "unfinished"  # InService on the new config, RolledBack, Failed, unfinished
    failure_reason: str | None = None


@dataclass
class LoadResult:
    deployments: list[Deployment] = field(default_factory=list)
    traffic: dict[str, LoadReport] = field(default_factory=dict)
    traffic_seconds: float = 0.0
    rate_per_endpoint: float = 0.0
    race_winners: int = 0
    race_errors: Counter[str] = field(default_factory=Counter)
    race_expected_message: str = ""
    race_seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.traffic.values())

    @property
    def failed(self) -> int:
        return sum(len(r.failed) for r in self.traffic.values())

    @property
    def throughput(self) -> float:
        return self.sent / self.traffic_seconds if self.traffic_seconds else 0.0


def _client(stack: Stack, pool: int = 10) -> Any:
    s = stack.settings
    return boto3.client(
        "sagemaker",
        endpoint_url=s.api_url,
        region_name=s.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # One attempt: a retried UpdateEndpoint would muddle who won the race.
        config=Config(
            retries={"total_max_attempts": 1}, read_timeout=60, max_pool_connections=pool
        ),
    )


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout:.0f} s")
        time.sleep(every)


def prepare(stack: Stack, endpoints: list[str], instances: int, timeout: float = 300) -> None:
    """Models v1/v2, configs v1/v2 of `instances` instances, the endpoints InService on v1."""
    sm = _client(stack)
    for version in ("v1", "v2"):
        sm.create_model(
            ModelName=f"load-{version}",
            PrimaryContainer={
                "Image": "greenshift/model-server",
                "ModelDataUrl": f"file://{EXAMPLES / f'echo-{version}'}",
            },
        )
        sm.create_endpoint_config(
            EndpointConfigName=f"load-{version}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"load-{version}",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": instances,
                }
            ],
        )
    for name in endpoints:
        sm.create_endpoint(EndpointName=name, EndpointConfigName="load-v1")

    def all_in_service() -> bool:
        statuses = [sm.describe_endpoint(EndpointName=n)["EndpointStatus"] for n in endpoints]
        if "Failed" in statuses:
            raise RuntimeError(f"an endpoint failed to create: {statuses}")
        return all(s == "InService" for s in statuses)

    wait_until(all_in_service, timeout, "all endpoints InService", every=1)


def update_concurrently(
    stack: Stack,
    endpoints: list[str],
    rate: float,
    timeout: float = 400,
    wait: int = 4,
) -> LoadResult:
    """Steady traffic on every endpoint while each is updated to v2 with the next strategy."""
    sm = _client(stack, pool=len(endpoints) + 2)
    result = LoadResult(rate_per_endpoint=rate)
    loads = {
        n: SteadyLoad(stack.settings.runtime_url, n, rate=rate, duration=timeout + 60).start()
        for n in endpoints
    }
    begun = time.monotonic()
    try:
        time.sleep(2)  # traffic before the deployments too
        for i, name in enumerate(endpoints):
            d = Deployment(name, STRATEGIES[i % len(STRATEGIES)], started=time.monotonic())
            sm.update_endpoint(
                EndpointName=name,
                EndpointConfigName="load-v2",
                DeploymentConfig=deployment_config(d.strategy, wait),
            )
            result.deployments.append(d)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [d for d in result.deployments if d.seconds is None]
            if not pending:
                break
            for d in pending:
                desc = sm.describe_endpoint(EndpointName=d.endpoint)
                if desc["EndpointStatus"] in ("InService", "Failed", "UpdateRollbackFailed"):
                    d.seconds = time.monotonic() - d.started
                    d.failure_reason = desc.get("FailureReason")
                    on_new = desc["EndpointConfigName"] == "load-v2"
                    d.outcome = (
                        "InService"
                        if desc["EndpointStatus"] == "InService" and on_new
                        else (
                            "RolledBack"
                            if desc["EndpointStatus"] == "InService"
                            else desc["EndpointStatus"]
                        )
                    )
            time.sleep(0.5)
        time.sleep(2)  # traffic after the deployments too
    finally:
        for name, load in loads.items():
            result.traffic[name] = load.stop()
        result.traffic_seconds = time.monotonic() - begun
    return result


def race(stack: Stack, endpoint: str, callers: int, config: str, result: LoadResult) -> None:
    """`callers` threads call UpdateEndpoint on `endpoint` at once; count winners and errors."""
    sm = _client(stack, pool=callers)
    arn = stack.settings.arn("endpoint", endpoint)
    result.race_expected_message = f'Cannot update in-progress endpoint "{arn}".'
    barrier = threading.Barrier(callers)
    lock = threading.Lock()

    def call() -> None:
        barrier.wait(timeout=60)
        try:
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
            outcome = "won"
        except ClientError as exc:
            error = exc.response["Error"]
            outcome = f"{error['Code']}: {error['Message']}"
        except Exception as exc:  # counted and reported: the race must not hide it
            outcome = f"{type(exc).__name__}: {exc}"
        with lock:
            if outcome == "won":
                result.race_winners += 1
            else:
                result.race_errors[outcome] += 1

    threads = [threading.Thread(target=call) for _ in range(callers)]
    begun = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    result.race_seconds = time.monotonic() - begun

    wait_until(
        lambda: sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService",
        300,
        f"{endpoint} InService after the race",
        every=1,
    )
