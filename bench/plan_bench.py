"""Planner speed: a 1000-instance variant with 5 % rolling batches (20 batches, 80 steps) and a
10-variant blue/green LINEAR config. Prints p50/p99 in ms; the target is well under 50 ms each,
since the API plans inside a request (`Greenshift.PlanDeployment`) and the workflow per update.

    .venv/bin/python bench/plan_bench.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from greenshift.contracts.sagemaker_shapes import UpdateEndpointInput
from greenshift.planning.model import Plan, VariantSpec
from greenshift.planning.planner import plan_update
from greenshift.planning.rollback import rollback_steps


def spec(name: str, count: int, model: str) -> VariantSpec:
    return VariantSpec(
        variant=name,
        model_name=model,
        instance_type="ml.m5.large",
        instance_count=count,
        weight=1.0,
    )


def rolling_1000() -> Plan:
    request = UpdateEndpointInput.from_wire(
        {
            "EndpointName": "big",
            "EndpointConfigName": "big-v2",
            "DeploymentConfig": {
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 5},
                    "WaitIntervalInSeconds": 60,
                    "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "big-5xx"}]},
            },
        }
    )
    return plan_update([spec("AllTraffic", 1000, "v1")], [spec("AllTraffic", 1000, "v2")], request)


def blue_green_10() -> Plan:
    request = UpdateEndpointInput.from_wire(
        {
            "EndpointName": "many",
            "EndpointConfigName": "many-v2",
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "LINEAR",
                        "WaitIntervalInSeconds": 60,
                        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    },
                    "TerminationWaitInSeconds": 300,
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "many-5xx"}]},
            },
        }
    )
    names = [f"variant-{i}" for i in range(10)]
    return plan_update(
        [spec(n, 20, "v1") for n in names], [spec(n, 20, "v2") for n in names], request
    )


def rollback_1000() -> Plan:
    plan = PLAN_1000
    rollback_steps(plan, len(plan.steps) - 2)
    return plan


PLAN_1000 = rolling_1000()


def measure(fn: Callable[[], Plan], repeat: int) -> tuple[float, float, int]:
    fn()  # warm up imports and pydantic's validators
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        plan = fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99, len(plan.steps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    print(f"{'case':58} {'steps':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for name, fn in (
        ("rolling, 1000 instances, 5 % batches", rolling_1000),
        ("blue/green LINEAR 10 %, 10 variants x 20 instances", blue_green_10),
        ("rollback of the 1000-instance rolling plan, 10 % batches", rollback_1000),
    ):
        p50, p99, steps = measure(fn, args.repeat)
        print(f"{name:58} {steps:>5} {p50:8.2f} {p99:8.2f}")


if __name__ == "__main__":
    main()
