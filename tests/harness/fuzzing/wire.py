"""Raw HTTP/1.1 over a socket: the fuzz suite must send what no client library would (bad
Content-Length, garbage methods, chunked bodies of any size) and see exactly what comes back."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawRequest:
    """One request as bytes on the wire. `chunked` sends the body in Transfer-Encoding chunks
    (no Content-Length is added); otherwise Content-Length is added unless `headers` has one or
    `no_length` is set."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    chunked: bool = False
    no_length: bool = False
    note: str = ""

    def head(self, host: str) -> bytes:
        names = {k.lower() for k, _ in self.headers}
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        elif "content-length" not in names and not self.no_length:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


@dataclass
class RawAnswer:
    status: int | None  # None: no status line before the timeout or the connection closed
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0


def _chunks(body: bytes, size: int = 65536) -> bytes:
    out = bytearray()
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


def parse_answer(raw: bytes) -> RawAnswer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2) if lines and lines[0] else []
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return RawAnswer(None, body=raw[:2048])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(int(parts[1]), headers, body)


def send(host: str, port: int, request: RawRequest, timeout: float = 15.0) -> RawAnswer:
    """Send `request` and read the answer until the server closes (we ask it to) or `timeout`."""
    begun = time.monotonic()
    data = request.head(f"{host}:{port}") + (
        _chunks(request.body) if request.chunked else request.body
    )
    received = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may answer (413, 400) and close before it read everything
        deadline = begun + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                piece = sock.recv(262144)
            except (TimeoutError, OSError):
                break
            if not piece:
                break
            received += piece
    answer = parse_answer(bytes(received))
    answer.seconds = time.monotonic() - begun
    return answer
