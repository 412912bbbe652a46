"""The `greenshift` command ends without the interpreter's teardown once it made a Temporal client
(greenshift/temporal.py: temporalio/sdk-python#300 aborted `greenshift hosts drain` at exit in
CI, after the drain had succeeded), with the exit status click gave."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from greenshift import temporal
from greenshift.cli import main as cli_main
from greenshift.settings import Settings
from tests.ports import free_port
from worker import main as worker_main

pytestmark = pytest.mark.timeout(60)


class ExitedError(Exception):
    pass


def run_main(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> list[int]:
    """main() with `argv`; the statuses it passed to os._exit (which ends nothing here)."""
    statuses: list[int] = []

    def fake_exit(status: int) -> None:
        statuses.append(status)
        raise ExitedError

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["greenshift", *argv])
    with pytest.raises((ExitedError, SystemExit)):
        cli_main.main()
    return statuses


@pytest.mark.parametrize(("argv", "status"), [(["--help"], 0), (["no-such-command"], 2)])
def test_after_a_client_the_command_skips_the_teardown_with_clicks_status(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], status: int
) -> None:
    monkeypatch.setattr(temporal, "_made_a_client", True)
    assert run_main(monkeypatch, argv) == [status]


def test_without_a_client_the_command_exits_as_click_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(temporal, "_made_a_client", False)
    assert run_main(monkeypatch, ["--help"]) == []


def test_connect_marks_the_process_even_when_the_server_is_not_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(temporal, "_made_a_client", False)
    settings = Settings(temporal_address=f"127.0.0.1:{free_port()}")
    with pytest.raises(RuntimeError):
        asyncio.run(temporal.connect(settings))
    assert temporal.made_a_client()


def test_an_uncaught_error_after_a_client_ends_with_its_traceback_and_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(temporal, "_made_a_client", True)
    statuses: list[int] = []

    def fake_exit(status: int) -> None:
        statuses.append(status)
        raise ExitedError

    def main() -> None:
        raise LookupError("the worker could not go on")

    monkeypatch.setattr(os, "_exit", fake_exit)
    with pytest.raises(ExitedError):
        temporal.run_process(main)
    assert statuses == [1]
    assert "LookupError: the worker could not go on" in capsys.readouterr().err


def test_the_worker_process_ends_through_run_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m worker` with no Temporal to reach: its traceback, then os._exit(1), not the
    interpreter's teardown (the client was made, though it never connected)."""
    monkeypatch.setattr(temporal, "_made_a_client", False)
    monkeypatch.setenv("GREENSHIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GREENSHIFT_TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    statuses: list[int] = []

    def fake_exit(status: int) -> None:
        statuses.append(status)
        raise ExitedError

    monkeypatch.setattr(os, "_exit", fake_exit)
    with pytest.raises(ExitedError):
        worker_main.main()
    assert statuses == [1]
    assert "Failed client connect" in capsys.readouterr().err
