"""`make demo` is what a new user meets first: run it for real, on free ports, and hold it to its
promise (the CANARY deployment loses no request, the faulty LINEAR one rolls back by itself, and
the timeline picture is written)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import free_port, processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def test_demo_tells_its_story(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    picture = tmp_path / "timeline.png"
    env = {
        **os.environ,
        "GREENSHIFT_DEMO_HOME": str(home),
        "GREENSHIFT_DEMO_TIMELINE": str(picture),
        "GREENSHIFT_API_PORT": str(free_port()),
        "GREENSHIFT_RUNTIME_PORT": str(free_port()),
        "GREENSHIFT_STATS_PORT": str(free_port()),
        "GREENSHIFT_TEMPORAL_PORT": str(free_port()),
        "GREENSHIFT_UI_PORT": str(free_port()),
        "GREENSHIFT_INSTANCE_PORT_BASE": str(23000 + (os.getpid() % 100) * 20),
    }
    done = subprocess.run(
        [sys.executable, "-m", "greenshift.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "CANARY to echo-v2    succeeded" in out
    canary_line = next(line for line in out.splitlines() if "CANARY to echo-v2  " in line)
    assert canary_line.rstrip().endswith("failed requests: 0"), canary_line
    assert "LINEAR to faulty     rolled back" in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000
    assert processes_mentioning(str(home)) == []
