"""`greenshift simulate` on long deployments: the wall time of a rehearsal, the simulated
duration, peak instances, instance-hours and the history size, for the issue's 8-hour rolling
update with a fault in batch 7 and a few neighbours. One time-skipping test server for all runs.

    PYTHONPATH=. .venv/bin/python bench/simulate_bench.py [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from bench.report_doc import replace_section  # noqa: E402
from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_test_server  # noqa: E402
from greenshift.simulate.rehearsal import Scenario, SkippingClock, rehearse  # noqa: E402

RUNS = 3


def rolling(count: int, wait: int, faults: list[str]) -> Scenario:
    def variant(model: str) -> dict[str, Any]:
        return {
            "VariantName": "AllTraffic",
            "ModelName": model,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": count,
            "InitialVariantWeight": 1.0,
        }

    return Scenario.model_validate(
        {
            "CurrentEndpointConfig": {
                "EndpointConfigName": "v1",
                "ProductionVariants": [variant("m1")],
            },
            "NewEndpointConfig": {
                "EndpointConfigName": "v2",
                "ProductionVariants": [variant("m2")],
            },
            "UpdateEndpoint": {
                "EndpointName": "e",
                "EndpointConfigName": "v2",
                "DeploymentConfig": {
                    "RollingUpdatePolicy": {
                        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                        "WaitIntervalInSeconds": wait,
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "e-5xx"}]},
                },
            },
            "Faults": faults,
        }
    )


CASES = [
    ("8 batches x 3600 s, batch 7 fails to start", rolling(8, 3600, ["start-fails:batch=7"])),
    ("8 batches x 3600 s, alarm 20 min into bake 7", rolling(8, 3600, ["alarm:bake=7,at=1200"])),
    ("8 batches x 3600 s, no fault", rolling(8, 3600, [])),
    ("20 batches x 1440 s, no fault", rolling(20, 1440, [])),
]


async def main(write: bool) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=temporal_test_server(),
        test_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    rows = []
    try:
        for label, case in CASES:
            walls = []
            for _ in range(RUNS):
                with tempfile.TemporaryDirectory() as home:
                    started = time.monotonic()
                    report = await rehearse(env.client, SkippingClock(env), case, Path(home))
                    walls.append(time.monotonic() - started)
            rows.append(
                f"| {label} | {report.outcome} | {report.duration_seconds:,.0f} s | "
                f"{statistics.median(walls):.1f} s (max {max(walls):.1f}) | "
                f"{report.peak_instances} | {report.instance_hours:.1f} | {report.history_events} |"
            )
            print(rows[-1], flush=True)
    finally:
        await env.shutdown()
    body = (
        "`bench/simulate_bench.py`: each case rehearsed 3 times on one time-skipping server "
        "(the CLI adds the server's start, about 1 s, and Python's imports). Target: an "
        "8-hour deployment in under 10 s.\n\n"
        "| case | outcome | simulated | wall (median of 3) | peak instances | instance-hours "
        "| history events |\n| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows)
    )
    print(body)
    if write:
        replace_section("Rehearsal (greenshift simulate)", body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    asyncio.run(main(parser.parse_args().write))
