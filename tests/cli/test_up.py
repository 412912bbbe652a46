"""`greenshift up` and `greenshift status` as an operator meets them: it starts, reports, refuses a
second copy, restarts what dies, and stops everything (model instances included) on a signal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tests.cli.cli import command, run, unstarted, wait_for
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack, processes_mentioning, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

COMPONENTS = ["temporal", "api", "dataplane", "metrics", "worker"]


def status(stack: Stack) -> dict[str, dict[str, object]]:
    result = run(stack, "status", "--json", timeout=30)
    report: dict[str, dict[str, object]] = json.loads(result.out)
    return report


def test_up_prints_each_component_as_it_becomes_ready(stack: Stack) -> None:
    wait_for("the banner's end", lambda: any("Ctrl-C stops" in x for x in stack.output), 10)
    ready = [
        line.split()[0] for line in stack.output if line.strip().endswith(")") and " ready " in line
    ]
    assert ready == COMPONENTS
    assert any(stack.settings.api_url in line for line in stack.output)
    assert f"  export AWS_ENDPOINT_URL_SAGEMAKER={stack.settings.api_url}" in stack.output


def test_status_reports_every_component_healthy_with_its_pid(stack: Stack) -> None:
    result = run(stack, "status", "--json", timeout=30)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert sorted(report) == sorted(COMPONENTS)
    for name, info in report.items():
        assert info["healthy"] is True and info["problem"] is None, (name, info)
        assert isinstance(info["pid"], int) and info["pid"] > 0, (name, info)
    text = run(stack, "status", timeout=30)
    assert text.code == 0 and text.out.count("healthy") == len(COMPONENTS)


def test_the_embedded_temporal_keeps_its_file_in_wal_mode(stack: Stack) -> None:
    """SQLite's rollback journal costs the dev server a third more CPU per deployment
    (components.TEMPORAL_SQLITE_PRAGMAS); the journal mode is kept in the file itself."""
    path = stack.settings.home_dir / "temporal.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_a_second_up_on_the_same_home_refuses(stack: Stack) -> None:
    result = run(stack, "up", timeout=60)
    assert result.code == 2
    assert f"already running on {stack.settings.home_dir}" in result.err
    assert f"pid {stack.process.pid}" in result.err
    # The refused copy started nothing and left the running one alone.
    assert all(info["healthy"] for info in status(stack).values())


def test_a_killed_component_is_restarted(stack: Stack) -> None:
    before = status(stack)["metrics"]
    os.kill(int(before["pid"]), signal.SIGKILL)  # type: ignore[call-overload]

    def restarted() -> dict[str, object] | None:
        now = status(stack)["metrics"]
        return now if now["pid"] != before["pid"] and now["healthy"] else None

    after = wait_for("metrics to be restarted", restarted, timeout=60, every=1.0)
    assert after["restarts"] == int(before["restarts"]) + 1  # type: ignore[call-overload]
    assert any("metrics exited" in line for line in stack.output)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_everything_model_instances_included(
    tmp_path: Path, signum: signal.Signals
) -> None:
    home = tmp_path / "home"
    with running_stack(home) as stack:
        sm = stack.client("sagemaker")
        create_model(sm, "echo-v1", "echo-v1")
        create_config(sm, "stop-v1", "echo-v1", count=1)
        sm.create_endpoint(EndpointName="stop", EndpointConfigName="stop-v1")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="stop", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        components = {int(info["pid"]) for info in status(stack).values()}  # type: ignore[call-overload]
        others = set(processes_mentioning(str(home))) - components - {stack.process.pid}
        assert others, "expected a model instance process besides the components"

        stack.process.send_signal(signum)  # the supervisor alone, as Ctrl-C or `kill` would
        try:
            code = stack.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("greenshift up did not stop within 90 s")
        assert code == 0
        wait_for("'Stopped.'", lambda: "Stopped." in stack.output, 10)
        assert processes_mentioning(str(home)) == []


def test_ctrl_c_during_start_up_stops_what_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = unstarted(home).env()
    process = subprocess.Popen(
        command("up"), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.append(line.rstrip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        wait_for("the first ready line", lambda: any(" ready " in x for x in lines), 60)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    reader.join(timeout=10)
    assert code == 0
    assert "Greenshift is up." not in lines and lines[-1] == "Stopped."
    assert processes_mentioning(str(home)) == []


def test_a_stop_with_nobody_reading_stdout_still_stops_everything(tmp_path: Path) -> None:
    """The terminal or parent process that read `up`'s output is gone (found when a killed bench
    left a whole stack running): printing "Stopping" raised BrokenPipeError and skipped the stop."""
    home = tmp_path / "home"
    env = unstarted(home).env()
    process = subprocess.Popen(
        command("up"), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Greenshift is up."):
                break
        process.stdout.close()  # nobody reads any more: the next write is a broken pipe
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    try:
        wait_for("every process stopped", lambda: processes_mentioning(str(home)) == [], 15)
    finally:
        for pid in processes_mentioning(str(home)):  # a failed stop must not leak the stack
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
