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

# The embedded Temporal dev server (and its UI) listen here only.
TEMPORAL_HOST = "127.0.0.1"


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
    # Since when a running process has failed its health check (None: it answers).
    unhealthy_since: float | None = None
    last_check: float = 0.0
    started_at: float = 0.0
    answered: bool = False  # since its last start: until then it has ready_timeout to answer

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
                    # Loopback whatever --host says: Temporal has no authentication here, and
                    # a workflow started on it is a deployment (issue 14 item 1). Production
                    # Temporal with mTLS: docs/security.md.
                    "--ip",
                    TEMPORAL_HOST,
                    "--port",
                    str(settings.temporal_port),
                    "--ui-port",
                    str(settings.ui_port),
                    "--ui-disable-news-fetch",
                    "--log-level",
                    "warn",
                ],
                health=lambda: port_open(TEMPORAL_HOST, settings.temporal_port),
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

    def __init__(
        self,
        settings: Settings,
        say: Callable[[str], None] = print,
        health_every: float | None = None,
        unhealthy_after: float | None = None,
    ) -> None:
        self.settings = settings
        self.say = say
        # A process that is alive but stops answering (hung, SIGSTOPped, deadlocked) is as gone
        # as a dead one: after `unhealthy_after` seconds of failed checks it is killed and
        # restarted like one that died (issue 14 item 11: a hung evaluator failed open).
        self.health_every = health_every or settings.health_check_seconds
        self.unhealthy_after = unhealthy_after or settings.unhealthy_restart_seconds
        self.stack = components(settings)
        self.run_dir = settings.home_dir / "run"
        self.log_dir = settings.home_dir / "logs"
        self._lock_file: IO[str] | None = None
        self._stopping = False
        self._spawned = False  # a start refused before spawning anything stops nothing

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
        wanted = stack_ports(self.settings)
        busy = [
            f"{name} port {port}"
            for name, (port, _) in wanted.items()
            if port_open("127.0.0.1", port)
        ]
        if busy:
            flags = ", ".join(flag for _, flag in wanted.values())
            raise AlreadyRunningError(
                "In use by another program: " + ", ".join(busy) + ". Free them or pick other ports "
                f"({flags}; or the GREENSHIFT_*_PORT environment variables)."
            )

    def take_over_orphans(self) -> list[str]:
        """Stop, cleanly, the components a supervisor that died (kill -9) left running.

        Called with the home's lock held, so the `up` that wrote `up.json` is gone whatever its
        pid now is. Its components run on in their own sessions holding the ports; each one still
        running the command recorded for it is stopped, last started first. Model instances are
        left alone: the new worker adopts them (FleetAgent.adopt), so endpoints keep serving.
        Nothing is touched before the lock is ours. Returns the names stopped."""
        state = read_state(self.settings)
        if not state or state.get("pid") == os.getpid():
            return []
        left: list[tuple[str, int]] = []
        for name, info in (state.get("components") or {}).items():
            pid = info.get("pid")
            if pid and _runs(pid, info.get("argv") or []):
                left.append((name, int(pid)))
        if left:
            self.say(
                f"  the previous supervisor (pid {state.get('pid')}) died and left "
                + ", ".join(f"{n} (pid {p})" for n, p in left)
                + " running; stopping them, model instances stay and are adopted"
            )
        for name, pid in reversed(left):
            _stop_group(pid)
            self.say(f"  stopped {name} (pid {pid}) left by the previous supervisor")
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "up.json").unlink()
        return [name for name, _ in left]

    def start(self) -> None:
        prepare_home(self.settings)
        self.acquire_lock()
        self.take_over_orphans()
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
                if self._stopping:
                    continue
                if component.alive():
                    self._check_health(component, now)
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

    def _check_health(self, component: Component, now: float) -> None:
        """Kill a running component that has not answered for `unhealthy_after` seconds; the
        loop then restarts it as it restarts one that died."""
        if now - component.last_check < self.health_every:
            return
        component.last_check = now
        if component.health():
            component.unhealthy_since = None
            component.answered = True
            return
        if not component.answered and now - component.started_at < component.ready_timeout:
            return  # still starting (a restart is not waited for as `start` waits)
        if component.unhealthy_since is None:
            component.unhealthy_since = now
            return
        if now - component.unhealthy_since < self.unhealthy_after:
            return
        self.say(
            f"  {component.name} (pid {component.pid}) has not answered its health check for "
            f"{now - component.unhealthy_since:.0f}s; killing it to restart it"
        )
        component.unhealthy_since = None
        _kill(component.process)

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        """Stop the stack in reverse order, then every model instance.

        Only the holder of the home's lock may do this: a refused second `up` must not stop the
        instances or delete the state of the one that runs."""
        self._stopping = True
        if self._lock_file is None:
            return
        if not self._spawned:
            # Refused before starting anything (busy ports): the instances are not ours to stop
            # (they may serve another stack), nor is the state file.
            self._lock_file.close()
            self._lock_file = None
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
        self._spawned = True
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
            # Whatever a component creates in the home (registry.db, temporal.db, logs of
            # instances) is the user's alone (issue 14 item 8).
            umask=0o077,
        )
        component.started_at = time.monotonic()
        component.answered = False
        component.unhealthy_since = None

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
            "ui_url": f"http://{TEMPORAL_HOST}:{self.settings.ui_port}"
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


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the process group: a stopped (SIGSTOP) or hung process cannot act on SIGTERM."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def stack_ports(settings: Settings) -> dict[str, tuple[int, str]]:
    """Every port `up` opens, with the flag that moves it (each also GREENSHIFT_<NAME>_PORT)."""
    ports = {
        "api": (settings.api_port, "--api-port"),
        "runtime": (settings.runtime_port, "--runtime-port"),
        "stats": (settings.stats_port, "--stats-port"),
    }
    if settings.temporal_address is None:
        ports["temporal"] = (settings.temporal_port, "--temporal-port")
        ports["ui"] = (settings.ui_port, "--ui-port")
    return ports


def _runs(pid: int, argv: list[str]) -> bool:
    """Whether `pid` is alive and still runs `argv` (a pid reused by another program is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and [c.decode(errors="replace") for c in cmdline if c] == argv


def _stop_group(pid: int, grace: float = 15.0) -> None:
    """SIGTERM the process group `pid` leads (components run in their own sessions), SIGKILL
    after `grace` seconds. Not our child: poll until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGCONT)  # a stopped process must run to act on SIGTERM
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a process that exited but was not reaped yet is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def supervisor_alive(settings: Settings) -> bool:
    """Whether the `up` recorded in the home's state still runs (its pid runs `greenshift up`)."""
    state = read_state(settings)
    pid = state.get("pid") if state else None
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"up" in cmdline


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
    # Without its supervisor nothing is healthy: no one restarts what dies or stops it all.
    supervised = supervisor_alive(settings)
    report: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        info = state["components"].get(name, {})
        pid = info.get("pid")
        report[name] = {
            "pid": pid,
            "running": pid_alive(pid),
            "healthy": bool(supervised and pid_alive(pid) and check()),
            "supervised": supervised,
            "restarts": info.get("restarts", 0),
        }
    return report


def client_environment(settings: Settings) -> dict[str, str]:
    """The environment to paste so boto3 and the AWS CLI talk to this Greenshift.

    Without access keys any key is accepted, so a placeholder pair does. With keys configured the
    first key's real id is shown; its secret is not printed (banners end up in logs and
    scrollback): the line names where it is configured instead."""
    env = {
        "AWS_ENDPOINT_URL_SAGEMAKER": settings.api_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": settings.runtime_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH": settings.api_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": settings.api_url,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "greenshift",
        "AWS_SECRET_ACCESS_KEY": "greenshift",
    }
    first = (settings.access_keys or "").split(",")[0].strip()
    if first:
        key = first.partition(":")[0].strip()
        env["AWS_ACCESS_KEY_ID"] = key
        env["AWS_SECRET_ACCESS_KEY"] = f"<the secret of {key} in GREENSHIFT_ACCESS_KEYS>"
    return env


class HomeError(RuntimeError):
    """The home cannot be created or written (read-only, not a directory, no permission)."""


# Files in the home that hold everything (models' specs, endpoints, workflow histories).
PRIVATE_FILES = ("registry.db", "temporal.db")


def prepare_home(settings: Settings) -> Path:
    """Make sure the home is usable and private before anything is written to it: 0700, its
    databases (and their -wal/-shm files) 0600, a write that works. Raises HomeError with a
    sentence, never a traceback, when the home is read-only or otherwise unusable."""
    path = settings.home.expanduser()
    try:
        home = settings.home_dir
        info = home.stat()
        # Tighten a home of ours that others can read; never a shared directory (sticky, /tmp).
        if info.st_uid == os.getuid() and info.st_mode & 0o077 and not info.st_mode & 0o1000:
            home.chmod(0o700)
        for name in PRIVATE_FILES:
            for suffix in ("", "-wal", "-shm", "-journal"):
                private = home / f"{name}{suffix}"
                if private.exists() and private.stat().st_mode & 0o077:
                    private.chmod(0o600)
        run = home / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        probe = run / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise HomeError(
            f"Greenshift cannot use {path} as its home ({reason}). Choose a writable directory "
            "with --home or GREENSHIFT_HOME."
        ) from None
    return home


def home_path(settings: Settings) -> Path:
    return settings.home_dir
