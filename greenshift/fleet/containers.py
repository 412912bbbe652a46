"""The Docker runtime: an instance as a container of the model's own image, per SageMaker's
container contract ("Use your own inference code with hosting services"):

- started as `<image> serve`;
- the extracted model data mounted read-only at `/opt/ml/model`;
- the container's `Environment` as its environment (plus SageMaker's standard variables);
- it listens on 8080 (or on SAGEMAKER_BIND_TO_PORT when the model's Environment sets it),
  published on 127.0.0.1 only, on the instance's port, so the agent probes and routes to it
  exactly as to a process;
- CPU and memory capped at the instance type's (greenshift.fleet.instance_types), its GPUs
  passed as a device request.

Every container carries labels (instance, fleet, endpoint, home): an agent restarted after a crash
finds its containers (`sweep` removes those no record wants, `follow_logs` resumes their logs), and
a stack can be checked for leftovers. Its output is appended as plain text to the instance's
`server.log`, by a thread that follows the engine's log stream, and ends with a line saying how
the container exited, so the failure reasons that quote the log's tail say why.

The pid the agent records is the container's init process as the engine reports it; `alive`
checks it against the container of that instance, so a recycled pid is never taken for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from greenshift.fleet.instance_types import container_limits
from greenshift.fleet.processes import instance_address, ping
from greenshift.fleet.runtime import InstanceSpec
from greenshift.ports import Progress, ProvisionFailed
from greenshift.registry.records import FleetRecord

log = logging.getLogger("greenshift.fleet.containers")

LABEL_INSTANCE = "greenshift.instance"
LABEL_FLEET = "greenshift.fleet"
LABEL_ENDPOINT = "greenshift.endpoint"
LABEL_HOME = "greenshift.home"
CONTAINER_PORT = 8080
MODEL_MOUNT = "/opt/ml/model"
# A container that is gone before it first answers /ping, or within this many seconds of
# `serve`, is broken, not crashed: the launch fails at once with its exit code and last lines
# instead of being relaunched until the startup timeout. A healthy one ends the wait by answering.
START_SETTLE_SECONDS = 5.0

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_url(base_url: str | None = None) -> str:
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def _reachable(url: str) -> None:
    """Raise OSError when a unix-socket engine cannot be connected to. Checked before the client
    is made: the client leaks the socket of a failed connection attempt."""
    if not url.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(url.removeprefix("unix://"))


def container_name(home: Path, instance_id: str) -> str:
    """One name per (home, instance): a relaunch replaces the container of the same name, and
    two homes on one engine never collide. Docker names allow [a-zA-Z0-9_.-]."""
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:8]
    return f"greenshift-{digest}-{instance_id}"


def container_environment(spec: InstanceSpec, container_port: int) -> dict[str, str]:
    """What the container sees: the agent's environment for the instance, with the paths and
    port as seen inside the container. CUDA_VISIBLE_DEVICES is dropped unless the model set it:
    the device request exposes the instance's GPUs, numbered from 0 inside."""
    own = {str(k): str(v) for k, v in (spec.container.get("Environment") or {}).items()}
    env = dict(spec.environment)
    if "CUDA_VISIBLE_DEVICES" not in own:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    env["SAGEMAKER_BIND_TO_PORT"] = str(container_port)
    env["SM_MODEL_DIR"] = MODEL_MOUNT
    return env


def container_port(spec: InstanceSpec) -> int:
    """8080, unless the model's own Environment binds elsewhere (SAGEMAKER_BIND_TO_PORT)."""
    own = (spec.container.get("Environment") or {}).get("SAGEMAKER_BIND_TO_PORT")
    try:
        return int(own) if own else CONTAINER_PORT
    except ValueError:
        return CONTAINER_PORT


def labels_of(spec: InstanceSpec, home: Path) -> dict[str, str]:
    return {
        LABEL_INSTANCE: spec.instance_id,
        LABEL_FLEET: spec.fleet.fleet_id,
        LABEL_ENDPOINT: spec.fleet.endpoint,
        LABEL_HOME: str(home),
    }


def exit_line(image: str, state: dict[str, Any]) -> str:
    """How a container ended, for the log (and so for failure reasons quoting its tail)."""
    code = state.get("ExitCode")
    why = " (killed: out of memory)" if state.get("OOMKilled") else ""
    error = f": {state['Error']}" if state.get("Error") else ""
    return f"[greenshift] container of image {image} exited with code {code}{why}{error}"


def _tail(path: Path, lines: int = 10) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class DockerRuntime:
    """Instances as containers (greenshift.fleet.agent.ContainerRuntime). Talks to the engine at
    DOCKER_HOST or the default socket; connects on first use, so an agent on a host without an
    engine runs built-in instances untroubled, and only a container fleet fails, saying why."""

    def __init__(
        self, home: Path, base_url: str | None = None, settle: float = START_SETTLE_SECONDS
    ) -> None:
        self.home = home
        self.url = engine_url(base_url)
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._followers: dict[str, threading.Thread] = {}  # container id -> log follower
        self._pids: dict[int, str] = {}  # host pid -> container name
        self._host: tuple[int, int] | None = None  # engine's (CPUs, memory bytes)
        self.settle = settle

    # --- the engine --------------------------------------------------------------------------

    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                try:
                    client = self._new_client()
                except Exception as exc:
                    raise ProvisionFailed(
                        f"no Docker Engine answers at {self.url} ({exc})"
                    ) from exc
                self._client = client
            return self._client

    def _new_client(self) -> docker.DockerClient:
        _reachable(self.url)
        client = docker.DockerClient(base_url=self.url, timeout=30)
        try:
            client.ping()
        except Exception:
            client.close()
            raise
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _host_resources(self) -> tuple[int, int]:
        if self._host is None:
            info = self.client().info()
            self._host = (int(info.get("NCPU") or 0), int(info.get("MemTotal") or 0))
        return self._host

    # --- InstanceRuntime ---------------------------------------------------------------------

    def has_image(self, image: str) -> bool:
        try:
            self.client().images.get(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError:
            return False
        return True

    def prepare(self, fleet: FleetRecord, model_dir: Path, progress: Progress) -> None:
        """The engine answers and holds the image (pulled when it does not): checked once per
        fleet, so a missing image fails the deployment before any instance starts."""
        image = _image_of(fleet)
        try:
            client = self.client()
        except ProvisionFailed as exc:
            raise ProvisionFailed(
                f"The image {image} of production variant {fleet.variant} runs as a container, "
                f"but {exc.message}"
            ) from exc
        if self.has_image(image):
            return
        progress(f"Pulling image {image}.")
        try:
            client.images.pull(image)
        except (docker.errors.APIError, docker.errors.DockerException) as exc:
            raise ProvisionFailed(
                f"The image {image} of production variant {fleet.variant} is not in the Docker "
                f"Engine and could not be pulled: {_explain(exc)}"
            ) from exc

    def start(self, spec: InstanceSpec) -> int:
        client = self.client()
        name = container_name(self.home, spec.instance_id)
        self._remove(name)  # a stale container of this instance (crash between start and record)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        port = container_port(spec)
        cpus, memory = self._host_resources()
        limits = container_limits(spec.fleet.instance_type, cpus, memory)
        options: dict[str, Any] = {}
        if limits.nano_cpus:
            options["nano_cpus"] = limits.nano_cpus
        if limits.memory_bytes:
            options["mem_limit"] = limits.memory_bytes
        if spec.gpus:
            options["device_requests"] = [
                docker.types.DeviceRequest(device_ids=list(spec.gpus), capabilities=[["gpu"]])
            ]
        try:
            container = client.containers.run(
                spec.image,
                command=["serve"],
                name=name,
                detach=True,
                environment=container_environment(spec, port),
                labels=labels_of(spec, self.home),
                # 127.0.0.1 only: an instance is reached through the data plane, never directly.
                ports={
                    f"{port}/tcp": (instance_address(spec.host, spec.private_network), spec.port)
                },
                volumes={str(spec.model_dir): {"bind": MODEL_MOUNT, "mode": "ro"}},
                **options,
            )
        except docker.errors.ImageNotFound as exc:
            raise ProvisionFailed(
                f"The image {spec.image} is not in the Docker Engine: {_explain(exc)}"
            ) from exc
        except docker.errors.APIError as exc:
            self._remove(name)
            raise ProvisionFailed(
                f"The container of image {spec.image} could not start: {_explain(exc)}"
            ) from exc
        with spec.log_path.open("ab") as out:  # the failure reasons quote the log's tail
            out.write(f"[greenshift] started image {spec.image} as container {name}\n".encode())
        self._follow(container.id, spec.image, spec.log_path, since=None)
        pid = self._settled_pid(container, spec)
        self._pids[pid] = name
        return pid

    def alive(self, pid: int | None, instance_id: str) -> bool:
        if not pid:
            return False
        state = self._state(container_name(self.home, instance_id))
        return bool(state and state.get("Running") and state.get("Pid") == pid)

    def signal(self, pid: int, sig: int) -> None:
        name = self._pids.get(pid) or self._name_of_pid(pid)
        if name is None:
            return
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client().api.kill(name, signal=int(sig))

    def release(self, instance_id: str) -> None:
        """The instance stopped: remove its container (and so its published port)."""
        self._remove(container_name(self.home, instance_id))

    # --- adoption and clean-up ---------------------------------------------------------------

    def ours(self) -> list[Any]:
        """Every container of this home, running or not."""
        return list(
            self.client().containers.list(
                all=True, ignore_removed=True, filters={"label": f"{LABEL_HOME}={self.home}"}
            )
        )

    def sweep(self, keep: Iterable[str]) -> list[str]:
        """Remove this home's containers whose instance is not in `keep` (stale: their record is
        gone, stopped or failed) and stopped ones of any instance (a stopped container has no use:
        a relaunch makes a new one). Returns the instance ids removed."""
        wanted = set(keep)
        removed = []
        for container in self.ours():
            instance = container.labels.get(LABEL_INSTANCE, "")
            if instance in wanted and container.status == "running":
                continue
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
                removed.append(instance)
        return removed

    def follow_logs(self, instance_ids: Iterable[str], instances_dir: Path) -> None:
        """After an agent restart: resume appending the adopted containers' output to their logs,
        from the log file's last write on."""
        for iid in instance_ids:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container = self.client().containers.get(container_name(self.home, iid))
                log_path = instances_dir / iid / "server.log"
                since = None
                with contextlib.suppress(OSError):
                    since = datetime.fromtimestamp(log_path.stat().st_mtime, UTC)
                self._follow(
                    container.id,
                    container.image.tags[0]
                    if container.image.tags
                    else container.attrs["Config"]["Image"],
                    log_path,
                    since,
                )

    # --- internals ---------------------------------------------------------------------------

    def _settled_pid(self, container: Any, spec: InstanceSpec) -> int:
        deadline = time.monotonic() + self.settle
        while True:
            container.reload()
            state = container.attrs["State"]
            if not state.get("Running"):
                code = state.get("ExitCode")
                with contextlib.suppress(Exception):
                    container.wait(timeout=5)
                time.sleep(0.2)  # the follower writes the last lines
                tail = _tail(spec.log_path)
                self._remove(container.name)
                raise ProvisionFailed(
                    f"The container of image {spec.image} for production variant "
                    f"{spec.fleet.variant} exited at start with code {code}"
                    + (" (killed: out of memory)." if state.get("OOMKilled") else ".")
                    + (f" Its last output:\n{tail}" if tail else "")
                )
            if time.monotonic() >= deadline or ping(spec.host, spec.port, 0.5):
                return int(state["Pid"])
            time.sleep(0.1)

    def _state(self, name: str) -> dict[str, Any] | None:
        try:
            attrs = self.client().api.inspect_container(name)
        except (docker.errors.NotFound, docker.errors.APIError, ProvisionFailed):
            return None
        return dict(attrs.get("State") or {})

    def _name_of_pid(self, pid: int) -> str | None:
        with contextlib.suppress(docker.errors.APIError, ProvisionFailed):
            for container in self.ours():
                if container.attrs.get("State", {}).get("Pid") == pid:
                    return str(container.name)
        return None

    def _remove(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            try:
                self.client().api.remove_container(name, force=True)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: removal already in progress
                    raise
        for pid, known in list(self._pids.items()):
            if known == name:
                del self._pids[pid]

    def _follow(
        self, container_id: str, image: str, log_path: Path, since: datetime | None
    ) -> None:
        """Append the container's output to `log_path` until it exits, then how it exited. One
        thread per container, with its own connection (a log stream holds one)."""
        with self._lock:
            running = self._followers.get(container_id)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(
                target=self._pump,
                args=(container_id, image, log_path, since),
                name=f"container-log-{container_id[:12]}",
                daemon=True,
            )
            self._followers[container_id] = thread
        thread.start()

    def _pump(self, container_id: str, image: str, log_path: Path, since: datetime | None) -> None:
        try:
            client = self._new_client()
        except Exception:
            log.exception("cannot follow the logs of container %s", container_id[:12])
            return
        try:
            with log_path.open("ab") as out:
                options: dict[str, Any] = {"stream": True, "follow": True}
                if since is not None:
                    options["since"] = since
                with contextlib.suppress(docker.errors.APIError, OSError, ValueError):
                    for chunk in client.api.logs(container_id, **options):
                        out.write(chunk)
                        out.flush()
                with contextlib.suppress(docker.errors.APIError):
                    state = client.api.inspect_container(container_id)["State"]
                    if not state.get("Running"):
                        out.write((exit_line(image, state) + "\n").encode())
        finally:
            client.close()
            with self._lock:
                self._followers.pop(container_id, None)


def _image_of(fleet: FleetRecord) -> str:
    from greenshift.fleet.runtime import container_of

    return str(container_of(fleet.model_spec).get("Image") or "")


def _explain(exc: BaseException) -> str:
    """The engine's own words (e.g. "pull access denied", "no such host"), without the HTTP."""
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()
