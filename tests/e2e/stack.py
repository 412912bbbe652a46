"""The whole Greenshift stack as a test fixture: `greenshift up` in a subprocess, on free ports of
127.0.0.1, in a throwaway home. Stopped (and checked to leave no process behind) by the fixture."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from greenshift.settings import Settings
from tests.ports import free_port


@dataclass
class Stack:
    settings: Settings
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    # More GREENSHIFT_* variables for every process of the stack (quotas, access keys, ...).
    extra_env: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        url = self.settings.runtime_url if service == "sagemaker-runtime" else self.settings.api_url
        return boto3.client(
            service,
            endpoint_url=url,
            region_name=self.settings.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=30),
        )

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GREENSHIFT_HOME": str(self.settings.home_dir),
            "GREENSHIFT_API_PORT": str(self.settings.api_port),
            "GREENSHIFT_RUNTIME_PORT": str(self.settings.runtime_port),
            "GREENSHIFT_STATS_PORT": str(self.settings.stats_port),
            "GREENSHIFT_TEMPORAL_PORT": str(self.settings.temporal_port),
            "GREENSHIFT_UI_PORT": str(self.settings.ui_port),
            "GREENSHIFT_INSTANCE_PORT_BASE": str(self.settings.instance_port_base),
            **(
                {"GREENSHIFT_DATABASE_URL": self.settings.database_url}
                if self.settings.database_url
                else {}
            ),
            **self.extra_env,
        }


@contextlib.contextmanager
def running_stack(
    home: Path,
    database_url: str | None = None,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    settings = Settings(
        home=home,
        api_port=free_port(),
        runtime_port=free_port(),
        stats_port=free_port(),
        temporal_port=free_port(),
        ui_port=free_port(),
        # Instances take the first bindable port from here up; keep parallel runs apart.
        instance_port_base=21000 + (os.getpid() % 200) * 50,
        database_url=database_url,
    )
    stack = Stack(settings=settings, process=None, extra_env=dict(extra_env or {}))  # type: ignore[arg-type]
    stack.process = subprocess.Popen(
        [sys.executable, "-m", "greenshift", "up"],
        env=stack.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()

    def pump() -> None:
        assert stack.process.stdout is not None
        with stack.process.stdout:  # closed here: an unclosed pipe is a ResourceWarning (error)
            for line in stack.process.stdout:
                stack.output.append(line.rstrip())
                if line.startswith("Greenshift is up."):
                    ready.set()

    pumping = threading.Thread(target=pump, daemon=True)
    pumping.start()
    try:
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if stack.process.poll() is not None or time.monotonic() > deadline:
                logs = _logs(settings)
                raise RuntimeError(
                    "greenshift up did not start:\n" + "\n".join(stack.output) + logs
                )
        yield stack
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.process.pid, signal.SIGTERM)
        try:
            stack.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait(timeout=10)
        # The pump ends at EOF; then the pipe is closed (left open, it warns as unclosed).
        pumping.join(timeout=10)
        if stack.process.stdout is not None:
            stack.process.stdout.close()


def _logs(settings: Settings) -> str:
    out = []
    for log in sorted((settings.home_dir / "logs").glob("*.log")):
        out.append(
            f"\n--- {log.name} ---\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        )
    return "".join(out)


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions `text` (e.g. the stack's home): leftovers after a stop."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except (OSError, PermissionError):
            continue
        if text in cmdline or text in environ:
            found.append(int(entry.name))
    return found
