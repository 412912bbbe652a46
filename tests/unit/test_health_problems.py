"""A process that runs but cannot do its job says why (greenshift.heartbeat): the line picked
from an error, and the problem file kept equal to the latest problem."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from greenshift.cli.main import cli
from greenshift.heartbeat import (
    HealthReporter,
    heartbeat_fresh,
    heartbeat_path,
    problem_line,
    problem_of,
)
from greenshift.settings import Settings

HAPROXY_TAIL = """\
[NOTICE]   (25988) : haproxy version is 2.8.25-5cf5d0683
[ALERT]    (25988) : Binding [/h/dataplane/haproxy.cfg:59] for frontend runtime: cannot bind \
socket (Address already in use) for [127.0.0.1:14534]
[ALERT]    (25988) : [haproxy.main()] Some protocols failed to start their listeners! Exiting.
"""


def test_the_problem_line_is_haproxys_cause_not_its_giving_up() -> None:
    assert problem_line(f"HAProxy failed to start: {HAPROXY_TAIL}") == (
        "HAProxy: Binding [/h/dataplane/haproxy.cfg:59] for frontend runtime: cannot bind "
        "socket (Address already in use) for [127.0.0.1:14534]"
    )
    only_exit = "[ALERT]    (1) : [haproxy.main()] Some protocols failed! Exiting."
    assert problem_line(only_exit) == "HAProxy: [haproxy.main()] Some protocols failed! Exiting."
    assert problem_line("registry locked\nTraceback ...") == "registry locked"
    assert problem_line("") == "unknown error"
    assert len(problem_line("x" * 1000)) == 300


def test_the_reporter_writes_a_problem_once_and_removes_it_when_all_is_well(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path)
    stale = tmp_path / "run" / "dataplane.problem"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run\n")
    report = HealthReporter(settings, "dataplane", every=3600)
    report("port taken")
    assert problem_of(settings, "dataplane") == "port taken"
    assert not heartbeat_fresh(settings, "dataplane")  # a process with a problem is not alive
    written = stale.stat().st_mtime_ns
    os.utime(stale, ns=(written - 10**9, written - 10**9))
    report("port taken")  # the same problem: not written again
    assert stale.stat().st_mtime_ns == written - 10**9
    report(None)
    assert problem_of(settings, "dataplane") is None and not stale.exists()
    assert heartbeat_fresh(settings, "dataplane")
    touched = heartbeat_path(settings, "dataplane").stat().st_mtime_ns
    report(None)  # within `every`: no second touch
    assert heartbeat_path(settings, "dataplane").stat().st_mtime_ns == touched


def test_a_stale_problem_file_is_cleared_by_the_first_good_tick(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "dataplane.problem").write_text("from an earlier run\n")
    HealthReporter(settings, "dataplane")(None)
    assert problem_of(settings, "dataplane") is None


def test_status_prints_a_running_components_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def report(_settings: Settings) -> dict[str, dict[str, Any]]:
        base = {"running": True, "supervised": True, "restarts": 0, "problem": None}
        return {
            "api": {**base, "pid": 11, "healthy": True},
            "dataplane": {**base, "pid": 12, "healthy": False, "problem": "HAProxy: bind"},
        }

    monkeypatch.setattr("greenshift.cli.stack.component_health", report)
    out = CliRunner().invoke(cli, ["status", "--home", str(tmp_path)])
    assert out.exit_code == 1
    assert out.output.splitlines() == [
        "api        healthy  pid 11  restarts 0",
        "dataplane  running  pid 12  restarts 0",
        "           problem: HAProxy: bind",
    ]
