"""The Docker runtime's pure rules: what a container sees, its name, labels and exit line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from greenshift.fleet.containers import (
    CONTAINER_PORT,
    MODEL_MOUNT,
    container_environment,
    container_name,
    container_port,
    exit_line,
    labels_of,
)
from greenshift.fleet.runtime import InstanceSpec
from greenshift.registry.records import FleetRecord


def _spec(own_env: dict[str, str], agent_env: dict[str, str]) -> InstanceSpec:
    fleet = FleetRecord(
        fleet_id="ep.AllTraffic.00000001",
        endpoint="ep",
        deployment_id="d",
        variant="AllTraffic",
        config_name="c",
        model_name="m",
        instance_type="ml.g5.2xlarge",
        model_spec={"PrimaryContainer": {"Image": "team/model:1", "Environment": own_env}},
        created_at=datetime.now(UTC),
    )
    return InstanceSpec(
        instance_id="ep.AllTraffic.00000001.0",
        fleet=fleet,
        model_dir=Path("/home/x/models/abc"),
        host="127.0.0.1",
        port=21001,
        environment=agent_env,
        log_path=Path("/home/x/instances/i/server.log"),
        gpus=("2",),
    )


def test_the_container_sees_its_own_paths_and_port() -> None:
    spec = _spec(
        {"A": "1"},
        {
            "A": "1",
            "SAGEMAKER_BIND_TO_PORT": "21001",
            "SM_MODEL_DIR": "/home/x/models/abc",
            "CUDA_VISIBLE_DEVICES": "2",
        },
    )
    assert container_port(spec) == CONTAINER_PORT == 8080
    env = container_environment(spec, container_port(spec))
    assert env["A"] == "1"
    assert env["SAGEMAKER_BIND_TO_PORT"] == "8080"  # the host port is the agent's business
    assert env["SM_MODEL_DIR"] == MODEL_MOUNT == "/opt/ml/model"
    # Host GPU indices mean nothing inside: the device request renumbers them from 0.
    assert "CUDA_VISIBLE_DEVICES" not in env


def test_the_models_own_bind_port_and_cuda_setting_are_kept() -> None:
    spec = _spec(
        {"SAGEMAKER_BIND_TO_PORT": "9000", "CUDA_VISIBLE_DEVICES": "0"},
        {"SAGEMAKER_BIND_TO_PORT": "21001", "CUDA_VISIBLE_DEVICES": "0"},
    )
    assert container_port(spec) == 9000
    env = container_environment(spec, 9000)
    assert env["SAGEMAKER_BIND_TO_PORT"] == "9000" and env["CUDA_VISIBLE_DEVICES"] == "0"
    assert container_port(_spec({"SAGEMAKER_BIND_TO_PORT": "x"}, {})) == 8080


def test_names_and_labels_tell_homes_and_instances_apart() -> None:
    spec = _spec({}, {})
    a, b = container_name(Path("/h/a"), spec.instance_id), container_name(Path("/h/b"), "i")
    assert a != container_name(Path("/h/b"), spec.instance_id)
    assert a == container_name(Path("/h/a"), spec.instance_id)  # derived: a relaunch replaces it
    assert a.endswith(spec.instance_id) and b.startswith("greenshift-")
    assert labels_of(spec, Path("/h/a")) == {
        "greenshift.instance": spec.instance_id,
        "greenshift.fleet": "ep.AllTraffic.00000001",
        "greenshift.endpoint": "ep",
        "greenshift.home": "/h/a",
    }


def test_the_exit_line_says_why() -> None:
    assert exit_line("team/model:1", {"ExitCode": 137, "OOMKilled": True}) == (
        "[greenshift] container of image team/model:1 exited with code 137 (killed: out of memory)"
    )
    assert exit_line("i", {"ExitCode": 1, "Error": "oci runtime error"}).endswith(
        "code 1: oci runtime error"
    )
