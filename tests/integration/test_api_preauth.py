"""Pre-authentication memory (issue 14 item 4): what an anonymous client can make the API hold.

A chunked body has no Content-Length to refuse up front; before the fix the API buffered all of
it (20 MB in the review) and only then checked its size and its signature. Now the headers are
authenticated before a byte of the body is read, and the size is counted while reading. The
tests speak raw HTTP over a socket so they can see *when* the server answers: before the body
has been sent, or only after.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from greenshift.api.app import MAX_BODY_BYTES
from tests.integration.test_api_env import (  # noqa: F401 - fixtures
    KEY,
    SECRET,
    ApiFactory,
    api_factory_fixture,
)

CHUNK = 64 * 1024
TOTAL = 20 * 1024 * 1024


def _open(url: str, headers: dict[str, str]) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        (
            f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: application/x-amz-json-1.1\r\n{head}\r\n"
        ).encode()
    )
    return sock


def _answered(sock: socket.socket) -> bytes:
    """What the server has sent so far, without waiting (b"" when nothing yet)."""
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def _send_chunked_until_answered(sock: socket.socket, total: int) -> tuple[int, bytes]:
    """Send up to `total` bytes of body in chunks; stop as soon as the server answers.
    Returns (body bytes sent, the start of the answer)."""
    sent = 0
    chunk = b"[" * CHUNK
    sock.settimeout(10)
    while sent < total:
        answer = _answered(sock)
        if answer:
            return sent, answer
        try:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    try:
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    deadline = time.monotonic() + 10
    answer = b""
    while not answer and time.monotonic() < deadline:
        answer = _answered(sock) or b""
        time.sleep(0.01)
    return sent, answer


def test_unsigned_chunked_body_is_refused_before_it_is_read(api_factory: ApiFactory) -> None:
    api = api_factory(access_keys=f"{KEY}:{SECRET}")
    with _open(api.url, {"X-Amz-Target": "SageMaker.ListEndpoints"}) as sock:
        # Not one byte of body sent: the answer must come from the headers alone.
        sock.settimeout(5)
        try:
            answer = sock.recv(65536)
        except TimeoutError:
            pytest.fail("the API waited for the body of an unsigned request")
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b"MissingAuthenticationTokenException" in answer


def test_oversized_chunked_body_is_refused_while_reading(api_factory: ApiFactory) -> None:
    api = api_factory()  # no keys: loopback only, but the size rule holds all the same
    with _open(api.url, {"X-Amz-Target": "SageMaker.ListEndpoints"}) as sock:
        sent, answer = _send_chunked_until_answered(sock, TOTAL)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"larger than" in answer
    # Answered once the limit was passed, long before the 20 MB were all sent (socket buffers
    # on both sides hold a few MB more than the server has read).
    assert MAX_BODY_BYTES < sent < TOTAL - 4 * 1024 * 1024, sent


def test_body_at_the_limit_is_still_served(api_factory: ApiFactory) -> None:
    api = api_factory()
    body = b'{"NameContains": "' + b"a" * (MAX_BODY_BYTES - 100) + b'"}'
    response = api.post("SageMaker.ListEndpoints", body)
    assert b"larger than" not in response.content, response.content[:200]
