"""`greenshift up` over a home whose supervisor died (kill -9), and `status` without one
(issue 14 item 12); every port `up` opens has a flag named in the busy-port message (issue 12
item 5)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.settings import Settings
from greenshift.supervisor import (
    AlreadyRunningError,
    Supervisor,
    component_health,
    pid_alive,
    stack_ports,
)
from tests.e2e.stack import free_port


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def settings_on_free_ports(home: Path, **overrides: int) -> Settings:
    ports = {
        "api_port": free_port(),
        "runtime_port": free_port(),
        "stats_port": free_port(),
        "temporal_port": free_port(),
        "ui_port": free_port(),
    }
    return Settings(home=home, **{**ports, **overrides})


def test_the_busy_port_message_names_every_flag(tmp_path: Path, listener: socket.socket) -> None:
    settings = settings_on_free_ports(tmp_path / "home", stats_port=listener.getsockname()[1])
    with pytest.raises(AlreadyRunningError) as info:
        Supervisor(settings, say=lambda _: None).check_ports_free()
    message = str(info.value)
    assert f"stats port {settings.stats_port}" in message
    for _, flag in stack_ports(settings).values():
        assert flag in message
    assert "--stats-port" in message


def test_a_start_refused_for_busy_ports_stops_no_model_instance(
    tmp_path: Path, listener: socket.socket
) -> None:
    settings = settings_on_free_ports(tmp_path / "home", api_port=listener.getsockname()[1])
    lines: list[str] = []
    supervisor = Supervisor(settings, say=lines.append)
    with pytest.raises(AlreadyRunningError):
        supervisor.start()
    supervisor.stop()  # what `up` does on the refusal
    assert not any("model instances" in line for line in lines), lines


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    return gone.pid


def test_components_left_by_a_dead_supervisor_are_stopped_and_strangers_are_not(
    tmp_path: Path,
) -> None:
    settings = settings_on_free_ports(tmp_path / "home")
    orphan, stranger = _sleeper(), _sleeper()
    try:
        run = settings.home_dir / "run"
        run.mkdir(parents=True)
        state = {
            "pid": _dead_pid(),
            "components": {
                "metrics": {"pid": orphan.pid, "argv": orphan.args},
                # The pid was reused by another program: not ours, never touched.
                "worker": {"pid": stranger.pid, "argv": [sys.executable, "-m", "worker"]},
            },
        }
        (run / "up.json").write_text(json.dumps(state))
        lines: list[str] = []
        supervisor = Supervisor(settings, say=lines.append)
        supervisor.acquire_lock()
        assert supervisor.take_over_orphans() == ["metrics"]
        orphan.wait(timeout=30)
        assert pid_alive(stranger.pid)
        assert not (run / "up.json").exists()
        assert any("model instances stay" in line for line in lines), lines
        supervisor.stop()
    finally:
        for process in (orphan, stranger):
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def test_status_is_never_healthy_without_a_supervisor(
    tmp_path: Path, listener: socket.socket
) -> None:
    settings = settings_on_free_ports(tmp_path / "home", runtime_port=listener.getsockname()[1])
    run = settings.home_dir / "run"
    run.mkdir(parents=True)
    # The data plane's pid runs and its port answers, but the supervisor is dead.
    state = {"pid": _dead_pid(), "components": {"dataplane": {"pid": os.getpid()}}}
    (run / "up.json").write_text(json.dumps(state))
    report = component_health(settings)
    assert report["dataplane"]["running"] is True
    assert report["dataplane"]["healthy"] is False
    assert report["dataplane"]["supervised"] is False
