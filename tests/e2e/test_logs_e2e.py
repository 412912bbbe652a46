"""A real instance's output, read back as CloudWatch Logs: `greenshift up`, a model the test
writes (it prints when it loads and on every request), boto3's `logs` client, unchanged."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INFERENCE = """
import json
import sys


def model_fn(model_dir):
    print("logs-e2e: model loaded", flush=True)
    return "loaded"


def transform_fn(model, body, content_type, accept):
    data = json.loads(body)
    print(f"logs-e2e: request {data['n']}", file=sys.stderr, flush=True)
    return json.dumps({"n": data["n"]}), "application/json"
"""


def messages(logs: Any, group: str, pattern: str) -> list[dict[str, Any]]:
    try:
        return logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]
    except ClientError:
        return []


def wait_for(logs: Any, group: str, pattern: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not (found := messages(logs, group, pattern)):
        assert time.monotonic() < deadline, f"no event matching {pattern!r} in {timeout} s"
        time.sleep(0.3)
    return found


def test_an_instances_stdout_and_stderr_are_its_log_stream(stack: Stack, tmp_path: Path) -> None:
    model = tmp_path / "printing-model"
    (model / "code").mkdir(parents=True)
    (model / "code" / "inference.py").write_text(INFERENCE)
    sm, runtime, logs = (stack.client(s) for s in ("sagemaker", "sagemaker-runtime", "logs"))
    sm.create_model(
        ModelName="printer",
        PrimaryContainer={"Image": "greenshift/model-server", "ModelDataUrl": f"file://{model}"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="printer-c1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "printer",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="printer", EndpointConfigName="printer-c1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="printer", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    group = "/aws/sagemaker/Endpoints/printer"
    loaded = wait_for(logs, group, '"logs-e2e: model loaded"')
    assert len(loaded) == 1
    stream = loaded[0]["logStreamName"]
    assert re.fullmatch(r"AllTraffic/printer\.AllTraffic\.[0-9a-f]{8}\.0", stream), stream

    for n in range(3):
        answer = runtime.invoke_endpoint(
            EndpointName="printer", Body=json.dumps({"n": n}), ContentType="application/json"
        )
        assert json.loads(answer["Body"].read()) == {"n": n}
    wait_for(logs, group, '"logs-e2e: request 2"')
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    ours = [e["message"] for e in events["events"] if e["message"].startswith("logs-e2e:")]
    assert ours == [
        "logs-e2e: model loaded",
        "logs-e2e: request 0",
        "logs-e2e: request 1",
        "logs-e2e: request 2",
    ]
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]
