"""The supervisor restarts a component that is alive but stops answering its health check (a
SIGSTOPped evaluator failed open before: only dead processes were restarted)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from greenshift.settings import Settings
from greenshift.supervisor import Component, Supervisor

# Touches a file every 0.1 s: healthy while the file is fresh.
TOUCHER = (
    "import pathlib,sys,time\np=pathlib.Path(sys.argv[1])\nwhile True: p.touch(); time.sleep(0.1)"
)


def test_a_stopped_component_is_killed_and_restarted(tmp_path: Path) -> None:
    alive = tmp_path / "alive"

    def fresh() -> bool:
        try:
            return time.time() - alive.stat().st_mtime < 0.5
        except FileNotFoundError:
            return False

    lines: list[str] = []
    supervisor = Supervisor(
        Settings(home=tmp_path / "home"), say=lines.append, health_every=0.1, unhealthy_after=1.0
    )
    supervisor.log_dir.mkdir(parents=True, exist_ok=True)
    supervisor.run_dir.mkdir(parents=True, exist_ok=True)
    component = Component("metrics", [sys.executable, "-c", TOUCHER, str(alive)], fresh)
    supervisor.stack = [component]
    supervisor._spawn(component, dict(os.environ))
    first = component.pid
    assert first is not None
    thread = threading.Thread(target=supervisor.run_forever, kwargs={"poll": 0.05}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not fresh():
            assert time.monotonic() < deadline, "the component never answered"
            time.sleep(0.05)
        os.kill(first, signal.SIGSTOP)  # alive, but answering nothing
        deadline = time.monotonic() + 20
        while component.pid == first or not fresh():
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
        assert component.restarts == 1
        assert any("has not answered its health check" in line for line in lines), lines
        assert component.alive()
        # The stopped process is gone, not left behind.
        assert not os.path.exists(f"/proc/{first}") or _zombie_or_gone(first)
    finally:
        supervisor.request_stop()
        thread.join(timeout=10)
        if component.process is not None and component.process.poll() is None:
            component.process.kill()
            component.process.wait(timeout=10)
        if component.log:
            component.log.close()


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
