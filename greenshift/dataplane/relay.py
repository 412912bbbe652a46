"""The body-hash relay: signed invocations whose body is too large for HAProxy's buffer.

With SigV4 on, HAProxy verifies a signature in Lua over the body in its buffer (sigv4.py); a body
larger than that buffer (up to SageMaker's 6 MB) comes here instead, once HAProxy has checked
everything that needs no body. The relay reads the body, hashes it, and sends the request back to
HAProxy's private frontend (a 0600 unix socket only it uses) with the hash in PAYLOAD_HEADER,
where the same Lua verifier checks the signature with that hash and routes the request like any
other. It answers HAProxy with whatever that frontend answered (a streamed answer stays streamed).

It holds no key and decides nothing: a request it garbles fails the signature (closed). Bodies
are held in memory one request at a time per connection, at most MAX_BODY_BYTES each.
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

from greenshift.dataplane.config import MAX_BODY_BYTES  # HAProxy refuses more before relaying
from greenshift.dataplane.sigv4 import PAYLOAD_HEADER

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT = 70.0  # HAProxy's own `timeout server` is 65 s
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
        digest = hashlib.sha256(body).hexdigest()
        upstream = _UnixConnection(self.server.upstream, UPSTREAM_TIMEOUT)
        try:
            upstream.putrequest("POST", self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _NOT_FORWARDED:
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.putheader(PAYLOAD_HEADER, digest)
            try:
                upstream.endheaders(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered (a refusal) and closed before reading the whole body: read it
            answer = upstream.getresponse()
            self._relay(answer)
        except OSError as exc:
            log.warning("relay: the data plane's private frontend did not answer: %s", exc)
            self._answer(503, "ServiceUnavailable", "The request could not be verified now.")
        finally:
            upstream.close()

    def _relay(self, answer: http.client.HTTPResponse) -> None:
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _NOT_FORWARDED:
                self.send_header(name, value)
        length = answer.getheader("Content-Length")
        if length is not None:
            data = answer.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        # No length: a streamed answer (InvokeEndpointWithResponseStream); pass each part on.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := answer.read1(65536):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _answer(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class BodyHashRelay:
    """Listens on `listen` (HAProxy's relay backend), sends to `upstream` (its private frontend).
    `bind()` then `run(stop)` in a thread, as the metrics collector."""

    def __init__(self, listen: Path, upstream: Path) -> None:
        self.listen = listen
        self.upstream = upstream
        self._server: _Server | None = None

    def bind(self) -> None:
        self.listen.unlink(missing_ok=True)
        server = _Server(str(self.listen), _Handler)
        os.chmod(self.listen, 0o600)
        server.upstream = self.upstream
        self._server = server

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set, then close the socket."""
        if self._server is None:
            self.bind()
        server = self._server
        assert server is not None
        serving = threading.Thread(
            target=server.serve_forever, args=(0.2,), name="sigv4-relay", daemon=True
        )
        serving.start()
        try:
            stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            serving.join(5)
            self.listen.unlink(missing_ok=True)
