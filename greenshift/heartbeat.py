"""Heartbeat files: how a process tells `greenshift up` it is alive, and what is wrong when not.

The worker and the metrics process touch `<home>/run/<name>.alive` every few seconds; the data
plane does after each good tick of its controller (an open runtime port alone could be another
program's). The supervisor counts one fresh if it was touched in the last few seconds. Kept out
of the supervisor package so the processes it watches need not import it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from greenshift.settings import Settings


def heartbeat_path(settings: Settings, name: str) -> Path:
    return settings.home_dir / "run" / f"{name}.alive"


def heartbeat_fresh(settings: Settings, name: str, max_age: float = 10.0) -> bool:
    """Processes without a port touch `<home>/run/<name>.alive` every few seconds."""
    path = heartbeat_path(settings, name)
    try:
        return time.time() - path.stat().st_mtime < max_age
    except FileNotFoundError:
        return False


def touch_heartbeat(settings: Settings, name: str) -> None:
    """Called by the worker and the metrics process every few seconds."""
    path = heartbeat_path(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


# A process that is alive but cannot do its job (the data plane whose HAProxy cannot bind its
# port) says why in `<home>/run/<name>.problem`; `greenshift up` and `greenshift status` print it.
def problem_path(settings: Settings, name: str) -> Path:
    return settings.home_dir / "run" / f"{name}.problem"


def problem_of(settings: Settings, name: str) -> str | None:
    try:
        return problem_path(settings, name).read_text().strip() or None
    except FileNotFoundError:
        return None


_ALERT = re.compile(r"\[ALERT\]\s*(\(\d+\)\s*:\s*)?")


def problem_line(error: str, limit: int = 300) -> str:
    """The line of an error that says what is wrong: HAProxy's last ALERT that names a cause
    (its log tail is in the message; "... Exiting." only says that it gave up), else the first
    line."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    alerts = [_ALERT.split(line, maxsplit=1)[-1] for line in lines if "[ALERT]" in line]
    causes = [a for a in alerts if not a.endswith("Exiting.")] or alerts
    line = f"HAProxy: {causes[-1]}" if causes else (lines[0] if lines else "unknown error")
    return line if len(line) <= limit else line[: limit - 3] + "..."


class HealthReporter:
    """Touches a process's heartbeat (at most every `every` seconds) and keeps its problem file
    equal to its latest problem, written only when that changes."""

    def __init__(self, settings: Settings, name: str, every: float = 1.0) -> None:
        self.settings = settings
        self.name = name
        self.every = every
        self._touched = float("-inf")
        self._problem: str | None = ""  # "": not written yet (a stale file may be there)

    def __call__(self, problem: str | None) -> None:
        if problem != self._problem:
            path = problem_path(self.settings, self.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if problem is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(problem + "\n")
            self._problem = problem
        if problem is None and time.monotonic() - self._touched >= self.every:
            touch_heartbeat(self.settings, self.name)
            self._touched = time.monotonic()
