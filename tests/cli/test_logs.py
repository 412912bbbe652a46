"""`greenshift logs`: a real API process over a test home, and the command as a subprocess."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from tests.logs_support import ApiProcess, api_process, append, eventually

I0 = "ep1.AllTraffic.abcdef12.0"
C0 = "ep1.Canary.abcdef12.0"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with api_process(tmp_path_factory.mktemp("logs-cli-home")) as proc:
        append(proc.instance_log(I0), "all traffic says hello\n")
        append(proc.instance_log(C0), "canary says hello\n")
        eventually(lambda: shipped(proc) == 2, what="the first lines shipped")
        yield proc


def shipped(api: ApiProcess) -> int:
    try:
        page = api.logs().filter_log_events(logGroupName="/aws/sagemaker/Endpoints/ep1")
    except ClientError:
        return 0
    return len(page["events"])


def command(api: ApiProcess, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {**api.env, "GREENSHIFT_API_PORT": str(urlparse(api.url).port)}
    return [sys.executable, "-m", "greenshift", "logs", *args], env


def test_logs_prints_an_endpoints_lines_and_filters_by_variant(api: ApiProcess) -> None:
    argv, env = command(api, "ep1")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert any(line.endswith(f"AllTraffic/{I0} all traffic says hello") for line in lines)
    argv, env = command(api, "ep1", "--variant", "Canary", "--since", "1h")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[1] for line in done.stdout.splitlines()] == [
        f"Canary/{C0} canary says hello"
    ]


def test_logs_of_an_endpoint_without_logs_is_an_error(api: ApiProcess) -> None:
    argv, env = command(api, "nope")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "ResourceNotFoundException" in done.stderr


def test_follow_streams_a_line_appended_after_it_started(api: ApiProcess, tmp_path: Path) -> None:
    argv, env = command(api, "ep1", "--variant", "AllTraffic", "--follow", "--interval", "0.2")
    lines: queue.Queue[str] = queue.Queue()

    def next_line(timeout: float = 20) -> str:
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s") from None

    with (
        (tmp_path / "stderr").open("w") as stderr,
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True) as proc,
    ):
        out = proc.stdout
        assert out is not None

        def read_lines() -> None:
            for line in out:
                lines.put(line)

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        try:
            assert next_line().rstrip().endswith("all traffic says hello")
            time.sleep(0.5)  # a few polls with nothing new
            append(api.instance_log(I0), "written after follow started\n")
            assert next_line().rstrip().endswith(f"AllTraffic/{I0} written after follow started")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0, (tmp_path / "stderr").read_text()
            reader.join(timeout=10)
            assert lines.empty(), "nothing was printed twice"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
