"""The data plane's relays: HAProxy hands a request to one of them, and it sends the request back
to one of HAProxy's private frontends (0600 unix sockets only the relays use), passing the answer
on. Each does what HAProxy cannot do itself.

- The body-hash relay (`BodyHashRelay`): with SigV4 on, HAProxy verifies a signature in Lua over
  the body in its buffer (sigv4.py); a body larger than that buffer (up to SageMaker's 6 MB)
  comes here instead, once HAProxy has checked everything that needs no body. The relay reads
  the body, hashes it, and sends the request back with the hash in PAYLOAD_HEADER, where the
  same Lua verifier checks the signature with that hash and routes the request like any other.
- The stream relay (`StreamRelay`): every InvokeEndpointWithResponseStream comes here once it is
  authenticated, and goes back to the frontend that routes it. It frames the answer as SageMaker
  does (`needs_framing`): a container answers a stream with a plain body, typically chunked
  (SageMaker's container contract), and every piece of it that arrives becomes one `PayloadPart`
  event at once; an answer already in the event-stream format (the built-in model server frames
  its own) passes as it is. Decided by the answer, not by which runtime the data plane thinks
  serves the fleet: a SageMaker framework image the Docker Engine holds runs as a container on
  one host and on the built-in runtime on another, and both are right. When the model's side of
  a stream breaks (its instance or container died mid-stream), HAProxy can only cut the client's
  connection; the relay sees the cut and ends the stream the way SageMaker does, with a
  `ModelStreamError` event of ErrorCode `StreamBroken` after the last whole part, so boto3's
  iteration raises botocore's EventStreamError instead of a torn body.

A relay holds no key and grants nothing: a request it garbles fails the signature or the
routing (closed). Bodies are held in memory one request at a time per connection, at most
MAX_BODY_BYTES each; a stream's parts are passed on as they arrive, each whole event at once.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from greenshift.dataplane.config import MAX_BODY_BYTES, Paths  # HAProxy refuses more first
from greenshift.dataplane.sigv4 import PAYLOAD_HEADER
from greenshift.fleet.serving.eventstream import CONTENT_TYPE as EVENT_STREAM
from greenshift.fleet.serving.eventstream import (
    PARTS_CONTENT_TYPE_HEADER,
    payload_part,
    stream_error,
    whole_messages,
)

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT = 70.0  # HAProxy's own `timeout server` is 65 s
# A stream's event held back until it is whole is at most this long; a longer one (no model part
# is) is passed on as it comes, and a cut inside it reaches the client as a cut.
MAX_HELD_EVENT_BYTES = 8 << 20
BROKEN_STREAM = stream_error(
    "ModelStreamError",
    "The model's answer stream broke before it ended: its instance closed the connection.",
    "StreamBroken",
)
# Hop-by-hop headers (RFC 9110 7.6.1) and the framing the relay writes itself.
_NOT_FORWARDED = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    PAYLOAD_HEADER.lower(),
}
# The parts' content type when a container's answer gives none.
DEFAULT_CONTENT_TYPE = "application/json"
# The headers the relay writes itself on an answer it frames.
_FRAMED_HEADERS = frozenset({"content-type", PARTS_CONTENT_TYPE_HEADER.lower()})


def is_event_stream(content_type: str | None) -> bool:
    return (content_type or "").strip().lower().startswith(EVENT_STREAM)


def needs_framing(status: int, content_type: str | None) -> bool:
    """Whether the stream relay frames an answer: a success not already an event stream. A
    failure is not framed: HAProxy has made it a ModelError (424) or the data plane's own error."""
    return 200 <= status < 300 and not is_event_stream(content_type)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    upstream: Path
    hash_body: bool
    frame_streams: bool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        log.debug("relay: " + format, *args)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            # HAProxy sends neither; refuse rather than guess where the body ends.
            self._answer(400, "ValidationError", "A relayed body needs its Content-Length.")
            return
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            self.close_connection = True
            return
        upstream = _UnixConnection(self.server.upstream, UPSTREAM_TIMEOUT)
        try:
            upstream.putrequest("POST", self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _NOT_FORWARDED:
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            if self.server.hash_body:
                upstream.putheader(PAYLOAD_HEADER, hashlib.sha256(body).hexdigest())
            try:
                upstream.endheaders(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered (a refusal) and closed before reading the whole body: read it
            answer = upstream.getresponse()
        except OSError as exc:
            log.warning("relay: the data plane's private frontend did not answer: %s", exc)
            self._answer(503, "ServiceUnavailable", "The request could not be relayed now.")
            upstream.close()
            return
        try:
            self._relay(answer)
        except OSError:
            self.close_connection = True  # the client left: HAProxy tells the model, by closing
        finally:
            upstream.close()

    def _relay(self, answer: http.client.HTTPResponse) -> None:
        content_type = answer.getheader("Content-Type")
        frame = self.server.frame_streams and needs_framing(answer.status, content_type)
        self.send_response_only(answer.status, answer.reason)
        written_here = _FRAMED_HEADERS if frame else frozenset()
        for name, value in answer.getheaders():
            if name.lower() not in _NOT_FORWARDED and name.lower() not in written_here:
                self.send_header(name, value)
        if frame:
            self.send_header("Content-Type", EVENT_STREAM)
            self.send_header(PARTS_CONTENT_TYPE_HEADER, content_type or DEFAULT_CONTENT_TYPE)
        length = answer.getheader("Content-Length")
        if length is not None and not frame:
            data = answer.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        # A streamed answer (InvokeEndpointWithResponseStream): pass each part on as it comes.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if frame:
            self._frame(answer)
        else:
            self._pass_events(answer)
        self.wfile.write(b"0\r\n\r\n")

    def _frame(self, answer: http.client.HTTPResponse) -> None:
        """Each piece of a plain answer, once it arrives, as one PayloadPart event: every event
        sent is whole, so a cut is followed by the error event."""
        while True:
            try:
                piece = answer.read1(65536)
            except (http.client.HTTPException, OSError):
                self._chunk(BROKEN_STREAM)
                return
            if not piece:
                return
            self._chunk(payload_part(piece))

    def _pass_events(self, answer: http.client.HTTPResponse) -> None:
        """An event stream passed on one whole event at a time, so that a cut can be followed by
        the error event; anything else (a failure), and an event longer than the bound, as it
        comes."""
        framed = is_event_stream(answer.getheader("Content-Type"))
        held = b""
        while True:
            try:
                chunk = answer.read1(65536)
            except (http.client.HTTPException, OSError):
                if not framed:
                    raise ConnectionAbortedError("the answer's stream broke") from None
                self._chunk(BROKEN_STREAM)  # after the last whole event; a torn one is dropped
                return
            if not chunk:
                if held:  # ended inside an event: as broken as a cut
                    self._chunk(BROKEN_STREAM)
                return
            if not framed:
                self._chunk(chunk)
                continue
            whole, held = whole_messages(held + chunk)
            self._chunk(whole)
            if len(held) > MAX_HELD_EVENT_BYTES:
                self._chunk(held)
                held, framed = b"", False

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _answer(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Relay:
    """Listens on `listen` (one of HAProxy's relay backends), sends to `upstream` (one of its
    private frontends); with `hash_body`, adds the body's SHA-256 in PAYLOAD_HEADER.
    `bind()` then `run(stop)` in a thread, as the metrics collector."""

    name = "relay"
    hash_body = False
    frame_streams = False  # frame a plain answer as an event stream (`needs_framing`)

    def __init__(self, listen: Path, upstream: Path) -> None:
        self.listen = listen
        self.upstream = upstream
        self._server: _Server | None = None

    def bind(self) -> None:
        self.listen.unlink(missing_ok=True)
        server = _Server(str(self.listen), _Handler)
        os.chmod(self.listen, 0o600)
        server.upstream = self.upstream
        server.hash_body = self.hash_body
        server.frame_streams = self.frame_streams
        self._server = server

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set, then close the socket."""
        if self._server is None:
            self.bind()
        server = self._server
        assert server is not None
        serving = threading.Thread(
            target=server.serve_forever, args=(0.2,), name=self.name, daemon=True
        )
        serving.start()
        try:
            stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            serving.join(5)
            self.listen.unlink(missing_ok=True)


class BodyHashRelay(Relay):
    """Large signed bodies: Paths.relay_socket -> Paths.relayed_socket, with the body's hash."""

    name = "sigv4-relay"
    hash_body = True


class StreamRelay(Relay):
    """Response streams: Paths.stream_relay_socket -> Paths.streamed_socket."""

    name = "stream-relay"
    frame_streams = True


def start_relays(paths: Paths, sigv4: bool, stop: threading.Event) -> list[threading.Thread]:
    """The relays a data plane's HAProxy config sends to, each serving in a thread of its own
    until `stop` is set: the stream relay, and the body-hash relay with SigV4 on."""
    relays: list[Relay] = [StreamRelay(paths.stream_relay_socket, paths.streamed_socket)]
    if sigv4:
        relays.append(BodyHashRelay(paths.relay_socket, paths.relayed_socket))
    threads = []
    for relay in relays:
        relay.bind()
        thread = threading.Thread(target=relay.run, args=(stop,), name=relay.name, daemon=True)
        thread.start()
        threads.append(thread)
    return threads
