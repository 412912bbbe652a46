"""The built-in runtime: instances as processes of the built-in model server, started detached;
tell whether a pid is still our model server, signal them, probe `/ping`, find free ports. One of
the instance runtimes (greenshift.fleet.runtime.InstanceRuntime).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import greenshift
from greenshift.fleet.runtime import InstanceSpec
from greenshift.ports import Progress
from greenshift.registry.records import FleetRecord

SERVER_MODULE = "greenshift.fleet.model_server"
# The folder holding the `greenshift` package: instances import it from there even when the
# project is not installed into the interpreter (a source checkout).
PROJECT_ROOT = str(Path(greenshift.__file__).resolve().parent.parent)


def server_command(instance_id: str, model_dir: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--model-dir",
        str(model_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--instance-id",
        instance_id,
    ]


class ProcessRuntime:
    """Real processes. Each instance gets its own session (start_new_session): a worker that dies
    or is restarted does not take its instances with it, and a signal reaches the instance's
    whole process group."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def prepare(self, fleet: FleetRecord, model_dir: Path, progress: Progress) -> None:
        """Nothing to prepare yet: instances run Greenshift's own interpreter."""

    def start(self, spec: InstanceSpec) -> int:
        log_path = spec.log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # A launch means no recorded process of this instance runs; one that does was started by
        # an agent killed before it recorded the pid. It holds a port and would run forever.
        for stale in servers_started_in(log_path.parent, spec.instance_id):
            self.signal(stale, signal.SIGKILL)
        env = {**os.environ, **spec.environment}
        python_path = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                server_command(spec.instance_id, spec.model_dir, spec.host, spec.port),
                env={**env, "PYTHONPATH": python_path},
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
        if child is not None and child.poll() is not None:  # reaps our own dead children
            del self._children[pid]
            return False
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
