"""GPU assignment: which of the host's GPUs an instance may use.

The host's GPUs are the configured list (`GREENSHIFT_GPUS`, e.g. "0,1,2,3": lets a host keep
some GPUs to itself, and lets tests run without one) or, when none is configured, what
`nvidia-smi -L` lists. Each instance of an accelerated type gets as many GPUs as its type has
(greenshift.fleet.instance_types), disjoint from every other live instance of the host.

Who holds what is recorded beside the instance (`<home>/instances/<id>/gpus`), so an agent that
restarts still knows which GPUs its adopted instances hold; the record of a stopped instance is
ignored because only live instances are asked. The choice itself is a pure function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

from greenshift.errors import ResourceLimitExceeded
from greenshift.fleet.instance_types import gpus_of

GPU_FILE = "gpus"
_NVIDIA_SMI_LINE = re.compile(r"^GPU (\d+):", re.MULTILINE)


def parse_nvidia_smi(listing: str) -> tuple[str, ...]:
    """The GPU indices in `nvidia-smi -L` output ("GPU 0: Tesla T4 (UUID: GPU-...)")."""
    return tuple(_NVIDIA_SMI_LINE.findall(listing))


def parse_configured(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def host_gpus(configured: str | None) -> tuple[str, ...]:
    """This host's GPUs: the configured list, else `nvidia-smi -L`, else none."""
    listed = parse_configured(configured)
    if listed:
        return listed
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else ()


def choose(host: Sequence[str], used: Iterable[str], count: int) -> tuple[str, ...] | None:
    """The first `count` of the host's GPUs nobody uses, in host order; None when too few are
    free. Zero GPUs asked is always satisfied."""
    if count <= 0:
        return ()
    taken = set(used)
    free = [gpu for gpu in host if gpu not in taken]
    return tuple(free[:count]) if len(free) >= count else None


def free_count(host: Sequence[str], used: Iterable[str]) -> int:
    taken = set(used)
    return sum(gpu not in taken for gpu in host)


def check_fits(
    variant: str, instance_type: str, per_instance: int, instances: int, free: int, total: int
) -> None:
    """Refuse, before anything launches, a fleet whose instances do not all find their GPUs."""
    needed = per_instance * instances
    if needed > free:
        raise ResourceLimitExceeded(
            f"The production variant {variant} needs {needed} GPU(s) ({instances} instance(s) of "
            f"{instance_type} with {per_instance} GPU(s) each), but this host has {free} of its "
            f"{total} GPU(s) free. Free GPUs by deleting an endpoint, or choose an instance type "
            "with fewer GPUs."
        )


def assign(
    host: Sequence[str],
    used: Iterable[str],
    held: Sequence[str],
    per_instance: int,
    variant: str,
    instance_type: str,
) -> tuple[str, ...]:
    """One instance's GPUs: those it `held` before when still free (a relaunch keeps its
    devices), else the first free ones; ResourceLimitExceeded when too few are free."""
    taken = set(used)
    keep = [gpu for gpu in held if gpu in host and gpu not in taken]
    chosen = choose(keep + [gpu for gpu in host if gpu not in keep], taken, per_instance)
    if chosen is None:
        check_fits(variant, instance_type, per_instance, 1, free_count(host, taken), len(host))
        return ()  # not reached: check_fits raised
    return chosen


def cuda_environment(gpus: Sequence[str]) -> dict[str, str]:
    """What a process is told about the GPUs it may use (CUDA and most frameworks read it).
    An instance without GPUs gets none: an empty CUDA_VISIBLE_DEVICES hides every GPU."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(gpus)}


def record(instance_dir: Path, gpus: Sequence[str]) -> None:
    instance_dir.mkdir(parents=True, exist_ok=True)
    (instance_dir / GPU_FILE).write_text(",".join(gpus))


def recorded(instance_dir: Path) -> tuple[str, ...]:
    try:
        return parse_configured((instance_dir / GPU_FILE).read_text())
    except OSError:
        return ()


class GpuLedger:
    """This host's GPUs and which instance holds which: what the fleet agent asks before a
    fleet launches (`check`) and at each launch (`assign`). `holders` are the ids of the host's
    instances that still hold their devices (running or stopping)."""

    def __init__(self, configured: str | None, instances_dir: Path) -> None:
        self.configured = configured
        self.instances_dir = instances_dir

    @cached_property
    def host(self) -> tuple[str, ...]:
        return host_gpus(self.configured)

    def used(self, holders: Iterable[str]) -> set[str]:
        taken: set[str] = set()
        for iid in holders:
            taken.update(recorded(self.instances_dir / iid))
        return taken

    def check(
        self, variant: str, instance_type: str, launches: int, holders: Iterable[str]
    ) -> None:
        per_instance = gpus_of(instance_type)
        if per_instance and launches:
            free = free_count(self.host, self.used(holders))
            check_fits(variant, instance_type, per_instance, launches, free, len(self.host))

    def assign(
        self, iid: str, variant: str, instance_type: str, holders: Iterable[str]
    ) -> tuple[str, ...]:
        folder = self.instances_dir / iid
        per_instance = gpus_of(instance_type)
        chosen: tuple[str, ...] = ()
        if per_instance:
            others = self.used(h for h in holders if h != iid)
            chosen = assign(
                self.host, others, recorded(folder), per_instance, variant, instance_type
            )
        record(folder, chosen)
        return chosen

    def environment(self, gpus: Sequence[str]) -> dict[str, str]:
        """CUDA_VISIBLE_DEVICES for a process, on a host that has GPUs at all."""
        return cuda_environment(gpus) if self.host else {}
