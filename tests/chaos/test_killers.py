"""The hang fault on a real process: stopped, seen as hung, continued only while it still runs
the command it ran when stopped (a reused pid is never signalled)."""

from __future__ import annotations

import subprocess
import time

from tests.harness.chaos import killers


def test_hang_is_seen_and_released() -> None:
    process = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while killers.cmdline(process.pid) != ["sleep", "30"] and time.monotonic() < deadline:
            time.sleep(0.01)  # until it has exec'd: a component is stopped long after its start
        stopped = killers.hang([process.pid])
        assert stopped == {process.pid: ["sleep", "30"]}
        deadline = time.monotonic() + 5
        while not killers.still_hung(stopped) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert killers.still_hung(stopped) == [process.pid]
        assert killers.release(stopped) == [process.pid]
        deadline = time.monotonic() + 5
        while killers.still_hung(stopped) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert killers.still_hung(stopped) == []
        # Another command under the recorded pid (reused): neither hung nor continued.
        assert killers.release({process.pid: ["not", "this"]}) == []
        assert killers.still_hung({process.pid: ["not", "this"]}) == []
    finally:
        process.kill()
        process.wait(timeout=5)
    assert killers.still_hung(stopped) == []  # gone
