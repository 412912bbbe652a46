"""SageMaker instance types: vCPUs, memory and GPUs, as AWS publishes them for hosting.

One table, read by the Docker runtime (an instance's CPU and memory limits, so one instance cannot
take the whole host), by GPU assignment (how many GPUs each instance gets) and later by host
sizing. Pure data and pure lookups: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0


def _family(prefix: str, sizes: Mapping[str, tuple[int, float, int]]) -> dict[str, InstanceType]:
    return {
        f"{prefix}.{size}": InstanceType(f"{prefix}.{size}", vcpus, mem, gpus)
        for size, (vcpus, mem, gpus) in sizes.items()
    }


_GENERAL = {  # m5 / m6i / c5 / r5 shapes share the size names; (vCPUs, GiB, GPUs)
    "large": (2, 8, 0),
    "xlarge": (4, 16, 0),
    "2xlarge": (8, 32, 0),
    "4xlarge": (16, 64, 0),
    "8xlarge": (32, 128, 0),
    "12xlarge": (48, 192, 0),
    "16xlarge": (64, 256, 0),
    "24xlarge": (96, 384, 0),
}

TABLE: dict[str, InstanceType] = {
    **_family(
        "ml.t2",
        {"medium": (2, 4, 0), "large": (2, 8, 0), "xlarge": (4, 16, 0), "2xlarge": (8, 32, 0)},
    ),
    **_family(
        "ml.t3",
        {"medium": (2, 4, 0), "large": (2, 8, 0), "xlarge": (4, 16, 0), "2xlarge": (8, 32, 0)},
    ),
    **_family(
        "ml.m4",
        {
            "xlarge": (4, 16, 0),
            "2xlarge": (8, 32, 0),
            "4xlarge": (16, 64, 0),
            "10xlarge": (40, 160, 0),
            "16xlarge": (64, 256, 0),
        },
    ),
    **_family("ml.m5", _GENERAL),
    **_family("ml.m5d", _GENERAL),
    **_family("ml.m6i", {**_GENERAL, "32xlarge": (128, 512, 0)}),
    **_family(
        "ml.c5",
        {
            "large": (2, 4, 0),
            "xlarge": (4, 8, 0),
            "2xlarge": (8, 16, 0),
            "4xlarge": (16, 32, 0),
            "9xlarge": (36, 72, 0),
            "18xlarge": (72, 144, 0),
        },
    ),
    **_family(
        "ml.c6i",
        {
            "large": (2, 4, 0),
            "xlarge": (4, 8, 0),
            "2xlarge": (8, 16, 0),
            "4xlarge": (16, 32, 0),
            "8xlarge": (32, 64, 0),
            "16xlarge": (64, 128, 0),
            "32xlarge": (128, 256, 0),
        },
    ),
    **_family(
        "ml.r5",
        {
            "large": (2, 16, 0),
            "xlarge": (4, 32, 0),
            "2xlarge": (8, 64, 0),
            "4xlarge": (16, 128, 0),
            "12xlarge": (48, 384, 0),
            "24xlarge": (96, 768, 0),
        },
    ),
    # Accelerated: NVIDIA GPUs per instance.
    **_family("ml.p2", {"xlarge": (4, 61, 1), "8xlarge": (32, 488, 8), "16xlarge": (64, 732, 16)}),
    **_family("ml.p3", {"2xlarge": (8, 61, 1), "8xlarge": (32, 244, 4), "16xlarge": (64, 488, 8)}),
    **_family("ml.p3dn", {"24xlarge": (96, 768, 8)}),
    **_family("ml.p4d", {"24xlarge": (96, 1152, 8)}),
    **_family("ml.p4de", {"24xlarge": (96, 1152, 8)}),
    **_family("ml.p5", {"48xlarge": (192, 2048, 8)}),
    **_family(
        "ml.g4dn",
        {
            "xlarge": (4, 16, 1),
            "2xlarge": (8, 32, 1),
            "4xlarge": (16, 64, 1),
            "8xlarge": (32, 128, 1),
            "12xlarge": (48, 192, 4),
            "16xlarge": (64, 256, 1),
        },
    ),
    **_family(
        "ml.g5",
        {
            "xlarge": (4, 16, 1),
            "2xlarge": (8, 32, 1),
            "4xlarge": (16, 64, 1),
            "8xlarge": (32, 128, 1),
            "12xlarge": (48, 192, 4),
            "16xlarge": (64, 256, 1),
            "24xlarge": (96, 384, 4),
            "48xlarge": (192, 768, 8),
        },
    ),
    **_family(
        "ml.g6",
        {
            "xlarge": (4, 16, 1),
            "2xlarge": (8, 32, 1),
            "4xlarge": (16, 64, 1),
            "8xlarge": (32, 128, 1),
            "12xlarge": (48, 192, 4),
            "16xlarge": (64, 256, 1),
            "24xlarge": (96, 384, 4),
            "48xlarge": (192, 768, 8),
        },
    ),
}

# An instance type missing from the table (a new family) runs unlimited and without GPUs, rather
# than being refused: the API already validated the name against SageMaker's enum.
UNKNOWN = InstanceType("unknown", vcpus=0, memory_gib=0, gpus=0)


def instance_type(name: str) -> InstanceType:
    return TABLE.get(name, UNKNOWN)


def gpus_of(name: str) -> int:
    """How many GPUs one instance of this type gets."""
    return instance_type(name).gpus


@dataclass(frozen=True)
class Limits:
    """A container's CPU and memory ceilings, in the Docker Engine's units; 0 = no limit."""

    nano_cpus: int
    memory_bytes: int


def container_limits(name: str, host_cpus: int, host_memory_bytes: int) -> Limits:
    """The instance type's vCPUs and memory, capped at the host's (the engine refuses a CPU limit
    above the host's count; a memory limit above the host's would promise what is not there)."""
    shape = instance_type(name)
    cpus = min(shape.vcpus, host_cpus) if shape.vcpus else 0
    memory = int(shape.memory_gib * 2**30)
    if host_memory_bytes:
        memory = min(memory, host_memory_bytes) if memory else 0
    return Limits(nano_cpus=cpus * 10**9, memory_bytes=memory)
