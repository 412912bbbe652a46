"""No Docker Engine on the host: a container fleet fails before launch, naming the image and the
cause; the built-in runtime keeps serving from the same agent. Needs no engine itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.fleet.agent import FleetAgent
from greenshift.fleet.containers import DockerRuntime
from greenshift.ports import ProvisionFailed
from tests.integration.test_fleet_agent import FAST, Host, RecordingLauncher

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    made = Host(tmp_path)
    yield made
    made.cleanup()


def test_a_container_fleet_without_an_engine_fails_clearly_and_built_ins_still_run(
    host: Host, tmp_path: Path
) -> None:
    launcher = RecordingLauncher()
    host.launchers.append(launcher)
    nowhere = f"unix://{tmp_path}/no-docker.sock"
    agent = FleetAgent(
        host.registry,
        host.settings,
        launcher,
        containers=lambda: DockerRuntime(host.settings.home_dir, base_url=nowhere),
        timing=FAST,
    )
    host.agents.append(agent)
    image = "example.org/team/model:1"
    plain = host.fleet("echo-v1", variant="Byoc")
    container = {**plain.model_spec["PrimaryContainer"], "Image": image}
    byoc = plain.model_copy(update={"model_spec": {"PrimaryContainer": container}})
    with pytest.raises(ProvisionFailed) as failed:
        agent.scale_up(byoc, 1, lambda _: None)
    assert image in failed.value.message
    assert "no Docker Engine answers" in failed.value.message
    assert host.instances(byoc.fleet_id) == []  # failed before any launch

    builtin = host.fleet("echo-v2")
    assert agent.scale_up(builtin, 1, lambda _: None).healthy == 1
    assert agent.adopt()["adopted"] == 1  # adoption copes with no engine
