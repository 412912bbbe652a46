"""The Docker runtime on a real engine, with the example image built offline: SageMaker's
container contract, labels and limits, exits and removal. Every container is removed at the end."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import httpx
import pytest

from greenshift.fleet.containers import (
    LABEL_ENDPOINT,
    LABEL_FLEET,
    LABEL_HOME,
    LABEL_INSTANCE,
    DockerRuntime,
    container_name,
)
from greenshift.fleet.processes import ping
from greenshift.fleet.runtime import InstanceSpec
from greenshift.ports import ProvisionFailed
from greenshift.registry.records import FleetRecord
from tests.docker_support import (
    EXITING_IMAGE,
    IMAGE,
    MISSING_IMAGE,
    docker_images,  # noqa: F401  (the session fixture)
    our_containers,
    remove_containers,
)
from tests.ports import free_port as _free_port

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("docker_images")]


def _fleet(image: str, env: dict[str, str] | None = None, instance_type: str = "ml.m5.large"):
    return FleetRecord(
        fleet_id="ep.AllTraffic.00000001",
        endpoint="ep",
        deployment_id="dep-00000001",
        variant="AllTraffic",
        config_name="cfg",
        model_name="m",
        instance_type=instance_type,
        model_spec={"PrimaryContainer": {"Image": image, "Environment": env or {}}},
        created_at=datetime.now(UTC),
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = (tmp_path / "home").resolve()
    path.mkdir()
    yield path
    assert remove_containers(path) == [], "a test left containers behind"


@pytest.fixture
def runtime(home: Path) -> Iterator[DockerRuntime]:
    rt = DockerRuntime(home)
    yield rt
    rt.sweep(keep=())
    rt.close()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"version": "t", "weights": [1, 2, 3]}))
    return folder


def _spec(home: Path, fleet: FleetRecord, model_dir: Path, index: int = 0) -> InstanceSpec:
    iid = f"{fleet.fleet_id}.{index}"
    own = dict(fleet.model_spec["PrimaryContainer"]["Environment"])
    return InstanceSpec(
        instance_id=iid,
        fleet=fleet,
        model_dir=model_dir,
        host="127.0.0.1",
        port=_free_port(),
        environment={**own, "SAGEMAKER_BIND_TO_PORT": "1", "SM_MODEL_DIR": str(model_dir)},
        log_path=home / "instances" / iid / "server.log",
    )


def _await_ping(spec: InstanceSpec, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ping(spec.host, spec.port, 1.0):
        assert time.monotonic() < deadline, "the container never answered /ping"
        time.sleep(0.1)


def test_the_container_contract(runtime: DockerRuntime, home: Path, model_dir: Path) -> None:
    fleet = _fleet(IMAGE, {"GREETING": "hello", "ECHO_ENV": "GREETING,SM_MODEL_DIR"})
    runtime.prepare(fleet, model_dir, lambda _: None)
    spec = _spec(home, fleet, model_dir)
    pid = runtime.start(spec)
    assert runtime.alive(pid, spec.instance_id)
    assert not runtime.alive(pid + 100000, spec.instance_id)  # not that instance's pid
    _await_ping(spec)

    answer = httpx.post(
        f"http://127.0.0.1:{spec.port}/invocations",
        json={"x": 1},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=7"},
        timeout=10,
    ).json()
    assert answer["model"] == {"version": "t", "weights": [1, 2, 3]}  # from /opt/ml/model
    assert answer["model_dir_writable"] is False  # mounted read-only
    assert answer["env"] == {"GREETING": "hello", "SM_MODEL_DIR": "/opt/ml/model"}
    assert answer["custom_attributes"] == "trace=7"
    assert answer["input"] == {"x": 1}

    client = docker.from_env()
    try:
        attrs = client.api.inspect_container(container_name(home, spec.instance_id))
        info = client.info()
    finally:
        client.close()
    assert attrs["Config"]["Cmd"] == ["serve"]  # started as `<image> serve`
    assert attrs["Config"]["Labels"][LABEL_INSTANCE] == spec.instance_id
    assert attrs["Config"]["Labels"][LABEL_FLEET] == fleet.fleet_id
    assert attrs["Config"]["Labels"][LABEL_ENDPOINT] == "ep"
    assert attrs["Config"]["Labels"][LABEL_HOME] == str(home)
    bindings = attrs["HostConfig"]["PortBindings"]["8080/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(spec.port)}]
    # ml.m5.large: 2 vCPUs and 8 GiB, capped at the host's.
    assert attrs["HostConfig"]["NanoCpus"] == min(2, info["NCPU"]) * 10**9
    assert attrs["HostConfig"]["Memory"] == min(8 * 2**30, info["MemTotal"])

    runtime.signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while runtime.alive(pid, spec.instance_id):
        assert time.monotonic() < deadline, "SIGTERM did not stop the container"
        time.sleep(0.05)
    runtime.release(spec.instance_id)
    assert our_containers(home) == []
    deadline = time.monotonic() + 5
    while "exited with code" not in spec.log_path.read_text():
        assert time.monotonic() < deadline, spec.log_path.read_text()
        time.sleep(0.05)
    output = spec.log_path.read_text()
    assert "listening on 8080" in output
    assert f"container of image {IMAGE} exited with code 0" in output


def test_a_container_that_exits_at_once_fails_its_launch_naming_image_and_cause(
    runtime: DockerRuntime, home: Path, model_dir: Path
) -> None:
    fleet = _fleet(EXITING_IMAGE)
    with pytest.raises(ProvisionFailed) as failed:
        runtime.start(_spec(home, fleet, model_dir))
    message = failed.value.message
    assert EXITING_IMAGE in message
    assert "exited at start with code 3" in message
    assert "exiting at once, as asked" in message  # its last output
    assert our_containers(home) == []


def test_a_missing_image_fails_prepare_naming_it(runtime: DockerRuntime, model_dir: Path) -> None:
    with pytest.raises(ProvisionFailed) as failed:
        runtime.prepare(_fleet(MISSING_IMAGE), model_dir, lambda _: None)
    assert MISSING_IMAGE in failed.value.message
    assert "could not be pulled" in failed.value.message


def test_sweep_removes_what_no_record_wants(
    runtime: DockerRuntime, home: Path, model_dir: Path
) -> None:
    fleet = _fleet(IMAGE)
    kept, stale = _spec(home, fleet, model_dir, 0), _spec(home, fleet, model_dir, 1)
    runtime.start(kept)
    runtime.start(stale)
    assert runtime.sweep(keep=[kept.instance_id]) == [stale.instance_id]
    assert our_containers(home) == [container_name(home, kept.instance_id)]


def test_a_container_removed_while_the_sweep_lists_them_is_passed_over(
    runtime: DockerRuntime, home: Path, model_dir: Path
) -> None:
    """The engine lists containers, then each is inspected; one removed in between (an agent
    on its way out, `docker rm` by hand) must not fail the sweep."""
    fleet = _fleet(IMAGE)
    gone, stale = _spec(home, fleet, model_dir, 0), _spec(home, fleet, model_dir, 1)
    runtime.start(gone)
    runtime.start(stale)
    api = runtime.client().api
    inspect = api.inspect_container
    removed_between: list[str] = []

    def remove_then_inspect(container: str) -> dict:
        if not removed_between:  # the first container listed vanishes before its inspect
            removed_between.append(inspect(container)["Name"].lstrip("/"))
            api.remove_container(container, force=True)
        return inspect(container)

    api.inspect_container = remove_then_inspect
    try:
        swept = runtime.sweep(keep=())
    finally:
        api.inspect_container = inspect
    assert len(removed_between) == 1
    instance_of = {container_name(home, s.instance_id): s.instance_id for s in (gone, stale)}
    assert removed_between[0] in instance_of
    del instance_of[removed_between[0]]
    assert swept == list(instance_of.values())  # the other one, swept as usual
    assert our_containers(home) == []


def test_no_engine_is_a_clear_failure(tmp_path: Path, model_dir: Path) -> None:
    rt = DockerRuntime(tmp_path, base_url=f"unix://{tmp_path}/no.sock")
    with pytest.raises(ProvisionFailed) as failed:
        rt.prepare(_fleet(IMAGE), model_dir, lambda _: None)
    assert IMAGE in failed.value.message
    assert "no Docker Engine answers" in failed.value.message
    with pytest.raises(ProvisionFailed):  # the agent reads this as "not in an engine"
        rt.has_image(IMAGE)


def test_a_container_that_never_pings_fails_the_launch(tmp_path: Path) -> None:
    from greenshift.fleet.agent import FleetAgent
    from tests.docker_support import SILENT_IMAGE
    from tests.integration.test_fleet_agent import FAST, Host

    host = Host(tmp_path)
    agent = FleetAgent(host.registry, host.settings, timing=FAST)
    host.agents.append(agent)
    try:
        plain = host.fleet("echo-v1", timeout=3)
        container = {**plain.model_spec["PrimaryContainer"], "Image": SILENT_IMAGE}
        fleet = plain.model_copy(update={"model_spec": {"PrimaryContainer": container}})
        with pytest.raises(ProvisionFailed) as failed:
            agent.scale_up(fleet, 1, lambda _: None)
        assert "did not pass the ping health check" in failed.value.message
        (record,) = host.instances(fleet.fleet_id)
        log = host.settings.home_dir / "instances" / record.instance_id / "server.log"
        assert f"started image {SILENT_IMAGE}" in log.read_text()  # the tail names the image
        # The deployment's rollback scales the failed fleet down: that removes the container.
        agent.scale_down(fleet.fleet_id, 0, lambda _: None)
        assert our_containers(host.settings.home_dir) == []
    finally:
        remove_containers(host.settings.home_dir)
        host.cleanup()


def test_gpus_go_to_the_engine_as_a_device_request(
    runtime: DockerRuntime, home: Path, model_dir: Path
) -> None:
    """With an NVIDIA runtime the container gets exactly its GPUs; without one (this machine,
    CI) the engine refuses the device request, and the failure says so and names the image."""
    from dataclasses import replace

    spec = replace(
        _spec(home, _fleet(IMAGE, instance_type="ml.g5.2xlarge"), model_dir), gpus=("0",)
    )
    client = docker.from_env()
    try:
        nvidia = "nvidia" in (client.info().get("Runtimes") or {})
        if nvidia:
            runtime.start(spec)
            attrs = client.api.inspect_container(container_name(home, spec.instance_id))
            (request,) = attrs["HostConfig"]["DeviceRequests"]
            assert request["DeviceIDs"] == ["0"] and request["Capabilities"] == [["gpu"]]
        else:
            with pytest.raises(ProvisionFailed) as failed:
                runtime.start(spec)
            assert IMAGE in failed.value.message
            assert "[[gpu]]" in failed.value.message  # the engine's words about the request
            assert our_containers(home) == []
    finally:
        client.close()
