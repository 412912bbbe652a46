"""Alarm reaction time: from the first failed request on the new fleet to the deployment's alarm
source reading ALARM, through the real pieces (median of several runs).

This is the alarm part of the rollback budget (target for the whole rollback: under 15 s with a
10 s period). Real processes on 127.0.0.1: the evaluator (`python -m greenshift.metrics`, 1 s
loop) on a fresh SQLite registry, the CloudWatch API served by uvicorn, and the deployment's
`CloudWatchAlarmSource` polling it through boto3 every 100 ms. The bench plays the data plane's
collector: steady traffic, one datapoint per second delivered when the second ends, then errors
start at a random moment inside a period. The alarm is the one of the issue: Invocation5XXErrors,
Sum >= 1, Period 10, EvaluationPeriods 1, on the new fleet's dimensions.

Not measured here (needs the full stack, `greenshift up`): the alarm watcher's signal, the
workflow's rollback and the router confirming all traffic back on the old fleet. Add those to the
figure measured here to get the end-to-end time.

    .venv/bin/python bench/rollback_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from greenshift.metrics.alarm_source import CloudWatchAlarmSource, cloudwatch_client
from greenshift.metrics.cloudwatch_api import CloudWatchApi, cloudwatch_app
from greenshift.metrics.model import INVOCATION_5XX, Datapoint
from greenshift.metrics.store import MetricStore
from greenshift.settings import Settings

PERIOD = 10
RUN_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector(threading.Thread):
    """Delivers one Invocation5XXErrors datapoint per second for the given dimensions, when the
    second ends (as the collector does); `fail_from` makes every request from then on fail."""

    def __init__(self, store: MetricStore, dims: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.store, self.dims = store, dims
        self.fail_from: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        second = int(time.time())
        while not self.stop.is_set():
            time.sleep(max(0.0, second + 1 - time.time()))
            failing = self.fail_from is not None and second + 1 > self.fail_from
            errors = 1.0 if failing else 0.0
            self.store.put(
                [
                    Datapoint(
                        metric_name=INVOCATION_5XX,
                        dimensions=self.dims,
                        timestamp=second,
                        count=20,
                        sum=errors,
                        minimum=0.0,
                        maximum=errors,
                        values=[errors] + [0.0] * 19,
                    )
                ]
            )
            second += 1


def one_run(
    store: MetricStore, api: CloudWatchApi, source: CloudWatchAlarmSource, run: int
) -> float:
    name = f"bench-5xx-{run}-{int(time.time())}"
    dims = {"EndpointName": "bench", "VariantName": "AllTraffic", "EndpointConfigName": name}
    api.handle_sync(
        "PutMetricAlarm",
        {
            "AlarmName": name,
            "Namespace": "AWS/SageMaker",
            "MetricName": INVOCATION_5XX,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            "Statistic": "Sum",
            "Period": PERIOD,
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )
    collector = Collector(store, dims)
    collector.start()
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while (
            source.states([name]).get(name, None) is None
            or source.states([name])[name].state != "OK"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("alarm never reached OK on clean traffic")
            time.sleep(0.2)
        # The first failed request lands at a random moment within a period.
        time.sleep(random.uniform(0, PERIOD))
        first_failure = time.time()
        collector.fail_from = first_failure
        while source.states([name])[name].state != "ALARM":
            if time.monotonic() > deadline:
                raise TimeoutError("alarm never reached ALARM")
            time.sleep(0.1)
        return time.time() - first_failure
    finally:
        collector.stop.set()
        collector.join(timeout=5)
        api.handle_sync("DeleteAlarms", {"AlarmNames": [name]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), api_port=free_port())
        store = MetricStore(settings.registry_url)
        api = CloudWatchApi(store, settings=settings)
        server = uvicorn.Server(
            uvicorn.Config(
                cloudwatch_app(api), host="127.0.0.1", port=settings.api_port, log_level="warning"
            )
        )
        threading.Thread(target=server.run, daemon=True).start()
        evaluator = subprocess.Popen(
            [sys.executable, "-m", "greenshift.metrics"],
            env={**os.environ, "GREENSHIFT_HOME": home},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            source = CloudWatchAlarmSource(cloudwatch_client(settings))
            times = []
            for run in range(args.runs):
                elapsed = one_run(store, api, source, run)
                times.append(elapsed)
                print(
                    f"run {run + 1}: first failed request -> ALARM seen by the alarm source: "
                    f"{elapsed:.2f} s",
                    flush=True,
                )
            print(
                f"median {statistics.median(times):.2f} s, max {max(times):.2f} s over "
                f"{len(times)} runs (period {PERIOD} s)"
            )
        finally:
            evaluator.terminate()
            evaluator.wait(timeout=10)
            server.should_exit = True
            store.close()


if __name__ == "__main__":
    main()
