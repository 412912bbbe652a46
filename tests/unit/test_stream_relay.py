"""The stream relay (greenshift/dataplane/relay.py) against a raw upstream on a unix socket: what
it passes on when the upstream's event stream breaks, including in the middle of an event."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.eventstream import EventStreamBuffer

from greenshift.dataplane import relay as relay_module
from greenshift.dataplane.relay import StreamRelay
from greenshift.fleet.serving.eventstream import CONTENT_TYPE, payload_part, whole_messages

pytestmark = pytest.mark.timeout(30)


def test_whole_messages_splits_after_the_last_whole_message() -> None:
    one, two = payload_part(b"first"), payload_part(b"second part")
    assert whole_messages(one + two) == (one + two, b"")
    assert whole_messages(one + two[:7]) == (one, two[:7])
    assert whole_messages(one[:3]) == (b"", one[:3])
    assert whole_messages(b"") == (b"", b"")


class _Upstream:
    """Answers one request on a unix socket with `head` and then `body` (raw bytes), and closes."""

    def __init__(self, path: Path, head: bytes, body: bytes) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.answer = head + body
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            conn.sendall(self.answer)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[StreamRelay]:
    stop = threading.Event()
    relay = StreamRelay(tmp_path / "relay.sock", tmp_path / "upstream.sock")
    relay.bind()
    running = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    running.start()
    yield relay
    stop.set()
    running.join(10)


def through(relay: StreamRelay, head: bytes, body: bytes) -> tuple[int, bytes]:
    upstream = _Upstream(relay.upstream, head, body)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(relay.listen))
    conn = http.client.HTTPConnection("localhost", timeout=10)
    conn.sock = sock
    try:
        conn.request("POST", "/endpoints/Chat/invocations-response-stream", body=b"{}")
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()
        upstream.close()


STREAM_HEAD = (
    f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n"
).encode()


def events(body: bytes) -> list[tuple[str, bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    return [
        (m.headers.get(":event-type") or m.headers[":exception-type"], m.payload) for m in buffer
    ]


def test_a_stream_torn_inside_an_event_ends_after_the_last_whole_one(
    relay: StreamRelay,
) -> None:
    one, two = payload_part(b"0 "), payload_part(b"1 ")
    # the upstream's connection closes in the middle of the second event's chunk
    status, body = through(relay, STREAM_HEAD, chunk(one) + chunk(one + two)[:-9])
    assert status == 200  # a stream's status left long before it broke
    got = events(body)  # a torn event would fail its CRC here
    assert [name for name, _ in got] == ["PayloadPart", "PayloadPart", "ModelStreamError"]
    assert json.loads(got[-1][1])["ErrorCode"] == "StreamBroken"


def test_a_stream_that_ends_is_passed_on_whole_without_an_error(relay: StreamRelay) -> None:
    parts = [payload_part(b"%d " % i) for i in range(5)]
    # one event split over two chunks, as a proxy may pass it on
    pieces = [parts[0] + parts[1][:5], parts[1][5:], *parts[2:]]
    status, body = through(relay, STREAM_HEAD, b"".join(map(chunk, pieces)) + b"0\r\n\r\n")
    assert status == 200
    assert events(body) == [("PayloadPart", b"%d " % i) for i in range(5)]


def test_an_answer_with_a_length_is_passed_on_as_it_is(relay: StreamRelay) -> None:
    error = b'{"message":"Received error (500) from model"}'
    head = (
        b"HTTP/1.1 424 Failed Dependency\r\nContent-Type: application/json\r\n"
        b"x-amzn-ErrorType: ModelError\r\nContent-Length: %d\r\n\r\n" % len(error)
    )
    assert through(relay, head, error) == (424, error)


def test_an_event_longer_than_the_bound_is_passed_on_as_it_comes_to_the_end(
    relay: StreamRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_module, "MAX_HELD_EVENT_BYTES", 40)
    big, small = payload_part(b"x" * 100), payload_part(b"after")
    pieces = [big[:30], big[30:80], big[80:] + small[:10], small[10:]]
    status, body = through(relay, STREAM_HEAD, b"".join(map(chunk, pieces)) + b"0\r\n\r\n")
    assert status == 200
    assert body == big + small  # every byte, in order, once held back no more


def test_a_stream_that_ends_inside_an_event_ends_with_stream_broken(relay: StreamRelay) -> None:
    one, two = payload_part(b"0 "), payload_part(b"1 ")
    status, body = through(relay, STREAM_HEAD, chunk(one + two[:9]) + b"0\r\n\r\n")
    assert status == 200
    got = events(body)
    assert [name for name, _ in got] == ["PayloadPart", "ModelStreamError"]
    assert json.loads(got[-1][1])["ErrorCode"] == "StreamBroken"
