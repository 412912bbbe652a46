"""Real clients' standard paths against a live stack, unchanged (issue 12): the SageMaker Python
SDK 2.x and its sagemaker-core layer with default arguments, the temporal CLI with a typo, and
DeleteEndpointConfig of a live config followed by an update, a rollback and a delete.

The SDK is configured only the documented way (README, "From the SageMaker Python SDK"): the
standard `AWS_ENDPOINT_URL_*` variables, a role ARN, and an SDK defaults file that opts out of
telemetry and names a default bucket. An audit hook records every socket connection and name
lookup the test process makes while the SDK runs: all of them must be 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from greenshift.binaries import temporal_cli
from tests.e2e.conftest import EXAMPLES, create_config, create_model
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

ROLE = "arn:aws:iam::000000000000:role/greenshift"
IMAGE = "greenshift/model-server"
SDK_DEFAULTS = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
      Session:
        DefaultS3Bucket: greenshift-local
"""
# Every address the test process reached while recording (socket.connect, socket.getaddrinfo).
_reached: list[tuple[str, Any]] = []
_recording = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _recording[0]:
        return
    if event == "socket.connect" and isinstance(args[1], tuple):
        _reached.append(("connect", args[1][0]))
    elif event == "socket.getaddrinfo":
        _reached.append(("lookup", args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def sdk_env(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The README's SDK setup, for this module; records where the process connects meanwhile."""
    defaults = tmp_path_factory.mktemp("sdk") / "sagemaker-defaults.yaml"
    defaults.write_text(SDK_DEFAULTS)
    s = stack.settings
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ENDPOINT_URL_SAGEMAKER": s.api_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": s.runtime_url,
            # Not called on these paths; pointed here so that a call could never leave the host.
            "AWS_ENDPOINT_URL_STS": s.api_url,
            "AWS_ENDPOINT_URL_S3": s.api_url,
            "AWS_DEFAULT_REGION": s.region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(defaults),
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(defaults),
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        }.items():
            mp.setenv(name, value)
        _reached.clear()
        _recording[0] = True
        try:
            yield stack
        finally:
            _recording[0] = False
    away = [(kind, where) for kind, where in _reached if where not in ("127.0.0.1", "localhost")]
    assert _reached and away == []


def _version(answer: Any) -> str:
    assert isinstance(answer, dict), answer
    version: str = answer["version"]
    return version


def test_sdk_standard_paths_with_default_arguments(sdk_env: Stack) -> None:
    import sagemaker
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer
    from sagemaker_core.resources import Endpoint

    session = sagemaker.Session()  # from the standard AWS_ENDPOINT_URL_* variables alone
    assert session.sagemaker_client.meta.endpoint_url == sdk_env.settings.api_url
    assert session.sagemaker_runtime_client.meta.endpoint_url == sdk_env.settings.runtime_url
    sm = sdk_env.client("sagemaker")
    name = "sdk-demo"

    def model(example: str) -> Model:
        return Model(
            image_uri=IMAGE,
            model_data=f"file://{EXAMPLES / example}",
            role=ROLE,
            predictor_cls=Predictor,
            sagemaker_session=session,
        )

    predictor = model("echo-v1").deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        endpoint_name=name,
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )
    assert isinstance(predictor, Predictor)
    assert predictor.predict({"x": 1}) == {"version": "v1", "input": {"x": 1}}

    # deploy(update_endpoint=True): a new config for the same endpoint, UpdateEndpoint, wait.
    model("echo-v2").deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        endpoint_name=name,
        update_endpoint=True,
    )
    assert _version(predictor.predict({"x": 2})) == "v2"

    # Session.update_endpoint(wait=True) to a config made by the SDK's own helper.
    deployed = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    config = sm.describe_endpoint_config(EndpointConfigName=deployed)
    session.create_endpoint_config(
        name="sdk-demo-c3",
        model_name=config["ProductionVariants"][0]["ModelName"],
        initial_instance_count=1,
        instance_type="ml.m5.large",
    )
    session.update_endpoint(name, "sdk-demo-c3", wait=True)
    assert sm.describe_endpoint(EndpointName=name)["EndpointConfigName"] == "sdk-demo-c3"

    # Predictor.update_endpoint: ListTags of the current config, a copy with the new count.
    predictor.update_endpoint(initial_instance_count=2, instance_type="ml.m5.large")
    described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    predictor_config = described["EndpointConfigName"]  # what the Predictor now knows
    assert predictor_config.startswith("sdk-demo-c3")

    # sagemaker-core's resource layer on the same endpoint.
    endpoint = Endpoint.get(endpoint_name=name)
    assert endpoint.endpoint_status == "InService"
    assert endpoint.endpoint_config_name == predictor_config
    answer = endpoint.invoke(body=json.dumps({"x": 3}), content_type="application/json")
    assert _version(json.loads(answer.body.read())) == "v2"
    endpoint.refresh()
    assert endpoint.production_variants is not None
    assert endpoint.production_variants[0].current_instance_count == 2

    # Predictor.delete_endpoint() with its defaults: the config it last deployed first (a config
    # in use: accepted, as on AWS), then the endpoint.
    predictor.delete_endpoint()
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 90}
    )
    with pytest.raises(ClientError) as gone:
        sm.describe_endpoint_config(EndpointConfigName=predictor_config)
    assert "Could not find endpoint configuration" in str(gone.value)


def test_sdk_predict_stream_and_an_instance_killed_mid_stream(sdk_env: Stack) -> None:
    """Predictor.predict_stream (InvokeEndpointWithResponseStream) of the streamer model through
    the whole stack: parts as they are made; with the instance killed mid-stream, the parts sent
    and then the ModelStreamError event SageMaker ends a broken stream with."""
    import os
    import signal

    import sagemaker
    from botocore.exceptions import EventStreamError
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    from greenshift.registry.sql import SqlRegistry

    name = "sdk-stream"
    predictor = Model(
        image_uri=IMAGE,
        model_data=f"file://{EXAMPLES / 'streamer'}",
        role=ROLE,
        predictor_cls=Predictor,
        sagemaker_session=sagemaker.Session(),
    ).deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        endpoint_name=name,
        serializer=JSONSerializer(),
    )
    assert isinstance(predictor, Predictor)
    started = time.monotonic()
    parts = [(time.monotonic() - started, p) for p in predictor.predict_stream({"parts": 10})]
    assert b"".join(p for _, p in parts) == "".join(f"v1:{i} " for i in range(10)).encode()
    assert len(parts) == 10 and parts[-1][0] - parts[0][0] >= 0.4  # 9 delays of 50 ms

    stream = predictor.predict_stream({"parts": 100, "delay": 0.1})
    received = [next(stream) for _ in range(3)]
    registry = SqlRegistry(sdk_env.settings.registry_url)
    try:
        (instance,) = registry.list_instances(endpoint=name)
    finally:
        registry.close()
    assert instance.pid is not None
    os.kill(instance.pid, signal.SIGKILL)
    with pytest.raises(EventStreamError) as info:
        received.extend(stream)
    assert 3 <= len(received) < 100
    assert b"".join(received) == "".join(f"v1:{i} " for i in range(len(received))).encode()
    assert info.value.response["Error"]["Code"] == "ModelStreamError"
    assert "broke before it ended" in info.value.response["Error"]["Message"]
    predictor.delete_endpoint()


def _in_service(sm: Any, name: str) -> dict[str, Any]:
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
    return described


def _invoke(stack: Stack, name: str) -> str:
    answer = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, Body=b'{"x": 1}', ContentType="application/json"
    )
    return _version(json.loads(answer["Body"].read()))


def test_deleting_the_live_config_loses_nothing(stack: Stack) -> None:
    """DeleteEndpointConfig of the config an endpoint serves, then an update, a rollback to the
    deleted config's fleet, and a delete: all succeed, nothing is left behind."""
    sm = stack.client("sagemaker")
    create_model(sm, "dl-v1", "echo-v1")
    create_model(sm, "dl-v2", "echo-v2")
    create_config(sm, "dl-c1", "dl-v1", count=1)
    sm.create_endpoint(EndpointName="dl", EndpointConfigName="dl-c1")
    _in_service(sm, "dl")
    sm.delete_endpoint_config(EndpointConfigName="dl-c1")
    assert _in_service(sm, "dl")["EndpointConfigName"] == "dl-c1"
    assert _invoke(stack, "dl") == "v1"

    # An update away from the deleted config, aborted during its bake: back on dl-c1's fleet.
    create_config(sm, "dl-c2", "dl-v2", count=1)
    bake = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}
        }
    }
    sm.update_endpoint(EndpointName="dl", EndpointConfigName="dl-c2", DeploymentConfig=bake)
    deadline = time.monotonic() + 120
    while (
        sm.describe_endpoint(EndpointName="dl")
        .get("PendingDeploymentSummary", {})
        .get("ProductionVariants", [{}])[0]
        .get("VariantStatus", [{}])[0]
        .get("Status")
        != "Baking"
    ):
        assert time.monotonic() < deadline, "the deployment never reached its bake"
        time.sleep(0.5)
    aborted = httpx.post(
        stack.settings.api_url,
        headers={
            "X-Amz-Target": "Greenshift.AbortDeployment",
            "Content-Type": "application/x-amz-json-1.1",
        },
        content=json.dumps({"EndpointName": "dl", "Reason": "test rollback"}),
        timeout=30,
    )
    assert aborted.status_code == 200, aborted.text
    rolled_back = _in_service(sm, "dl")
    assert rolled_back["EndpointConfigName"] == "dl-c1"
    assert "test rollback" in rolled_back.get("FailureReason", "")
    assert _invoke(stack, "dl") == "v1"

    # The same update, now to completion, then a delete.
    sm.update_endpoint(EndpointName="dl", EndpointConfigName="dl-c2")
    assert _in_service(sm, "dl")["EndpointConfigName"] == "dl-c2"
    assert _invoke(stack, "dl") == "v2"
    sm.delete_endpoint(EndpointName="dl")
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName="dl", WaiterConfig={"Delay": 1, "MaxAttempts": 90}
    )


def _execute(stack: Stack, workflow: str, workflow_id: str, input_json: str) -> Any:
    return subprocess.run(
        [
            temporal_cli(),
            "workflow",
            "execute",
            "--address",
            stack.settings.temporal_target,
            "--task-queue",
            stack.settings.task_queue,
            "--type",
            workflow,
            "--workflow-id",
            workflow_id,
            "--input",
            input_json,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_typo_through_the_temporal_cli_fails_at_once_and_changes_nothing(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    create_model(sm, "ty-v1", "echo-v1")
    create_model(sm, "ty-v2", "echo-v2")
    create_config(sm, "ty-c1", "ty-v1", count=1)
    create_config(sm, "ty-c2", "ty-v2", count=1)
    sm.create_endpoint(EndpointName="ty", EndpointConfigName="ty-c1")
    before = _in_service(sm, "ty")
    request = {
        "EndpointName": "ty",
        "EndpointConfigName": "ty-c2",
        "DeploymentConifg": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
            }
        },
    }
    started = time.monotonic()
    result = _execute(stack, "UpdateEndpoint", "typo-ty", json.dumps(request))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert '"DeploymentConifg"' in output and "Unknown parameter" in output, output
    assert time.monotonic() - started < 30
    # A number out of range (valid JSON, +inf once decoded) is refused the same way.
    weights = (
        '{"EndpointName": "ty", "DesiredWeightsAndCapacities": '
        '[{"VariantName": "AllTraffic", "DesiredWeight": 1e999}]}'
    )
    result = _execute(stack, "UpdateEndpointWeightsAndCapacities", "inf-ty", weights)
    assert result.returncode != 0
    assert "Non-finite number" in result.stdout, result.stdout
    after = sm.describe_endpoint(EndpointName="ty")
    for key in ("EndpointStatus", "EndpointConfigName", "ProductionVariants"):
        assert after[key] == before[key]
    assert "PendingDeploymentSummary" not in after
    assert _invoke(stack, "ty") == "v1"
    sm.delete_endpoint(EndpointName="ty")
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName="ty", WaiterConfig={"Delay": 1, "MaxAttempts": 90}
    )
