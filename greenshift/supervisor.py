"""`greenshift up`: start every component on one machine, keep them running, stop them all.

Each component is a child process with its own log file under `<home>/logs/`. The supervisor waits
until each answers before starting the next, restarts one that dies (with a growing delay), and on
SIGINT/SIGTERM stops them in reverse order, then stops the model instances, so no process is left
behind. A lock file keeps a second `up` off the same home.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from greenshift import binaries
from greenshift.settings import Settings

HealthCheck = Callable[[], bool]


class AlreadyRunningError(RuntimeError):
    """Another `greenshift up` holds this home."""


@dataclass
class Component:
    """A process `up` runs and watches."""

    name: str
    argv: list[str]
    health: HealthCheck
    ready_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_restart_at: float = 0.0
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def http_ok(url: str, timeout: float = 1.0, **kwargs: Any) -> bool:
    import httpx

    try:
        response = httpx.request(kwargs.pop("method", "GET"), url, timeout=timeout, **kwargs)
    except httpx.HTTPError:
        return False
    return response.status_code < 500


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that hands `settings` to a child process (GREENSHIFT_*)."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"GREENSHIFT_{name.upper()}"] = str(value)
    env["GREENSHIFT_HOME"] = str(settings.home_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def components(settings: Settings) -> list[Component]:
    """The stack in start order. Temporal is left out when an existing one is configured."""
    py = sys.executable
    host = settings.host
    stack: list[Component] = []
    if settings.temporal_address is None:
        stack.append(
            Component(
                name="temporal",
                argv=[
                    binaries.temporal_cli(),
                    "server",
                    "start-dev",
                    "--db-filename",
                    str(settings.home_dir / "temporal.db"),
                    "--ip",
                    host,
                    "--port",
                    str(settings.temporal_port),
                    "--ui-port",
                    str(settings.ui_port),
                    "--ui-disable-news-fetch",
                    "--log-level",
                    "warn",
                ],
                health=lambda: port_open(host, settings.temporal_port),
                ready_timeout=60,
            )
        )
    stack += [
        Component(
            name="api",
            argv=[py, "-m", "greenshift.api"],
            health=lambda: http_ok(
                settings.api_url + "/",
                method="POST",
                headers={
                    "X-Amz-Target": "SageMaker.ListEndpoints",
                    "Content-Type": "application/x-amz-json-1.1",
                },
                content=b"{}",
            ),
        ),
        Component(
            name="dataplane",
            argv=[py, "-m", "greenshift.dataplane"],
            health=lambda: port_open(host, settings.runtime_port),
        ),
        Component(
            name="metrics",
            argv=[py, "-m", "greenshift.metrics"],
            health=lambda: _heartbeat_fresh(settings, "metrics"),
        ),
        Component(
            name="worker",
            argv=[py, "-m", "worker"],
            health=lambda: _heartbeat_fresh(settings, "worker"),
        ),
    ]
    stack += [_extra_worker(settings, n) for n in range(2, settings.workers + 1)]
    return stack


def _extra_worker(settings: Settings, n: int) -> Component:
    """Worker n of `--workers N`: workflows and activities on the shared queue, no agent (one
    agent per host: the first worker's)."""
    name = f"worker-{n}"
    env = ["env", "GREENSHIFT_WORKER_AGENT=false", f"GREENSHIFT_WORKER_NAME={name}"]
    return Component(
        name=name,
        argv=[*env, sys.executable, "-m", "worker"],
        health=lambda: _heartbeat_fresh(settings, name),
    )


def _heartbeat_fresh(settings: Settings, name: str, max_age: float = 10.0) -> bool:
    """Processes without a port touch `<home>/run/<name>.alive` every few seconds."""
    path = settings.home_dir / "run" / f"{name}.alive"
    try:
        return time.time() - path.stat().st_mtime < max_age
    except FileNotFoundError:
        return False


def touch_heartbeat(settings: Settings, name: str) -> None:
    """Called by the worker and the metrics process every few seconds."""
    path = settings.home_dir / "run" / f"{name}.alive"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


class Supervisor:
    """Runs the stack until asked to stop. `say` receives one line per event worth telling."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say
        self.stack = components(settings)
        self.run_dir = settings.home_dir / "run"
        self.log_dir = settings.home_dir / "logs"
        self._lock_file: IO[str] | None = None
        self._stopping = False

    # --- lifecycle -----------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.run_dir / "up.lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            state = read_state(self.settings)
            pid = state.get("pid") if state else None
            raise AlreadyRunningError(
                f"Greenshift is already running on {self.settings.home_dir}"
                + (f" (pid {pid})" if pid else "")
                + ". Stop it first, or use another --home."
            ) from None
        self._lock_file = lock

    def check_ports_free(self) -> None:
        wanted = {
            "api": self.settings.api_port,
            "runtime": self.settings.runtime_port,
            "stats": self.settings.stats_port,
        }
        if self.settings.temporal_address is None:
            wanted["temporal"] = self.settings.temporal_port
            wanted["ui"] = self.settings.ui_port
        busy = [
            f"{name} port {port}" for name, port in wanted.items() if port_open("127.0.0.1", port)
        ]
        if busy:
            raise AlreadyRunningError(
                "In use by another program: " + ", ".join(busy) + ". Free them or pick other ports "
                "(--api-port, --runtime-port, --temporal-port, --ui-port)."
            )

    def start(self) -> None:
        self.acquire_lock()
        self.check_ports_free()
        env = settings_env(self.settings)
        for component in self.stack:
            if self._stopping:
                return  # Ctrl-C during start-up: the caller stops what has started
            self._spawn(component, env)
            self._wait_ready(component)
            if self._stopping:
                return
            self.say(f"  {component.name:<10} ready (pid {component.pid})")
            self.write_state()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run_forever(self, poll: float = 0.5) -> None:
        """Watch the children until `request_stop()`; restart any that dies."""
        env = settings_env(self.settings)
        while not self._stopping:
            now = time.monotonic()
            for component in self.stack:
                if component.alive() or self._stopping:
                    continue
                if component.next_restart_at == 0.0:
                    code = component.process.returncode if component.process else None
                    delay = min(30.0, 2.0 ** min(component.restarts, 5))
                    component.next_restart_at = now + delay
                    self.say(
                        f"  {component.name} exited (code {code}); restarting in {delay:.0f}s "
                        f"(log: {self.log_dir / (component.name + '.log')})"
                    )
                elif now >= component.next_restart_at:
                    component.restarts += 1
                    component.next_restart_at = 0.0
                    self._spawn(component, env)
                    self.write_state()
            time.sleep(poll)

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        """Stop the stack in reverse order, then every model instance.

        Only the holder of the home's lock may do this: a refused second `up` must not stop the
        instances or delete the state of the one that runs."""
        self._stopping = True
        if self._lock_file is None:
            return
        for component in reversed(self.stack):
            if component.alive():
                self.say(f"  stopping {component.name}")
                _terminate(component.process)
            if component.log:
                component.log.close()
        self._stop_instances()
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "up.json").unlink()
        if self._lock_file:
            self._lock_file.close()

    # --- internals -----------------------------------------------------------------------------
    def _spawn(self, component: Component, env: dict[str, str]) -> None:
        if component.log is None:
            component.log = open(self.log_dir / f"{component.name}.log", "ab")
        component.process = subprocess.Popen(
            component.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=component.log,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in the terminal reaches only the supervisor, which then
            # stops the children in order.
            start_new_session=True,
        )

    def _wait_ready(self, component: Component, every: float = 10.0) -> None:
        """Until it answers; says so every `every` seconds, so a slow start is never silent."""
        started = time.monotonic()
        deadline = started + component.ready_timeout
        next_note = started + every
        while time.monotonic() < deadline and not self._stopping:
            if not component.alive():
                log = self.log_dir / f"{component.name}.log"
                raise RuntimeError(f"{component.name} exited during start-up; see {log}")
            if component.health():
                return
            if time.monotonic() >= next_note:
                next_note += every
                self.say(
                    f"  {component.name:<10} starting… {time.monotonic() - started:.0f}s "
                    f"(gives up after {component.ready_timeout:.0f}s)"
                )
            time.sleep(0.2)
        if self._stopping:
            return
        raise RuntimeError(
            f"{component.name} did not become ready in {component.ready_timeout:.0f}s; "
            f"see {self.log_dir / (component.name + '.log')}"
        )

    def _stop_instances(self) -> None:
        try:
            from greenshift.fleet.agent import FleetAgent
            from greenshift.registry.sql import SqlRegistry

            registry = SqlRegistry(self.settings.registry_url, arn_for=self.settings.arn)
            # The records stay: the next `up` relaunches the instances and endpoints come back.
            FleetAgent(registry, self.settings).stop_all()
            self.say("  stopped the model instances")
        except Exception as exc:
            self.say(f"  could not stop model instances: {exc}")

    def write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "home": str(self.settings.home_dir),
            "api_url": self.settings.api_url,
            "runtime_url": self.settings.runtime_url,
            "temporal": self.settings.temporal_target,
            "ui_url": f"http://{self.settings.host}:{self.settings.ui_port}"
            if self.settings.temporal_address is None
            else None,
            "components": {
                c.name: {"pid": c.pid, "restarts": c.restarts, "argv": c.argv} for c in self.stack
            },
        }
        (self.run_dir / "up.json").write_text(json.dumps(state, indent=2))


def _terminate(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def read_state(settings: Settings) -> dict[str, Any] | None:
    path = settings.home_dir / "run" / "up.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def component_health(settings: Settings) -> dict[str, dict[str, Any]]:
    """What `greenshift status` reports: each component, its pid and whether it answers."""
    state = read_state(settings) or {"components": {}}
    checks = {c.name: c.health for c in components(settings)}
    report: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        info = state["components"].get(name, {})
        pid = info.get("pid")
        report[name] = {
            "pid": pid,
            "running": pid_alive(pid),
            "healthy": bool(pid_alive(pid) and check()),
            "restarts": info.get("restarts", 0),
        }
    return report


def client_environment(settings: Settings) -> dict[str, str]:
    """The environment to paste so boto3 and the AWS CLI talk to this Greenshift."""
    return {
        "AWS_ENDPOINT_URL_SAGEMAKER": settings.api_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": settings.runtime_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH": settings.api_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": settings.api_url,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "greenshift",
        "AWS_SECRET_ACCESS_KEY": "greenshift",
    }


def home_path(settings: Settings) -> Path:
    return settings.home_dir
