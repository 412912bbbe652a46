"""For the logs tests: the control API as a real process over a test home, and fake instance
folders written the way the fleet writes them (`<home>/instances/<id>/server.log`, appended)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config

from tests.api_process import running_api
from tests.harness.api_testing import free_port

T = TypeVar("T")
KEY, SECRET = "AKIDLOGSTEST", "logs-test-secret"


@dataclass
class ApiProcess:
    home: Path
    url: str
    env: dict[str, str]

    def logs(self) -> Any:
        """boto3's `logs` client, unchanged, pointed at the API (SigV4-signed as `logs`)."""
        return boto3.session.Session().client(
            "logs",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(retries={"total_max_attempts": 1}),
        )

    def instance_log(self, instance_id: str) -> Path:
        folder = self.home / "instances" / instance_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "server.log"


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


@contextmanager
def api_process(home: Path) -> Iterator[ApiProcess]:
    """`python -m greenshift.api` on a free port with access keys (so every request is checked
    as SigV4), Temporal pointed at nothing; terminated (then killed) at the end."""
    port = free_port()
    env = {
        **os.environ,
        "GREENSHIFT_HOME": str(home),
        "GREENSHIFT_API_PORT": str(port),
        "GREENSHIFT_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "GREENSHIFT_ACCESS_KEYS": f"{KEY}:{SECRET}",
        "GREENSHIFT_LOG_SHIP_INTERVAL_SECONDS": "0.2",
    }
    env.pop("GREENSHIFT_DATABASE_URL", None)
    with running_api(env, port) as api:
        yield ApiProcess(home, api.url, env)


def eventually(check: Callable[[], T | None], timeout: float = 15, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)
