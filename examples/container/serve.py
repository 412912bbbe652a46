"""An example SageMaker inference container's server: the standard library only.

What SageMaker (and Greenshift) asks of a container, and how this one does it:
- it is started as `<image> serve` (this script ignores the word);
- it listens on port 8080, or on SAGEMAKER_BIND_TO_PORT when that is set;
- `GET /ping` answers 200 once it can serve;
- `POST /invocations` answers a request; its model data is at /opt/ml/model (read-only);
- SIGTERM makes it exit (as PID 1 in a container, a process without a SIGTERM handler would
  ignore it, and be killed only after the grace period).

Its answer shows what it saw, so tests can check the contract: the model data's `model.json`,
the variables named in ECHO_ENV, the custom-attributes header, whether /opt/ml/model is writable.

`--mode` makes the broken containers the tests need: `fail` answers every invocation 500,
`exit` exits at once with code 3, `noping` never answers /ping.

`--mode stream` streams the way SageMaker's container contract says a container streams
(InvokeEndpointWithResponseStream): a plain `POST /invocations`, answered with a chunked body
whose chunks leave as they are produced; the platform frames them as event-stream parts (in
Greenshift the data plane's stream relay, greenshift/dataplane/relay.py). The request is
`{"parts": N, "delay": seconds, "die_at": k}`: N chunks `"<i> "` (text/plain), `delay` apart;
with `die_at` the container exits (code 1) after k chunks, mid-stream.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL_DIR = Path("/opt/ml/model")


def _model_dir_writable() -> bool:
    try:
        (MODEL_DIR / ".write-probe").write_text("x")
    except OSError:
        return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers (about 40 ms per keep-alive request).
    disable_nagle_algorithm = True
    mode = "serve"
    model: object = None

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, data: bytes) -> None:
        try:
            request = json.loads(data or b"{}")
        except ValueError:
            request = {}
        if not isinstance(request, dict):
            request = {}
        parts, delay = int(request.get("parts", 5)), float(request.get("delay", 0.0))
        die_at = request.get("die_at")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(parts):
            if die_at is not None and i == int(die_at):
                sys.stderr.write(f"example container: dying after {i} parts, as asked\n")
                sys.stderr.flush()
                os._exit(1)
            if i and delay:
                time.sleep(delay)
            chunk = f"{i} ".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._answer(200, b"{}")
        else:
            self._answer(404, b"{}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if self.path != "/invocations":
            self._answer(404, b"{}")
            return
        if self.mode == "fail":
            self._answer(500, b'{"error": "this container always fails"}')
            return
        if self.mode == "stream":
            self._stream(data)
            return
        try:
            payload: object = json.loads(data) if data else None
        except ValueError:
            payload = data.decode(errors="replace")
        names = [n for n in os.environ.get("ECHO_ENV", "").split(",") if n]
        model = self.model if isinstance(self.model, dict) else {}
        answer = {
            "server": "example-container",
            "version": model.get("version"),
            "model": self.model,
            "input": payload,
            "env": {name: os.environ.get(name) for name in names},
            "custom_attributes": self.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            "model_dir_writable": _model_dir_writable(),
        }
        self._answer(200, json.dumps(answer).encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", nargs="?", default="serve")
    parser.add_argument(
        "--mode", default="serve", choices=["serve", "fail", "exit", "noping", "stream"]
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"example container: {args.command} (mode {args.mode})", file=sys.stderr, flush=True)
    if args.mode == "exit":
        print("example container: exiting at once, as asked", file=sys.stderr, flush=True)
        sys.exit(3)
    if args.mode == "noping":
        while True:
            time.sleep(3600)
    try:
        Handler.model = json.loads((MODEL_DIR / "model.json").read_text())
    except (OSError, ValueError):
        Handler.model = None
    Handler.mode = args.mode
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT") or 8080)
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    print(f"example container: listening on {port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
