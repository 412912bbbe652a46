"""The supervisor of `greenshift up`: start every component in order, keep them running, stop
them all.

Each component is a child process with its own log file under `<home>/logs/`. The supervisor waits
until each answers before starting the next, restarts one that dies (with a growing delay) or
stops answering, and on SIGINT/SIGTERM stops them in reverse order, then stops the model
instances, so no process is left behind. A lock file keeps a second `up` off the same home.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Callable
from typing import IO

from greenshift.heartbeat import problem_of
from greenshift.settings import Settings
from greenshift.supervisor import processes
from greenshift.supervisor.components import Component, components, stack_ports
from greenshift.supervisor.environment import settings_env
from greenshift.supervisor.home import prepare_home
from greenshift.supervisor.probes import port_open
from greenshift.supervisor.state import read_state, remove_state, write_state


class AlreadyRunningError(RuntimeError):
    """Another `greenshift up` holds this home."""


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
            if pid and processes.runs(pid, info.get("argv") or []):
                left.append((name, int(pid)))
        if left:
            self.say(
                f"  the previous supervisor (pid {state.get('pid')}) died and left "
                + ", ".join(f"{n} (pid {p})" for n, p in left)
                + " running; stopping them, model instances stay and are adopted"
            )
        for name, pid in reversed(left):
            processes.stop_group(pid)
            self.say(f"  stopped {name} (pid {pid}) left by the previous supervisor")
        remove_state(self.settings)
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
        processes.kill(component.process)

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
                processes.terminate(component.process)
            if component.log:
                component.log.close()
        self._stop_instances()
        remove_state(self.settings)
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
                problem = problem_of(self.settings, component.name)
                self.say(
                    f"  {component.name:<10} starting… {time.monotonic() - started:.0f}s "
                    f"(gives up after {component.ready_timeout:.0f}s)"
                    + (f": {problem}" if problem else "")
                )
            time.sleep(0.2)
        if self._stopping:
            return
        problem = problem_of(self.settings, component.name)
        raise RuntimeError(
            f"{component.name} did not become ready in {component.ready_timeout:.0f}s"
            + (f" ({problem})" if problem else "")
            + f"; see {self.log_dir / (component.name + '.log')}"
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
        write_state(self.settings, self.stack)
