"""Running the `greenshift` command as a subprocess against a test stack, with a bound."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from greenshift.settings import Settings
from tests.e2e.stack import Stack, free_port

T = TypeVar("T")


@dataclass
class Result:
    code: int
    out: str
    err: str


def unstarted(home: Path) -> Stack:
    """A stack on free ports that nobody started yet: for tests that run `up` themselves."""
    settings = Settings(
        home=home,
        api_port=free_port(),
        runtime_port=free_port(),
        stats_port=free_port(),
        temporal_port=free_port(),
        ui_port=free_port(),
    )
    return Stack(settings=settings, process=None)  # type: ignore[arg-type]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "greenshift", *args]


def run(stack: Stack, *args: str, timeout: float = 60) -> Result:
    """`greenshift ARGS` with the stack's environment; raises if it outlives `timeout`."""
    done = subprocess.run(
        command(*args),
        env=stack.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def start(stack: Stack, *args: str) -> subprocess.Popen[str]:
    """`greenshift ARGS` in the background (the caller waits for it with a timeout)."""
    return subprocess.Popen(
        command(*args),
        env=stack.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float) -> Result:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
        raise AssertionError(f"still running after {timeout}s:\n{out}\n{err}") from None
    return Result(process.returncode, out, err)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.3) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
