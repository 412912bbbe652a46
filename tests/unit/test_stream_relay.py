"""The stream relay (greenshift/dataplane/relay.py) against a raw upstream on a unix socket: how
it frames a plain answer, and what it passes on when the upstream's stream breaks, including in
the middle of an event."""

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
from greenshift.dataplane.relay import BodyHashRelay, Relay, StreamRelay, needs_framing
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


def serving(relay: Relay) -> Iterator[Relay]:
    stop = threading.Event()
    relay.bind()
    running = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    running.start()
    yield relay
    stop.set()
    running.join(10)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    yield from serving(StreamRelay(tmp_path / "relay.sock", tmp_path / "upstream.sock"))


@pytest.fixture
def body_hash_relay(tmp_path: Path) -> Iterator[Relay]:
    yield from serving(BodyHashRelay(tmp_path / "hash.sock", tmp_path / "hashed.sock"))


def answer_through(relay: Relay, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """The relay's answer (status, headers, body) when the upstream answers `head` + `body`."""
    upstream = _Upstream(relay.upstream, head, body)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(relay.listen))
    conn = http.client.HTTPConnection("localhost", timeout=10)
    conn.sock = sock
    try:
        conn.request("POST", "/endpoints/Chat/invocations-response-stream", body=b"{}")
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()
        upstream.close()


def through(relay: Relay, head: bytes, body: bytes) -> tuple[int, bytes]:
    status, _, data = answer_through(relay, head, body)
    return status, data


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
    relay: Relay,
) -> None:
    one, two = payload_part(b"0 "), payload_part(b"1 ")
    # the upstream's connection closes in the middle of the second event's chunk
    status, body = through(relay, STREAM_HEAD, chunk(one) + chunk(one + two)[:-9])
    assert status == 200  # a stream's status left long before it broke
    got = events(body)  # a torn event would fail its CRC here
    assert [name for name, _ in got] == ["PayloadPart", "PayloadPart", "ModelStreamError"]
    assert json.loads(got[-1][1])["ErrorCode"] == "StreamBroken"


def test_a_stream_that_ends_is_passed_on_whole_without_an_error(relay: Relay) -> None:
    parts = [payload_part(b"%d " % i) for i in range(5)]
    # one event split over two chunks, as a proxy may pass it on
    pieces = [parts[0] + parts[1][:5], parts[1][5:], *parts[2:]]
    status, body = through(relay, STREAM_HEAD, b"".join(map(chunk, pieces)) + b"0\r\n\r\n")
    assert status == 200
    assert events(body) == [("PayloadPart", b"%d " % i) for i in range(5)]


def test_an_answer_with_a_length_is_passed_on_as_it_is(relay: Relay) -> None:
    error = b'{"message":"Received error (500) from model"}'
    head = (
        b"HTTP/1.1 424 Failed Dependency\r\nContent-Type: application/json\r\n"
        b"x-amzn-ErrorType: ModelError\r\nContent-Length: %d\r\n\r\n" % len(error)
    )
    assert through(relay, head, error) == (424, error)


def test_an_event_longer_than_the_bound_is_passed_on_as_it_comes_to_the_end(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_module, "MAX_HELD_EVENT_BYTES", 40)
    big, small = payload_part(b"x" * 100), payload_part(b"after")
    pieces = [big[:30], big[30:80], big[80:] + small[:10], small[10:]]
    status, body = through(relay, STREAM_HEAD, b"".join(map(chunk, pieces)) + b"0\r\n\r\n")
    assert status == 200
    assert body == big + small  # every byte, in order, once held back no more


def test_a_stream_that_ends_inside_an_event_ends_with_stream_broken(relay: Relay) -> None:
    one, two = payload_part(b"0 "), payload_part(b"1 ")
    status, body = through(relay, STREAM_HEAD, chunk(one + two[:9]) + b"0\r\n\r\n")
    assert status == 200
    got = events(body)
    assert [name for name, _ in got] == ["PayloadPart", "ModelStreamError"]
    assert json.loads(got[-1][1])["ErrorCode"] == "StreamBroken"


# --- a plain answer (a container's, as SageMaker's container contract has it) -------------------

PLAIN_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("status", "content_type", "framed"),
    [
        (200, "text/plain", True),
        (200, None, True),
        (206, "application/json", True),
        (200, CONTENT_TYPE, False),
        (200, " Application/Vnd.Amazon.EventStream; charset=x", False),
        (424, "application/json", False),
        (503, "text/plain", False),
    ],
)
def test_a_success_not_already_an_event_stream_is_framed(
    status: int, content_type: str | None, framed: bool
) -> None:
    assert needs_framing(status, content_type) is framed


def test_a_plain_answer_is_framed_piece_by_piece(relay: Relay) -> None:
    pieces = [b"0 ", b"1 ", b"2 "]
    status, headers, body = answer_through(
        relay, PLAIN_HEAD, b"".join(map(chunk, pieces)) + b"0\r\n\r\n"
    )
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE
    assert headers["X-Amzn-SageMaker-Content-Type"] == "text/plain"
    # The upstream sent all three at once: they may arrive as one piece, framed as one part.
    got = events(body)
    assert {name for name, _ in got} == {"PayloadPart"}
    assert b"".join(payload for _, payload in got) == b"".join(pieces)


def test_a_plain_answer_with_a_length_is_framed_too(relay: Relay) -> None:
    text = b"the whole answer"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(text)
    status, headers, body = answer_through(relay, head, text)
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE
    assert headers["X-Amzn-SageMaker-Content-Type"] == "application/json"  # none given
    assert "Content-Length" not in headers
    assert events(body) == [("PayloadPart", text)]


def test_a_plain_answer_cut_short_ends_with_stream_broken(relay: Relay) -> None:
    # the upstream's connection closes inside its second chunk
    status, body = through(relay, PLAIN_HEAD, chunk(b"0 ") + chunk(b"1 and more")[:-6])
    assert status == 200
    got = events(body)
    assert got[-1][0] == "ModelStreamError"
    assert json.loads(got[-1][1])["ErrorCode"] == "StreamBroken"
    assert b"".join(p for name, p in got if name == "PayloadPart") in (b"0 ", b"0 1 and ")


def test_the_body_hash_relay_passes_a_plain_answer_as_it_is(body_hash_relay: Relay) -> None:
    """It relays plain invocations (large signed bodies): their answers are never framed."""
    status, headers, body = answer_through(
        body_hash_relay, PLAIN_HEAD, chunk(b"0 ") + chunk(b"1 ") + b"0\r\n\r\n"
    )
    assert status == 200
    assert headers["Content-Type"] == "text/plain"
    assert body == b"0 1 "
