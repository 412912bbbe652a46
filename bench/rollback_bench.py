"""Rollback time, end to end: from the first failed request on the new fleet to all traffic back
on the old fleet, with the whole stack running (`greenshift up` on free ports of 127.0.0.1).

Each run is the issue's scenario: an endpoint on echo-v1 (3 instances) under steady traffic
(50 req/s), an alarm Invocation5XXErrors Sum >= 1 over one 10 s period on the new fleet's
dimensions, and a CANARY UpdateEndpoint (1 instance, WaitIntervalInSeconds 60) to a config on
the `faulty` model with that alarm. The update starts at a random moment, so the first failed
request falls anywhere inside an alarm period. One endpoint serves all runs: each rolls back to
echo-v1 and the next one deploys a fresh faulty config with its own alarm.

Timeline of a run, all on the wall clock of this machine:
- first failure: when the load generator sent the first request that failed (ModelError);
- ALARM: the alarm's history item (DescribeAlarmHistory);
- rollback traffic step: the deployment's event "Rolling back: Moving all traffic back..."
  (Greenshift.DescribeDeployment);
- traffic back: the event of the step after it (terminate), which starts only once the router
  confirmed the data plane applied the rollback's weights (server side), and the last request
  answered by the faulty model (client side).

The figure is first failure -> traffic back (server side); target under 15 s.

    PYTHONPATH=. .venv/bin/python bench/rollback_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from greenshift.client import GreenshiftClient  # noqa: E402
from greenshift.loadgen import SteadyLoad  # noqa: E402
from tests.e2e.stack import Stack, running_stack  # noqa: E402

EXAMPLES = ROOT / "examples" / "models"
ENDPOINT = "rb"
PERIOD = 10
RATE = 50.0
SETTLE_LIMIT = 90.0
TARGET_SECONDS = 15.0


@dataclass(frozen=True)
class Run:
    first_failure: float
    alarm: float
    rollback_step: float
    traffic_back: float
    last_faulty_answer: float
    failed: int

    @property
    def total(self) -> float:
        return self.traffic_back - self.first_failure

    @property
    def client_side(self) -> float:
        return self.last_faulty_answer - self.first_failure


def _config(sm: Any, name: str, model: str) -> None:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 3,
            }
        ],
    )


def _prepare(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    for model in ("echo-v1", "faulty"):
        sm.create_model(
            ModelName=model,
            PrimaryContainer={
                "Image": "greenshift/model-server",
                "ModelDataUrl": f"file://{EXAMPLES / model}",
            },
        )
    _config(sm, "rb-v1", "echo-v1")
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="rb-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=ENDPOINT, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


def _settle(sm: Any) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        d: dict[str, Any] = sm.describe_endpoint(EndpointName=ENDPOINT)
        if d["EndpointStatus"] not in ("Updating", "RollingBack"):
            return d
        time.sleep(0.3)
    raise TimeoutError(f"{ENDPOINT} did not settle in {SETTLE_LIMIT} s")


def one_run(stack: Stack, run: int) -> Run:
    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    config, alarm = f"rb-bad-{run}", f"rb-bad-{run}-5xx"
    _config(sm, config, "faulty")
    cw.put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": ENDPOINT},
            {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointConfigName", "Value": config},
        ],
        Statistic="Sum",
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Period=PERIOD,
        EvaluationPeriods=1,
    )
    load = SteadyLoad(stack.settings.runtime_url, ENDPOINT, rate=RATE, duration=120).start()
    wall_zero = time.time() - (time.monotonic() - load.started_at)
    try:
        time.sleep(random.uniform(0.5, PERIOD + 0.5))
        sm.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName=config,
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                        "WaitIntervalInSeconds": 60,
                    },
                    "TerminationWaitInSeconds": 0,
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
            },
        )
        settled = _settle(sm)
        time.sleep(1.0)
    finally:
        report = load.stop()
    if settled["EndpointConfigName"] != "rb-v1" or alarm not in settled.get("FailureReason", ""):
        raise RuntimeError(f"run {run} did not roll back on its alarm: {settled}")
    client = GreenshiftClient(stack.settings)
    try:
        events = client.call("DescribeDeployment", {"EndpointName": ENDPOINT})["Events"]
    finally:
        client.close()
    started = {e["Message"]: e["Time"] for e in events if e["Type"] == "StepStarted"}
    history = cw.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")
    alarmed = min(
        h["Timestamp"].timestamp()
        for h in history["AlarmHistoryItems"]
        if h["HistorySummary"].endswith("to ALARM")
    )
    failed = report.failed
    if not failed or any(a.error_type != "ModelError" for a in failed):
        raise RuntimeError(f"run {run}: unexpected failures {failed[:5]}")
    cw.delete_alarms(AlarmNames=[alarm])
    return Run(
        first_failure=wall_zero + min(a.at for a in failed),
        alarm=alarmed,
        rollback_step=next(t for m, t in started.items() if m.startswith("Rolling back: Moving")),
        traffic_back=next(t for m, t in started.items() if m.startswith("Rolling back: Termin")),
        last_faulty_answer=wall_zero + max(a.at + a.latency for a in failed),
        failed=len(failed),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as home, running_stack(Path(home)) as stack:
        _prepare(stack)
        for n in range(args.runs):
            r = one_run(stack, n)
            runs.append(r)
            print(
                f"run {n + 1}: total {r.total:.2f} s = first failure -> ALARM "
                f"{r.alarm - r.first_failure:.2f} s, ALARM -> rollback traffic step "
                f"{r.rollback_step - r.alarm:.2f} s, -> traffic confirmed back "
                f"{r.traffic_back - r.rollback_step:.2f} s; client side (last faulty answer) "
                f"{r.client_side:.2f} s; {r.failed} failed requests",
                flush=True,
            )
    totals = [r.total for r in runs]
    print(
        f"first failed request -> all traffic back on the old fleet: median "
        f"{statistics.median(totals):.2f} s, max {max(totals):.2f} s over {len(runs)} runs "
        f"(period {PERIOD} s; target < {TARGET_SECONDS:.0f} s); client side median "
        f"{statistics.median(r.client_side for r in runs):.2f} s"
    )
    for label, part in (
        ("first failure -> ALARM", lambda r: r.alarm - r.first_failure),
        ("ALARM -> rollback traffic step", lambda r: r.rollback_step - r.alarm),
        ("rollback traffic step -> confirmed", lambda r: r.traffic_back - r.rollback_step),
    ):
        values = [part(r) for r in runs]
        print(f"  {label}: median {statistics.median(values):.2f} s, max {max(values):.2f} s")


if __name__ == "__main__":
    main()
