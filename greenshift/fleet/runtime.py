"""What runs one model instance, behind one small interface.

An instance runs on a runtime: the built-in runtime (a process of the built-in model server, in
the model's own environment) or a container (the Docker Engine). The fleet agent drives both the
same way, so a placement, a health probe (`GET /ping` on `host:port`), a stop, a restart and an
adoption read the same whatever runs the instance:

    prepare(fleet, model_dir, progress)   once per fleet before its instances start: whatever a
                                          launch needs (a model environment, an image check);
                                          idempotent; raises ProvisionFailed naming the cause
    start(spec) -> pid                    start one instance, detached from the agent
    alive(pid, instance_id)               still running, and still that instance (no recycled pid)
    signal(pid, sig)                      SIGTERM / SIGKILL the instance; a gone one is no error
    release(instance_id)                  after the instance stopped: free what it held (a stopped
                                          container is removed); nothing for a process

The pid is the host pid of the instance's main process (for a container, its init process as the
engine reports it), so the registry's InstanceRecord needs no runtime-specific field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from greenshift.ports import Progress
from greenshift.registry.records import FleetRecord


def container_of(model_spec: dict[str, Any]) -> dict[str, Any]:
    """The container an instance runs: PrimaryContainer, else Containers[0] (the CreateModel
    request)."""
    primary = model_spec.get("PrimaryContainer")
    if primary:
        return dict(primary)
    containers = model_spec.get("Containers") or []
    return dict(containers[0]) if containers else {}


@dataclass(frozen=True)
class InstanceSpec:
    """Everything one instance launch needs, whatever runs it."""

    instance_id: str
    fleet: FleetRecord
    model_dir: Path  # the extracted model data (read-only for the model)
    host: str  # the address the instance answers on (the agent probes and routes to host:port)
    port: int
    # What the model's process sees: its container's Environment plus SageMaker's standard
    # variables. Never Greenshift's own settings or credentials (SEMANTICS.md 9).
    environment: dict[str, str]
    log_path: Path  # stdout + stderr, appended as plain text (the logs store tails it)
    gpus: tuple[str, ...] = field(default=())  # the host GPUs this instance may use
    private_network: bool = False  # `host` may be non-loopback (Settings.host_network_private)

    @property
    def container(self) -> dict[str, Any]:
        return container_of(self.fleet.model_spec)

    @property
    def image(self) -> str:
        return str(self.container.get("Image") or "")


class InstanceRuntime(Protocol):
    def prepare(self, fleet: FleetRecord, model_dir: Path, progress: Progress) -> None:
        """Make ready what the fleet's instances need before any starts."""

    def start(self, spec: InstanceSpec) -> int:
        """Start the instance; returns its host pid."""

    def alive(self, pid: int | None, instance_id: str) -> bool:
        """True while `pid` runs `instance_id` (not a recycled pid)."""

    def signal(self, pid: int, sig: int) -> None:
        """Send `sig` to the instance; a gone instance is not an error."""

    def release(self, instance_id: str) -> None:
        """The instance has stopped: free what it held. Idempotent."""


def log_tail(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of an instance's log (read from its last `max_bytes` only), for
    failure reasons; empty when there is no log."""
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - max_bytes))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
