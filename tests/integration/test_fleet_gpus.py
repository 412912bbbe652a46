"""GPU assignment by the fleet agent, on real model-server processes, with a configured list of
four GPUs (no GPU needed): disjoint devices per instance, refusal before launch when too few."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.errors import ResourceLimitExceeded
from greenshift.settings import Settings
from tests.integration.test_fleet_agent import Host, _free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gpu_host(tmp_path: Path) -> Iterator[Host]:
    made = Host(tmp_path)
    made.settings = Settings(
        home=tmp_path / "home", instance_port_base=_free_port(), gpus="0,1,2,3"
    )
    yield made
    made.cleanup()


def _visible_devices(pid: int) -> str | None:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"CUDA_VISIBLE_DEVICES="):
            return entry.split(b"=", 1)[1].decode()
    return None


def test_two_g5_instances_get_disjoint_gpus_and_a_bigger_fleet_is_refused(
    gpu_host: Host,
) -> None:
    agent = gpu_host.agent()
    first = gpu_host.fleet("echo-v1", deployment="dep-0000000a").model_copy(
        update={"instance_type": "ml.g5.2xlarge"}
    )
    second = gpu_host.fleet("echo-v2", deployment="dep-0000000b").model_copy(
        update={"instance_type": "ml.g5.2xlarge"}
    )
    agent.scale_up(first, 1, lambda _: None)
    agent.scale_up(second, 1, lambda _: None)
    seen = []
    for fleet in (first, second):
        (record,) = gpu_host.instances(fleet.fleet_id)
        assert record.pid is not None
        seen.append(_visible_devices(record.pid))
    assert seen == ["0", "1"]  # one GPU each, disjoint

    # ml.g5.12xlarge has 4 GPUs; 2 of the 4 are free: refused before any instance launches.
    big = gpu_host.fleet("echo-v1", variant="Big", deployment="dep-0000000c").model_copy(
        update={"instance_type": "ml.g5.12xlarge"}
    )
    with pytest.raises(ResourceLimitExceeded) as refused:
        agent.scale_up(big, 1, lambda _: None)
    assert "needs 4 GPU(s)" in refused.value.message
    assert "2 of its 4 GPU(s) free" in refused.value.message
    assert gpu_host.instances(big.fleet_id) == []

    # A stopped instance frees its GPU for the next fleet.
    agent.scale_down(first.fleet_id, 0, lambda _: None)
    third = gpu_host.fleet("echo-v1", deployment="dep-0000000d").model_copy(
        update={"instance_type": "ml.g5.2xlarge"}
    )
    agent.scale_up(third, 1, lambda _: None)
    (record,) = gpu_host.instances(third.fleet_id)
    assert record.pid is not None and _visible_devices(record.pid) == "0"
