"""GPU assignment and the instance-type table: pure rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenshift.errors import ResourceLimitExceeded
from greenshift.fleet import gpus
from greenshift.fleet.instance_types import container_limits, gpus_of, instance_type

SMI = """GPU 0: NVIDIA A10G (UUID: GPU-1b2c)
GPU 1: NVIDIA A10G (UUID: GPU-3d4e)
"""


def test_nvidia_smi_listing_gives_indices() -> None:
    assert gpus.parse_nvidia_smi(SMI) == ("0", "1")
    assert gpus.parse_nvidia_smi("") == ()


def test_a_configured_list_wins() -> None:
    assert gpus.host_gpus(" 0, 1,2,3 ") == ("0", "1", "2", "3")


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("ml.g4dn.xlarge", 1),
        ("ml.g5.2xlarge", 1),
        ("ml.g5.12xlarge", 4),
        ("ml.g5.48xlarge", 8),
        ("ml.g6.xlarge", 1),
        ("ml.p3.8xlarge", 4),
        ("ml.p4d.24xlarge", 8),
        ("ml.p5.48xlarge", 8),
        ("ml.m5.large", 0),
        ("ml.c5.xlarge", 0),
        ("ml.unknown.huge", 0),
    ],
)
def test_gpu_counts_per_instance_type(name: str, count: int) -> None:
    assert gpus_of(name) == count


def test_limits_follow_the_type_capped_at_the_host() -> None:
    assert instance_type("ml.m5.xlarge").vcpus == 4
    small_host = container_limits("ml.m5.xlarge", host_cpus=2, host_memory_bytes=8 * 2**30)
    assert small_host.nano_cpus == 2 * 10**9  # the engine refuses more CPUs than the host has
    assert small_host.memory_bytes == 8 * 2**30  # 16 GiB asked, the host has 8
    big_host = container_limits("ml.m5.xlarge", host_cpus=64, host_memory_bytes=256 * 2**30)
    assert (big_host.nano_cpus, big_host.memory_bytes) == (4 * 10**9, 16 * 2**30)
    assert container_limits("ml.unknown.huge", 8, 2**34).nano_cpus == 0  # unknown: no limit


def test_instances_get_disjoint_gpus_and_keep_theirs() -> None:
    host = ("0", "1", "2", "3")
    first = gpus.assign(host, used=(), held=(), per_instance=1, variant="v", instance_type="t")
    second = gpus.assign(host, used=first, held=(), per_instance=1, variant="v", instance_type="t")
    assert first == ("0",) and second == ("1",)
    # A relaunch keeps the GPU it held when nobody took it meanwhile.
    again = gpus.assign(
        host, used=("0",), held=("2",), per_instance=1, variant="v", instance_type="t"
    )
    assert again == ("2",)
    # ...and takes the first free one when its GPU is now someone else's.
    moved = gpus.assign(
        host, used=("0", "2"), held=("2",), per_instance=1, variant="v", instance_type="t"
    )
    assert moved == ("1",)


def test_too_few_free_gpus_is_refused_with_the_free_count() -> None:
    with pytest.raises(ResourceLimitExceeded) as refused:
        gpus.assign(
            ("0", "1", "2", "3"),
            used=("0", "1"),
            held=(),
            per_instance=4,
            variant="Big",
            instance_type="ml.g5.12xlarge",
        )
    message = refused.value.message
    assert "needs 4 GPU(s)" in message and "2 of its 4 GPU(s) free" in message
    assert "ml.g5.12xlarge" in message and "Big" in message
    gpus.check_fits("v", "t", per_instance=1, instances=2, free=2, total=4)  # fits: no error


def test_no_gpus_asked_is_always_satisfied() -> None:
    assert gpus.choose((), (), 0) == ()
    assert gpus.choose(("0",), ("0",), 1) is None


def test_assignment_is_recorded_beside_the_instance(tmp_path: Path) -> None:
    gpus.record(tmp_path / "i", ("1", "3"))
    assert gpus.recorded(tmp_path / "i") == ("1", "3")
    assert gpus.recorded(tmp_path / "missing") == ()
    assert gpus.cuda_environment(("1", "3")) == {"CUDA_VISIBLE_DEVICES": "1,3"}


def test_the_ledger_reads_holders_from_their_records(tmp_path: Path) -> None:
    ledger = gpus.GpuLedger("0,1,2,3", tmp_path)
    first = ledger.assign("a.0", "v", "ml.g5.2xlarge", holders=[])
    second = ledger.assign("b.0", "v", "ml.g5.2xlarge", holders=["a.0"])
    assert (first, second) == (("0",), ("1",))
    assert ledger.assign("a.0", "v", "ml.g5.2xlarge", holders=["a.0", "b.0"]) == ("0",)  # kept
    assert ledger.assign("c.0", "v", "ml.m5.large", holders=["a.0", "b.0"]) == ()
    assert ledger.environment(()) == {"CUDA_VISIBLE_DEVICES": ""}  # hides the host's GPUs
    with pytest.raises(ResourceLimitExceeded, match="2 of its 4 GPU"):
        ledger.check("Big", "ml.g5.12xlarge", launches=1, holders=["a.0", "b.0"])
    ledger.check("v", "ml.g5.2xlarge", launches=2, holders=["a.0", "b.0"])  # fits
