"""The control API as a real process for one test: started on a free port with the given
environment, awaited until it answers, stopped (SIGTERM, then SIGKILL) on exit. Its stderr is
kept for the test to read once it has stopped."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


@dataclass
class RunningApi:
    url: str
    stderr: str = ""  # what the process wrote to stderr, once it has stopped


@contextmanager
def running_api(env: dict[str, str], port: int) -> Iterator[RunningApi]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenshift.api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = RunningApi(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(api.url + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the API process did not start") from None
                time.sleep(0.1)
        yield api
    finally:
        proc.terminate()
        try:
            _, api.stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, api.stderr = proc.communicate()
