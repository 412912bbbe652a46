"""The built-in runtime: instances as processes of the built-in model server, each in its model's
own environment (greenshift.fleet.modelenv), started detached and isolated; tell whether a pid is
still our model server, signal them, probe `/ping`, find free ports. One of the instance runtimes
(greenshift.fleet.runtime.InstanceRuntime).

Isolation (SEMANTICS.md 9, README "Your own model"): the server is a copy of the
self-contained package greenshift.fleet.serving, placed in the environment cache, run as a file
by the environment's interpreter with `-I` (no PYTHONPATH, no user site-packages, no working
directory on sys.path). Its environment is only what `model_environment` lists: the container's
`Environment`, SageMaker's standard variables and a minimal base. Never a `GREENSHIFT_*` value,
never the worker's credentials (HOME is the instance's own folder, so no `~/.aws` either).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from greenshift.fleet import serving
from greenshift.fleet.frameworks import UnknownFrameworkVersionError, framework_requirements
from greenshift.fleet.images import BuiltinImage, builtin_image
from greenshift.fleet.modelenv import ModelEnvironments, RequirementSet
from greenshift.fleet.runtime import InstanceSpec, container_of
from greenshift.ports import Progress, ProvisionFailed
from greenshift.registry.records import FleetRecord
from greenshift.settings import Settings

# What /proc/<pid>/cmdline holds for every instance (chaos invariants and adoption look for it).
SERVER_MODULE = "greenshift.fleet.model_server"
SERVER_PACKAGE = "gs_model_server"  # the copy's folder name (greenshift.fleet.serving)
LOOPBACK = "127.0.0.1"  # instances never answer beyond loopback, whatever GREENSHIFT_HOST says

log = logging.getLogger("greenshift.fleet")


def instance_address(configured: str, private_network: bool = False) -> str:
    """Where a host's instances listen: its own address when that is a loopback one (a host of
    `greenshift agent --address 127.0.0.3`), else 127.0.0.1 (`GREENSHIFT_HOST=0.0.0.0` must never
    put a model on every interface: HAProxy is the one door to it). `private_network`
    (GREENSHIFT_HOST_NETWORK_PRIVATE, a host on a network only the data plane reaches): the
    host's own unicast address too, never a wildcard."""
    try:
        address = ipaddress.ip_address(configured)
    except ValueError:  # a name, not an address
        return LOOPBACK
    if address.is_loopback:
        return configured
    if private_network and not (address.is_unspecified or address.is_multicast):
        return configured
    return LOOPBACK


BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


def server_command(
    python: Path,
    server: Path,
    instance_id: str,
    model_dir: Path,
    port: int,
    flavour: str,
    host: str = LOOPBACK,
    private_network: bool = False,
) -> list[str]:
    return [
        str(python),
        "-I",
        str(server / SERVER_PACKAGE / "__main__.py"),
        "--model-dir",
        str(model_dir),
        "--host",
        instance_address(host, private_network),
        "--port",
        str(port),
        "--flavour",
        flavour,
        "--instance-id",
        instance_id,
        "--role",
        SERVER_MODULE,
    ]


def model_environment(spec: InstanceSpec, env_dir: Path) -> dict[str, str]:
    """All the model's process sees: a minimal base, then the agent's (the container's
    Environment and SageMaker's runtime-independent variables), then what this runtime decides
    (port, model folder, code folder)."""
    code = spec.model_dir / "code"
    return {
        "PATH": f"{env_dir / 'bin'}:{BASE_PATH}",
        "HOME": str(spec.log_path.parent),
        "LANG": "C.UTF-8",
        "VIRTUAL_ENV": str(env_dir),
        **spec.environment,
        "SAGEMAKER_BIND_TO_PORT": str(spec.port),
        "SM_MODEL_DIR": str(spec.model_dir),
        "SAGEMAKER_SUBMIT_DIRECTORY": str(code if code.is_dir() else spec.model_dir),
    }


def image_of(fleet: FleetRecord) -> BuiltinImage:
    image = str(container_of(fleet.model_spec).get("Image") or "")
    return builtin_image(image) or BuiltinImage("generic")


def requirements_of(fleet: FleetRecord, model_dir: Path) -> RequirementSet:
    """The fleet's requirement set: server + framework of the image + code/requirements.txt."""
    try:
        framework = framework_requirements(image_of(fleet))
    except UnknownFrameworkVersionError as exc:
        raise ProvisionFailed(str(exc)) from exc
    path = model_dir / "code" / "requirements.txt"
    return RequirementSet.of(framework, path.read_text() if path.is_file() else None)


def _server_digest() -> str:
    folder = Path(serving.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class ProcessRuntime:
    """Real processes. Each instance gets its own session (start_new_session): a worker that dies
    or is restarted does not take its instances with it, and a signal reaches the instance's
    whole process group."""

    def __init__(
        self,
        environments: ModelEnvironments | None = None,
        unused_seconds: float | None = None,
    ) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        if environments is None or unused_seconds is None:
            settings = Settings()
            environments = environments or ModelEnvironments(settings.env_cache)
            if unused_seconds is None:
                unused_seconds = settings.env_unused_seconds
        self.environments = environments
        self.unused_seconds = unused_seconds  # environments unused this long go at a prepare
        self._envs: dict[str, Path] = {}  # fleet id -> its environment

    def prepare(self, fleet: FleetRecord, model_dir: Path, progress: Progress) -> None:
        """Build (or reuse) the fleet's environment and the server's copy, within the fleet's
        startup limit."""
        deadline = time.monotonic() + fleet.startup_timeout_seconds
        requirements = requirements_of(fleet, model_dir)
        self._envs[fleet.fleet_id] = self.environments.ensure(requirements, deadline, progress)
        self.server_copy()
        try:
            self.environments.collect(self.unused_seconds, keep=self._envs.values())
        except OSError:
            log.exception("model environment collection failed")

    def server_copy(self) -> Path:
        """The serving package, copied once per version of its code into the cache (atomic)."""
        final = self.environments.cache_dir / f"server-{_server_digest()}"
        if (final / SERVER_PACKAGE / "__main__.py").is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".server-", dir=final.parent))
        try:
            shutil.copytree(
                Path(serving.__file__).parent,
                tmp / SERVER_PACKAGE,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            with contextlib.suppress(OSError):  # lost a race: the other copy is the same
                os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def _env_dir(self, spec: InstanceSpec) -> Path:
        env = self._envs.get(spec.fleet.fleet_id)
        if env is None:  # a relaunch by an agent that did not prepare this fleet (restarted)
            requirements = requirements_of(spec.fleet, spec.model_dir)
            if not self.environments.ready(requirements):
                raise ProvisionFailed("the model environment of this fleet is not built")
            env = self.environments.path(requirements)
            self._envs[spec.fleet.fleet_id] = env
        return env

    def start(self, spec: InstanceSpec) -> int:
        log_path = spec.log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # A launch means no recorded process of this instance runs; one that does was started by
        # an agent killed before it recorded the pid. It holds a port and would run forever.
        for stale in servers_started_in(log_path.parent, spec.instance_id):
            self.signal(stale, signal.SIGKILL)
        env_dir = self._env_dir(spec)
        command = server_command(
            env_dir / "bin" / "python",
            self.server_copy(),
            spec.instance_id,
            spec.model_dir,
            spec.port,
            image_of(spec.fleet).flavour,
            spec.host,
            spec.private_network,
        )
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                command,
                env=model_environment(spec, env_dir),
                cwd=str(log_path.parent),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self._children[proc.pid] = proc
        return proc.pid

    def release(self, instance_id: str) -> None:
        """A process holds nothing once it has exited."""

    def alive(self, pid: int | None, instance_id: str) -> bool:
        if pid is None:
            return False
        child = self._children.get(pid)
        if child is not None:
            if child.poll() is not None:  # reaps our own dead children
                del self._children[pid]
                return False
            # Our own unreaped child cannot be a recycled pid; and just after the fork its
            # cmdline is still ours, not the server's, so /proc would wrongly say "gone".
            return True
        return is_our_server(pid, instance_id)

    def signal(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            del self._children[pid]


def is_our_server(pid: int, instance_id: str) -> bool:
    """The pid runs the model server for this instance id and is not a zombie. Checked through
    /proc (Linux): a pid recycled by an unrelated process must never be adopted or killed."""
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if state in ("Z", "X"):
        return False
    return SERVER_MODULE.encode() in cmdline and instance_id.encode() in cmdline


def servers_started_in(folder: Path, instance_id: str) -> list[int]:
    """Live model servers of `instance_id` whose working directory is `folder` (the instance's
    own folder under this home, so another home's instance of the same id is never matched)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != folder.resolve():
                continue
        except OSError:
            continue
        if is_our_server(int(entry.name), instance_id):
            found.append(int(entry.name))
    return found


def ping(host: str, port: int | None, timeout: float = 2.0) -> bool:
    """`GET /ping` answered 200 within `timeout` seconds (the container contract's probe).
    A raw socket: the agent probes every instance every second and needs no client state."""
    if port is None:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n\r\n")
            head = b""
            while b"\r\n" not in head and len(head) < 1024:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return False
    return head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))


def port_is_free(host: str, port: int) -> bool:
    """Bindable now (with SO_REUSEADDR, as the server binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# The name the tests and older callers know.
ProcessLauncher = ProcessRuntime
