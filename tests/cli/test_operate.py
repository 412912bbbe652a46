"""The operator's commands against a live deployment, run as subprocesses: `update-endpoint
--watch` and `watch` exit codes, `pause` / `resume` / `promote` / `abort` steering a CANARY with a
long bake, `history` (text and `--plot`), live `plan`, and bad input exiting 2 with a message."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from greenshift.client import GreenshiftClient
from greenshift.loadgen import SteadyLoad
from tests.cli.cli import finish, run, start, wait_for
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LONG_BAKE = 600  # far longer than any test may take: a deployment that ends was steered


def canary(wait: int, termination_wait: int = 0) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": wait,
            },
            "TerminationWaitInSeconds": termination_wait,
        }
    }


_names = itertools.count(1)


@pytest.fixture(scope="module")
def live(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models, configs v1 and v2, and DeploymentConfig files: a short and a long canary."""
    sm = stack.client("sagemaker")
    create_model(sm, "echo-v1", "echo-v1")
    create_model(sm, "echo-v2", "echo-v2")
    create_config(sm, "op-v1", "echo-v1", count=2)
    create_config(sm, "op-v2", "echo-v2", count=2)
    create_model(sm, "faulty", "faulty")
    create_config(sm, "op-faulty", "faulty", count=2)
    files = tmp_path_factory.mktemp("deployment-configs")
    paths = {"short": files / "short.json", "long": files / "long.json"}
    paths["short"].write_text(json.dumps(canary(1)))
    paths["long"].write_text(json.dumps(canary(LONG_BAKE)))
    return paths


def new_endpoint(stack: Stack) -> str:
    """A fresh endpoint on op-v1 (each test steers its own)."""
    name = f"op{next(_names)}"
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName=name, EndpointConfigName="op-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    return name


def progress(stack: Stack, endpoint: str) -> dict[str, Any]:
    client = GreenshiftClient(stack.settings)
    try:
        answer = client.call("DescribeDeployment", {"EndpointName": endpoint})
    finally:
        client.close()
    found: dict[str, Any] = answer["Deployment"].get("Progress") or {}
    return found


def baking(stack: Stack, endpoint: str, step_after: int = -1) -> dict[str, Any] | None:
    now = progress(stack, endpoint)
    if now.get("BakeEndsAt") and (now.get("StepIndex") or 0) > step_after:
        return now
    return None


def test_update_endpoint_watch_exits_0_when_the_deployment_succeeds(
    stack: Stack, live: dict[str, Path]
) -> None:
    endpoint = new_endpoint(stack)
    args = ["--endpoint-config", "op-v2", "--deployment-config", str(live["short"])]
    result = run(stack, "update-endpoint", endpoint, *args, "--watch", timeout=180)
    assert result.code == 0, result.out + result.err
    assert f"Deployment succeeded: {endpoint} is on op-v2." in result.out
    # `watch` on the settled endpoint reports the same outcome at once.
    again = run(stack, "watch", endpoint, timeout=30)
    assert again.code == 0 and "Deployment succeeded" in again.out


def test_update_endpoint_watch_exits_1_when_an_alarm_rolls_it_back(
    stack: Stack, live: dict[str, Path], tmp_path: Path
) -> None:
    endpoint = new_endpoint(stack)
    alarm = f"{endpoint}-5xx"
    stack.client("cloudwatch").put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointConfigName", "Value": "op-faulty"},
        ],
        Statistic="Sum",
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Period=10,
        EvaluationPeriods=1,
    )
    guarded = {**canary(LONG_BAKE), "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]}}
    args = ["--endpoint-config", "op-faulty", "--deployment-config", json.dumps(guarded)]
    load = SteadyLoad(stack.settings.runtime_url, endpoint, rate=10, duration=150).start()
    try:
        result = run(stack, "update-endpoint", endpoint, *args, "--watch", timeout=150)
    finally:
        load.stop()
    assert result.code == 1, result.out + result.err
    assert f"{endpoint} is InService on op-v1" in result.out and alarm in result.out


def test_pause_resume_promote_steer_a_live_canary(stack: Stack, live: dict[str, Path]) -> None:
    endpoint = new_endpoint(stack)
    started = time.monotonic()
    update = run(
        stack,
        "update-endpoint",
        endpoint,
        "--endpoint-config",
        "op-v2",
        "--deployment-config",
        str(live["long"]),
    )
    assert update.code == 0, update.err
    watcher = start(stack, "watch", endpoint, "--timeout", "240")
    try:
        first = wait_for("the canary bake", lambda: baking(stack, endpoint), timeout=90)
        assert run(stack, "resume", endpoint).code == 2  # not paused (yet)

        paused = run(stack, "pause", endpoint, "--reason", "looking at the canary")
        assert paused.code == 0, paused.err
        again = run(stack, "pause", endpoint)
        assert again.code == 2 and "already paused" in again.err
        # The pause holds at the next boundary: promote ends the bake, and there it stops.
        assert run(stack, "promote", endpoint).code == 0
        held = wait_for(
            "Progress.Paused", lambda: progress(stack, endpoint).get("Paused"), timeout=60
        )
        assert held is True
        time.sleep(3)
        still = progress(stack, endpoint)
        assert still["Paused"] is True and still["Phase"] == "Paused"
        assert still["StepIndex"] == first["StepIndex"]
        assert (
            stack.client("sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
            == "Updating"
        )

        assert run(stack, "resume", endpoint).code == 0
        wait_for(
            "the bake after the rest shifts",
            lambda: baking(stack, endpoint, step_after=first["StepIndex"]),
            timeout=90,
        )
        assert run(stack, "promote", endpoint).code == 0
        watched = finish(watcher, timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate(timeout=10)
    assert watched.code == 0, watched.out + watched.err
    assert "Deployment succeeded" in watched.out
    assert time.monotonic() - started < LONG_BAKE / 2  # both bakes were cut short
    described = stack.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "op-v2")

    nothing = run(stack, "resume", endpoint)
    assert nothing.code == 2 and "No deployment is in progress" in nothing.err


def test_abort_rolls_back_and_watch_exits_1(stack: Stack, live: dict[str, Path]) -> None:
    endpoint = new_endpoint(stack)
    args = ["--endpoint-config", "op-v2", "--deployment-config", str(live["long"])]
    assert run(stack, "update-endpoint", endpoint, *args).code == 0
    watcher = start(stack, "watch", endpoint, "--timeout", "240")
    try:
        wait_for("the canary bake", lambda: baking(stack, endpoint), timeout=90)
        aborted = run(stack, "abort", endpoint, "--reason", "the canary looks wrong")
        assert aborted.code == 0, aborted.err
        watched = finish(watcher, timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate(timeout=10)
    assert watched.code == 1, watched.out + watched.err
    actor = aborted.out.rsplit("(by ", 1)[1].split(")")[0]
    described = stack.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "op-v1")
    assert f"aborted by {actor}: the canary looks wrong" in described["FailureReason"]

    nothing = run(stack, "abort", endpoint)
    assert nothing.code == 2
    assert f'No deployment is in progress on endpoint "{described["EndpointArn"]}".' in nothing.err

    # History: both deployments of this endpoint, with their steps and outcome.
    history = run(stack, "history", endpoint)
    assert history.code == 0, history.err
    assert "RolledBack" in history.out and "Succeeded" in history.out
    assert "StepStarted" in history.out and "Aborted" in history.out


def test_history_plot_writes_a_png(stack: Stack, live: dict[str, Path], tmp_path: Path) -> None:
    endpoint = new_endpoint(stack)
    args = ["--endpoint-config", "op-v2", "--deployment-config", str(live["short"])]
    assert run(stack, "update-endpoint", endpoint, *args, "--watch", timeout=180).code == 0
    picture = tmp_path / "out.png"
    result = run(stack, "history", endpoint, "--plot", str(picture))
    assert result.code == 0, result.err
    assert f"Timeline written to {picture}" in result.out
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plan_live_prints_the_table(stack: Stack, live: dict[str, Path]) -> None:
    endpoint = new_endpoint(stack)
    args = ["--endpoint-config", "op-v2", "--deployment-config", str(live["long"])]
    result = run(stack, "plan", endpoint, *args)
    assert result.code == 0, result.err
    assert result.out.startswith("Plan: CANARY (AllTraffic); alarms: none")
    assert "green/AllTraffic 50%" in result.out and "bake 600s" in result.out
    assert "peak instances:   4" in result.out
    as_json = json.loads(run(stack, "plan", endpoint, *args, "--json").out)
    assert as_json["CanStartNow"] is True and as_json["PeakInstances"] == 4


def test_bad_input_exits_2_with_a_clear_message(
    stack: Stack, live: dict[str, Path], tmp_path: Path
) -> None:
    unknown = [
        ["watch", "nosuch"],
        ["plan", "nosuch", "--endpoint-config", "op-v2"],
        ["update-endpoint", "nosuch", "--endpoint-config", "op-v2"],
        ["pause", "nosuch"],
        ["history", "nosuch"],
    ]
    missing = tmp_path / "missing.json"
    unreadable = [  # absent, and a directory: neither can be read
        [command, "nosuch", "--endpoint-config", "op-v2", "--deployment-config", str(path)]
        for command in ("update-endpoint", "plan")
        for path in (missing, tmp_path)
    ]
    # Started together: each is a Python start-up, and they are independent.
    running = [(args, start(stack, *args)) for args in unknown + unreadable]
    results = [(args, finish(process, timeout=60)) for args, process in running]
    for args, result in results:
        assert result.code == 2, (args, result)
        assert "Traceback" not in result.err, (args, result)
        if args in unknown:
            assert "Could not find endpoint" in result.err, (args, result)
        else:
            assert args[-1] in result.err, (args, result)
