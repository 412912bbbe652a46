"""The demo story, told only through boto3 against a running Greenshift.

1. An endpoint `demo` on `echo-v1` with 3 instances, under steady traffic.
2. A CANARY update to `echo-v2`, with live progress.
3. A LINEAR update to `faulty`, guarded by an `Invocation5XXErrors` alarm: it rolls back by itself.
4. A summary and a timeline picture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from greenshift.loadgen import LoadReport, SteadyLoad

ENDPOINT = "demo"
VARIANT = "AllTraffic"
ALARM = "demo-faulty-5xx"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


@dataclass
class Sample:
    """One DescribeEndpoint poll, for the timeline."""

    at: float
    status: str
    config: str
    pending_config: str | None
    variant_status: str | None
    message: str | None
    green_weight: float | None


@dataclass
class Deployment:
    name: str
    target_config: str
    started: float
    ended: float = 0.0
    outcome: str = ""
    failure_reason: str | None = None


@dataclass
class StoryResult:
    load: LoadReport
    samples: list[Sample] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    alarm_at: float | None = None


class DemoStory:
    def __init__(
        self,
        api_url: str,
        runtime_url: str,
        region: str = "us-east-1",
        say: Callable[[str], None] = print,
        bake_seconds: int = 15,
        rate: float = 25.0,
    ) -> None:
        config = Config(retries={"max_attempts": 3, "mode": "standard"})
        creds: dict[str, Any] = {
            "region_name": region,
            "aws_access_key_id": "greenshift",
            "aws_secret_access_key": "greenshift",
            "config": config,
        }
        self.sm = boto3.client("sagemaker", endpoint_url=api_url, **creds)
        self.cw = boto3.client("cloudwatch", endpoint_url=api_url, **creds)
        self.runtime_url = runtime_url
        self.say = say
        self.bake = bake_seconds
        self.rate = rate
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    # --- the story -------------------------------------------------------------------------------
    def run(self) -> StoryResult:
        self._create_models_and_configs()
        self.say("Creating endpoint 'demo' on echo-v1 with 3 instances...")
        self.sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="demo-v1")
        self._wait_settled(timeout=120)
        self.say(f"  InService after {self.elapsed():.0f}s")

        load = SteadyLoad(self.runtime_url, ENDPOINT, rate=self.rate, duration=600).start()
        self.t0 = load.started_at  # the timeline's zero is the first request
        result = StoryResult(load=load.report)
        time.sleep(3)

        self.say("\nCANARY update to echo-v2 (1 instance first, then the rest):")
        result.deployments.append(
            self._deploy(
                result,
                "CANARY to echo-v2",
                "demo-v2",
                {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {
                            "Type": "CANARY",
                            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                            "WaitIntervalInSeconds": self.bake,
                        },
                        "TerminationWaitInSeconds": 5,
                        "MaximumExecutionTimeoutInSeconds": 600,
                    }
                },
            )
        )
        time.sleep(3)

        self.say("\nLINEAR update to 'faulty', guarded by an Invocation5XXErrors alarm:")
        self.cw.put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[
                {"Name": "EndpointName", "Value": ENDPOINT},
                {"Name": "VariantName", "Value": VARIANT},
                {"Name": "EndpointConfigName", "Value": "demo-faulty"},
            ],
            Statistic="Sum",
            Period=10,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )
        result.deployments.append(
            self._deploy(
                result,
                "LINEAR to faulty",
                "demo-faulty",
                {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {
                            "Type": "LINEAR",
                            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 33},
                            "WaitIntervalInSeconds": self.bake * 2,
                        },
                        "TerminationWaitInSeconds": 5,
                        "MaximumExecutionTimeoutInSeconds": 600,
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
                },
            )
        )
        history = self.cw.describe_alarm_history(AlarmName=ALARM, HistoryItemType="StateUpdate")
        for item in history.get("AlarmHistoryItems", []):
            if "to ALARM" in item.get("HistorySummary", ""):
                result.alarm_at = item["Timestamp"].timestamp() - (time.time() - self.elapsed())
        time.sleep(3)
        load.stop()
        return result

    # --- steps -----------------------------------------------------------------------------------
    def _create_models_and_configs(self) -> None:
        self.say("Creating models echo-v1, echo-v2, faulty and their endpoint configs...")
        for model, config in (
            ("echo-v1", "demo-v1"),
            ("echo-v2", "demo-v2"),
            ("faulty", "demo-faulty"),
        ):
            self.sm.create_model(
                ModelName=model,
                PrimaryContainer={
                    "Image": "greenshift/model-server",
                    "ModelDataUrl": f"file://{EXAMPLES / model}",
                },
            )
            self.sm.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=[
                    {
                        "VariantName": VARIANT,
                        "ModelName": model,
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 3,
                        "InitialVariantWeight": 1.0,
                    }
                ],
            )

    def _deploy(
        self, result: StoryResult, name: str, config: str, deployment_config: dict[str, Any]
    ) -> Deployment:
        before = self.sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
        deployment = Deployment(name=name, target_config=config, started=self.elapsed())
        self.sm.update_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName=config, DeploymentConfig=deployment_config
        )
        final = self._watch(result, timeout=300)
        deployment.ended = self.elapsed()
        deployment.failure_reason = final.get("FailureReason")
        if final["EndpointConfigName"] == config:
            deployment.outcome = "succeeded"
        elif final["EndpointConfigName"] == before:
            deployment.outcome = "rolled back"
        else:
            deployment.outcome = final["EndpointStatus"]
        self.say(
            f"  {name}: {deployment.outcome} in {deployment.ended - deployment.started:.0f}s"
            + (f" ({deployment.failure_reason})" if deployment.failure_reason else "")
        )
        return deployment

    def _watch(self, result: StoryResult, timeout: float) -> dict[str, Any]:
        """Poll DescribeEndpoint, print each change of phase, until the endpoint settles."""
        deadline = time.monotonic() + timeout
        last_line = ""
        seen_busy = False
        while time.monotonic() < deadline:
            d = self.sm.describe_endpoint(EndpointName=ENDPOINT)
            sample = _sample(self.elapsed(), d)
            result.samples.append(sample)
            busy = d["EndpointStatus"] in ("Updating", "RollingBack")
            seen_busy = seen_busy or busy
            line = f"{d['EndpointStatus']}: {sample.message or 'starting'}"
            if sample.green_weight is not None:
                line += f"  [new fleet {bar(sample.green_weight)} {sample.green_weight:4.0%}]"
            if line != last_line:
                self.say(f"  [{self.elapsed():5.1f}s] {line}")
                last_line = line
            if seen_busy and not busy:
                return d
            time.sleep(0.5)
        raise TimeoutError(f"the deployment did not settle in {timeout:.0f}s")

    def _wait_settled(self, timeout: float) -> None:
        waiter = self.sm.get_waiter("endpoint_in_service")
        waiter.wait(
            EndpointName=ENDPOINT,
            WaiterConfig={"Delay": 1, "MaxAttempts": int(timeout)},
        )


def _sample(at: float, d: dict[str, Any]) -> Sample:
    pending = d.get("PendingDeploymentSummary")
    status, message, green = None, None, None
    if pending:
        variants = pending.get("ProductionVariants", [])
        if variants:
            entries = variants[0].get("VariantStatus") or []
            if entries:
                status = entries[-1].get("Status")
                message = entries[-1].get("StatusMessage")
            green = green_share(variants)
    return Sample(
        at=at,
        status=d["EndpointStatus"],
        config=d["EndpointConfigName"],
        pending_config=pending.get("EndpointConfigName") if pending else None,
        variant_status=status,
        message=message or d.get("FailureReason"),
        green_weight=green,
    )


def green_share(pending_variants: list[dict[str, Any]]) -> float | None:
    """The new fleet's share of the traffic, from PendingDeploymentSummary's variants: each shows
    CurrentWeight = its weight x the share moved so far, DesiredWeight = its weight."""
    current = sum(v.get("CurrentWeight") or 0.0 for v in pending_variants)
    desired = sum(v.get("DesiredWeight") or 0.0 for v in pending_variants)
    return min(1.0, current / desired) if desired else None


def bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "#" * filled + "." * (width - filled)
