"""Bring your own container, end to end: `greenshift up` on 127.0.0.1 with a real Docker Engine,
the example image built offline, driven only through boto3 (and `docker kill` for the fault).
Every container the stack made is gone once it stops; the fixture removes and reports leftovers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from greenshift.fleet.containers import LABEL_INSTANCE, container_name
from greenshift.loadgen import SteadyLoad
from greenshift.registry.sql import SqlRegistry
from tests.docker_support import (
    EXITING_IMAGE,
    FAILING_IMAGE,
    FRAMEWORK_IMAGE,
    IMAGE,
    MISSING_IMAGE,
    build_images,
    framework_image,  # noqa: F401  (the fixture)
    our_containers,
    remove_containers,
    require_engine,
)
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack, processes_mentioning, running_stack
from tests.harness.chaos import killers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = Path(__file__).resolve().parents[2] / "examples" / "container" / "model"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_engine()
    build_images(tmp_path_factory.mktemp("images"))
    home = tmp_path_factory.mktemp("greenshift-byoc").resolve()
    try:
        with running_stack(home) as running:
            yield running
            assert our_containers(home), "the stack should stop with containers still running"
        # `greenshift up` stopped: no container with our labels, no process, remains.
        assert our_containers(home) == []
        assert processes_mentioning(str(home)) == []
    finally:
        assert remove_containers(home) == []


def byoc_model(sm: Any, name: str, image: str = IMAGE, **environment: str) -> None:
    sm.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": image,
            "ModelDataUrl": f"file://{MODEL}",
            "Environment": {"ECHO_ENV": "GREETING,SM_MODEL_DIR", **environment},
        },
    )


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"not within {timeout} s: {what}")


def in_service(sm: Any, endpoint: str) -> None:
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


def settled(sm: Any, endpoint: str, limit: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        d: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
        return d if d["EndpointStatus"] not in ("Updating", "RollingBack", "Creating") else None

    result: dict[str, Any] = wait_for(done, limit, f"{endpoint} settles")
    return result


def invoke(stack: Stack, endpoint: str, **extra: Any) -> dict[str, Any]:
    answer = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps({"x": 1}), ContentType="application/json", **extra
    )
    body: dict[str, Any] = json.loads(answer["Body"].read())
    return body


def containers_of(stack: Stack, endpoint: str) -> dict[str, str]:
    """Containers of the endpoint, running or not: instance id -> container id."""
    client = docker.from_env()
    try:
        return {
            c.labels[LABEL_INSTANCE]: c.id
            for c in client.containers.list(
                all=True,
                ignore_removed=True,
                filters={
                    "label": [
                        f"greenshift.endpoint={endpoint}",
                        f"greenshift.home={stack.settings.home_dir}",
                    ]
                },
            )
        }
    finally:
        client.close()


def test_a_container_image_serves_an_endpoint(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    byoc_model(sm, "byoc", GREETING="hello")
    create_config(sm, "byoc-1", "byoc", count=1)
    sm.create_endpoint(EndpointName="byoc", EndpointConfigName="byoc-1")
    in_service(sm, "byoc")

    answer = invoke(stack, "byoc", CustomAttributes="trace=7")
    assert answer["server"] == "example-container"
    assert answer["model"] == json.loads((MODEL / "model.json").read_text())  # /opt/ml/model
    assert answer["model_dir_writable"] is False  # mounted read-only
    assert answer["env"] == {"GREETING": "hello", "SM_MODEL_DIR": "/opt/ml/model"}
    assert answer["custom_attributes"] == "trace=7"  # forwarded unchanged
    assert len(containers_of(stack, "byoc")) == 1

    sm.delete_endpoint(EndpointName="byoc")
    wait_for(lambda: not containers_of(stack, "byoc"), 30, "DeleteEndpoint removes the container")
    assert [n for n in our_containers(stack.settings.home_dir) if "-byoc." in n] == []


@pytest.mark.usefixtures("framework_image")
def test_a_framework_image_the_engine_holds_runs_as_it_and_streams(stack: Stack) -> None:
    """A SageMaker framework image URI that the Docker Engine holds runs as that container, not
    on the built-in runtime (greenshift.fleet.images), and its plain streamed answer reaches
    boto3 as event-stream parts (the data plane's stream relay frames it)."""
    sm = stack.client("sagemaker")
    byoc_model(sm, "fw", image=FRAMEWORK_IMAGE)
    create_config(sm, "fw-1", "fw", count=1)
    sm.create_endpoint(EndpointName="fw", EndpointConfigName="fw-1")
    in_service(sm, "fw")
    assert len(containers_of(stack, "fw")) == 1  # the engine's image, run as a container

    answer = stack.client("sagemaker-runtime").invoke_endpoint_with_response_stream(
        EndpointName="fw", ContentType="application/json", Body=b'{"parts": 4, "delay": 0.05}'
    )
    parts = [event["PayloadPart"]["Bytes"] for event in answer["Body"]]
    assert parts == [b"0 ", b"1 ", b"2 ", b"3 "]
    assert answer["ContentType"] == "text/plain"

    sm.delete_endpoint(EndpointName="fw")
    wait_for(lambda: not containers_of(stack, "fw"), 30, "DeleteEndpoint removes the container")


def test_killed_container_is_replaced_and_a_restarted_worker_adopts(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    byoc_model(sm, "byoc-k")
    create_config(sm, "byoc-k-1", "byoc-k", count=2)
    sm.create_endpoint(EndpointName="byoc-k", EndpointConfigName="byoc-k-1")
    in_service(sm, "byoc-k")
    registry = SqlRegistry(stack.settings.registry_url)
    try:
        before = containers_of(stack, "byoc-k")
        assert len(before) == 2
        victim = sorted(before)[0]
        client = docker.from_env()
        try:
            client.containers.get(before[victim]).kill()  # `docker kill`
        finally:
            client.close()
        # Out of rotation at once, then replaced by a new container under the same id.
        wait_for(
            lambda: (r := registry.get_instance(victim)) is not None and r.state != "InService",
            5,
            "the killed container's instance out of rotation",
        )
        wait_for(
            lambda: (
                (r := registry.get_instance(victim)) is not None
                and r.state == "InService"
                and r.restarts >= 1
            ),
            30,
            "the killed container replaced",
        )
        replaced = containers_of(stack, "byoc-k")
        assert set(replaced) == set(before) and replaced[victim] != before[victim]
        assert invoke(stack, "byoc-k")["server"] == "example-container"

        # The worker (and its agent) SIGKILLed: the supervisor restarts it; it adopts both.
        old_worker = killers.supervised_pid(stack.settings, "worker")
        assert old_worker is not None and killers.kill([old_worker]) == [old_worker]
        wait_for(
            lambda: (p := killers.supervised_pid(stack.settings, "worker")) and p != old_worker,
            60,
            "the worker restarted",
        )
        pids = {r.instance_id: r.pid for r in registry.list_instances(endpoint="byoc-k")}
        time.sleep(3.0)  # a few supervision rounds of the new agent
        assert containers_of(stack, "byoc-k") == replaced  # adopted: none new, none duplicated
        assert {r.instance_id: r.pid for r in registry.list_instances(endpoint="byoc-k")} == pids
        names = our_containers(stack.settings.home_dir)
        assert sorted(n for n in names if "-byoc-k." in n) == sorted(
            container_name(stack.settings.home_dir, iid) for iid in before
        )
        assert invoke(stack, "byoc-k")["server"] == "example-container"
        # Left running: the module's fixture checks that stopping `greenshift up` removes it.
    finally:
        registry.close()


def test_canary_to_a_container_and_linear_back_lose_no_request(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    create_model(sm, "bi-echo", "echo-v1")
    byoc_model(sm, "byoc-c")
    create_config(sm, "swap-builtin", "bi-echo", count=2)
    create_config(sm, "swap-container", "byoc-c", count=2)
    sm.create_endpoint(EndpointName="swap", EndpointConfigName="swap-builtin")
    in_service(sm, "swap")

    def update(config: str, routing: dict[str, Any]) -> dict[str, Any]:
        sm.update_endpoint(
            EndpointName="swap",
            EndpointConfigName=config,
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {**routing, "WaitIntervalInSeconds": 3},
                    "TerminationWaitInSeconds": 1,
                }
            },
        )
        return settled(sm, "swap")

    load = SteadyLoad(stack.settings.runtime_url, "swap", rate=30, duration=200).start()
    try:
        to_container = update(
            "swap-container",
            {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
        )
        assert (to_container["EndpointStatus"], to_container["EndpointConfigName"]) == (
            "InService",
            "swap-container",
        ), to_container
        time.sleep(1.0)
        back = update(
            "swap-builtin",
            {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
        )
        assert (back["EndpointStatus"], back["EndpointConfigName"]) == (
            "InService",
            "swap-builtin",
        ), back
        time.sleep(1.0)
    finally:
        report = load.stop()
    assert report.failed == [], report.failed[:5]
    versions = report.by_version()
    assert versions["container"] > 20 and versions["v1"] > 20, versions
    assert not containers_of(stack, "swap")  # the container fleet retired: its containers gone


def test_an_alarm_guarded_update_to_a_failing_container_rolls_back(stack: Stack) -> None:
    from tests.e2e.test_alarm_rollback import alarm_on_fleet, canary

    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    create_model(sm, "guard-echo", "echo-v1")
    byoc_model(sm, "guard-500", image=FAILING_IMAGE)
    create_config(sm, "guard-1", "guard-echo", count=2)
    create_config(sm, "guard-bad", "guard-500", count=2)
    sm.create_endpoint(EndpointName="guard", EndpointConfigName="guard-1")
    in_service(sm, "guard")
    alarm_on_fleet(cw, "guard-bad-5xx", "guard", "guard-bad")
    load = SteadyLoad(stack.settings.runtime_url, "guard", rate=20, duration=120).start()
    try:
        sm.update_endpoint(
            EndpointName="guard",
            EndpointConfigName="guard-bad",
            DeploymentConfig=canary("guard-bad-5xx", wait=60),
        )
        result = settled(sm, "guard")
    finally:
        report = load.stop()
    assert result["EndpointStatus"] == "InService"
    assert result["EndpointConfigName"] == "guard-1"
    assert "guard-bad-5xx" in result.get("FailureReason", ""), result
    assert report.failed, "the failing container was never reached"
    assert {a.error_type for a in report.failed} == {"ModelError"}, report.failed[:5]
    assert not containers_of(stack, "guard")


@pytest.mark.parametrize(
    ("image", "cause"),
    [
        (MISSING_IMAGE, "could not be pulled"),
        (EXITING_IMAGE, "exited at start"),
    ],
)
def test_a_broken_image_fails_clearly_and_leaves_the_endpoint_as_it_was(
    stack: Stack, image: str, cause: str
) -> None:
    sm = stack.client("sagemaker")
    tag = image.rsplit(":", 1)[-1]
    endpoint = f"broken-{tag}"
    create_model(sm, f"{endpoint}-echo", "echo-v1")
    byoc_model(sm, f"{endpoint}-img", image=image)
    create_config(sm, f"{endpoint}-1", f"{endpoint}-echo", count=1)
    create_config(sm, f"{endpoint}-2", f"{endpoint}-img", count=1)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-1")
    in_service(sm, endpoint)
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-2")
    result = settled(sm, endpoint)
    assert result["EndpointStatus"] == "InService"
    assert result["EndpointConfigName"] == f"{endpoint}-1"  # unharmed, on its old config
    reason = result.get("FailureReason", "")
    assert image in reason and cause in reason, reason
    assert invoke(stack, endpoint)["version"] == "v1"
    assert not containers_of(stack, endpoint)
