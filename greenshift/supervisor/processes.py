"""Signals to the supervisor's children and to the components a dead supervisor left running,
and what /proc says about a pid.

Every component runs in its own session, so each is signalled as a process group: whatever it
started goes with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def terminate(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
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


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the process group: a stopped (SIGSTOP) or hung process cannot act on SIGTERM."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def runs(pid: int, argv: list[str]) -> bool:
    """Whether `pid` is alive and still runs `argv` (a pid reused by another program is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and [c.decode(errors="replace") for c in cmdline if c] == argv


def stop_group(pid: int, grace: float = 15.0) -> None:
    """SIGTERM the process group `pid` leads (components run in their own sessions), SIGKILL
    after `grace` seconds. Not our child: poll until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGCONT)  # a stopped process must run to act on SIGTERM
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def running(pid: int) -> bool:
    """Alive and not a zombie (a process that exited but was not reaped yet is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


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
