"""The model server as a process on 127.0.0.1: the example models, errors, custom attributes,
keep-alive and the graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"

Start = Callable[..., tuple[subprocess.Popen[bytes], str]]


def wait_ping(url: str, expect: int = 200, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{url}/ping", timeout=2).status_code
            if last == expect:
                return
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"/ping never answered {expect}: {last!r}")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def run(
        model_dir: Path, env: dict[str, str] | None = None, ready: int | None = 200
    ) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        environ = {
            **os.environ,
            **(env or {}),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "PYTHONPATH": str(ROOT),
        }
        log = (tmp_path / f"server-{port}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "greenshift.fleet.model_server", "--model-dir", str(model_dir)],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        if ready is not None:
            wait_ping(url, ready)
        return proc, url

    yield run
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_echo_models_answer_their_version(start: Start) -> None:
    for version in ("v1", "v2"):
        _, url = start(MODELS / f"echo-{version}")
        response = httpx.post(f"{url}/invocations", json={"x": [1, 2]})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"version": version, "input": {"x": [1, 2]}}


def test_faulty_is_healthy_but_every_invocation_is_a_500_with_the_message(start: Start) -> None:
    _, url = start(MODELS / "faulty")
    assert httpx.get(f"{url}/ping").status_code == 200
    response = httpx.post(f"{url}/invocations", json={})
    assert response.status_code == 500
    assert "every invocation fails" in response.text


def test_slow_answers_after_slow_ms(start: Start) -> None:
    _, url = start(MODELS / "slow", {"SLOW_MS": "300"})
    began = time.monotonic()
    response = httpx.post(f"{url}/invocations", json={"a": 1})
    assert time.monotonic() - began >= 0.3
    assert response.json() == {"version": "slow", "input": {"a": 1}}


def test_never_ready_never_passes_ping(start: Start) -> None:
    proc, url = start(MODELS / "never-ready", ready=503)
    for _ in range(5):
        assert httpx.get(f"{url}/ping", timeout=2).status_code == 503
        time.sleep(0.1)
    assert httpx.post(f"{url}/invocations", json={}).status_code == 503
    proc.send_signal(signal.SIGTERM)  # a model_fn stuck for ever does not hold the exit
    assert proc.wait(timeout=10) == 0


def test_custom_attributes_pass_both_ways(start: Start, tmp_path: Path) -> None:
    model = tmp_path / "attrs"
    (model / "code").mkdir(parents=True)
    (model / "code" / "inference.py").write_text(
        "def model_fn(model_dir):\n    return None\n"
        "def predict_fn(data, model, context):\n"
        "    context.response_custom_attributes = 'echo=' + context.custom_attributes\n"
        "    return data\n"
    )
    _, url = start(model)
    response = httpx.post(
        f"{url}/invocations",
        content=b'"x"',
        headers={
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "trace=42",
        },
    )
    assert response.status_code == 200
    assert response.headers["x-amzn-sagemaker-custom-attributes"] == "echo=trace=42"


def test_unknown_paths_and_methods(start: Start) -> None:
    _, url = start(MODELS / "echo-v1")
    assert httpx.get(f"{url}/nope").status_code == 404
    assert httpx.get(f"{url}/invocations").status_code == 405


def test_keep_alive_serves_many_requests_on_one_connection(start: Start) -> None:
    _, url = start(MODELS / "echo-v1")
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
        request = (
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1\r\n\r\n1"
        )
        sock.sendall(request * 3)  # pipelined: answered in order on the same connection
        data = b""
        while data.count(b"HTTP/1.1 200") < 3 or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.count(b'"input": 1}') == 3


def test_sigterm_finishes_in_flight_requests_then_exits(start: Start) -> None:
    proc, url = start(MODELS / "slow", {"SLOW_MS": "1000"})
    results: list[httpx.Response] = []
    client = threading.Thread(
        target=lambda: results.append(httpx.post(f"{url}/invocations", json=[1], timeout=10))
    )
    client.start()
    time.sleep(0.4)  # the request is in the handler now
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"{url}/ping", timeout=2)
    client.join(timeout=10)
    assert [r.status_code for r in results] == [200]
    assert results[0].json() == {"version": "slow", "input": [1]}
    assert results[0].headers.get("connection") == "close"
    assert proc.wait(timeout=10) == 0


def test_bodies_over_the_runtime_limit_are_refused(start: Start) -> None:
    _, url = start(MODELS / "echo-v1")
    response = httpx.post(f"{url}/invocations", content=b"1" * (7 * 1024 * 1024), timeout=10)
    assert response.status_code == 413
    assert httpx.post(f"{url}/invocations", json=1).json()["input"] == 1
