"""Data capture end to end through UpdateEndpoint (issue 15): `greenshift up`, boto3 only.

A CANARY from config A (capture on) to config B (capture on): every answer is a record, and
each record names the config and fleet that answered, so the two fleets' answers can be told
apart. Then a CANARY from B to C without DataCaptureConfig: B's fleet keeps capturing while it
serves, C's fleet captures nothing."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from greenshift.capture.reading import read_records, read_stats
from tests.e2e.conftest import create_model
from tests.e2e.stack import Stack, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def capture_config(
    sm: Any, name: str, model: str, dest: Path | None, variant: str = "AllTraffic"
) -> None:
    extra: dict[str, Any] = {}
    if dest is not None:
        extra["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"file://{dest}",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        }
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
                "InitialVariantWeight": 1.0,
            }
        ],
        **extra,
    )


CANARY = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            "WaitIntervalInSeconds": 3,
        },
        "TerminationWaitInSeconds": 1,
    }
}


def update_under_requests(stack: Stack, config: str, phase: int) -> Counter[tuple[str, int]]:
    """UpdateEndpoint to `config` while invoking sequentially (bodies `{"i": i, "phase": p}`);
    (version answered, i) -> 1 for every answer, until the endpoint serves `config`. Bounded
    by 60 s."""
    sm = stack.client("sagemaker")
    runtime = stack.client("sagemaker-runtime")
    sm.update_endpoint(EndpointName="cap", EndpointConfigName=config, DeploymentConfig=CANARY)
    answers: Counter[tuple[str, int]] = Counter()
    deadline = time.monotonic() + 60
    i = 0
    while time.monotonic() < deadline:
        for _ in range(10):
            i += 1
            answer = runtime.invoke_endpoint(
                EndpointName="cap",
                Body=json.dumps({"i": i, "phase": phase}),
                ContentType="application/json",
            )
            answers[(json.loads(answer["Body"].read())["version"], i)] += 1
        d = sm.describe_endpoint(EndpointName="cap")
        if d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == config:
            return answers
    pytest.fail(f"the CANARY to {config} did not finish in 60 s")


def by_config(dest: Path, phase: int) -> dict[str, list[dict[str, Any]]]:
    """The records of one phase's requests, by the config that answered them."""
    found: dict[str, list[dict[str, Any]]] = {}
    for rec in read_records(dest, "cap"):
        if json.loads(rec["captureData"]["endpointInput"]["data"]).get("phase") == phase:
            found.setdefault(rec["eventMetadata"]["endpointConfigName"], []).append(rec)
    return found


def wait_for_records(dest: Path, phase: int, n: int) -> None:
    deadline = time.monotonic() + 10
    while sum(len(v) for v in by_config(dest, phase).values()) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {n} capture records after 10 s")
        time.sleep(0.2)


def test_a_canary_between_capturing_configs_tells_the_fleets_apart_and_c_captures_nothing(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "capture"
    with running_stack(tmp_path / "home") as stack:
        sm = stack.client("sagemaker")
        create_model(sm, "echo-v1", "echo-v1")
        create_model(sm, "echo-v2", "echo-v2")
        capture_config(sm, "cap-a", "echo-v1", dest)
        capture_config(sm, "cap-b", "echo-v2", dest)
        capture_config(sm, "cap-c", "echo-v1", None)
        sm.create_endpoint(EndpointName="cap", EndpointConfigName="cap-a")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="cap", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

        # A -> B, both capturing: one record per answer, each naming the fleet that answered.
        first = update_under_requests(stack, "cap-b", phase=1)
        versions = Counter(v for v, _ in first)
        assert versions["v1"] > 0 and versions["v2"] > 0, versions
        wait_for_records(dest, 1, sum(first.values()))
        found = by_config(dest, 1)
        assert {k: len(v) for k, v in found.items()} == {
            "cap-a": versions["v1"],
            "cap-b": versions["v2"],
        }
        for config, version in (("cap-a", "v1"), ("cap-b", "v2")):
            fleets = {r["eventMetadata"]["fleetId"] for r in found[config]}
            assert len(fleets) == 1, fleets
            for rec in found[config]:
                answer = json.loads(rec["captureData"]["endpointOutput"]["data"])
                given = json.loads(rec["captureData"]["endpointInput"]["data"])
                assert (answer["version"], answer["input"]) == (version, given)
        assert {r["eventMetadata"]["fleetId"] for r in found["cap-a"]} != {
            r["eventMetadata"]["fleetId"] for r in found["cap-b"]
        }

        # B -> C, C without DataCaptureConfig: B's fleet captures while it serves, C's never.
        second = update_under_requests(stack, "cap-c", phase=2)
        versions = Counter(v for v, _ in second)
        assert versions["v1"] > 0 and versions["v2"] > 0, versions  # C (echo-v1) and B
        time.sleep(2.0)  # capture.lua sends at once, the writer flushes every second
        found = by_config(dest, 2)
        assert set(found) <= {"cap-b"}
        assert len(found.get("cap-b", [])) == versions["v2"]
        stats = read_stats(stack.settings.home_dir)
        assert stats is not None and stats["lost"] == 0, stats
