"""The built-in model server: the SageMaker container contract (`GET /ping`, `POST /invocations`)
over SageMaker-style handlers (greenshift.fleet.serving.handlers).

Run as `python -m greenshift.fleet.serving --model-dir DIR [--port N] [--flavour F]` (the built-in
runtime runs a copy of this package from outside the model's import path, isolated, in the model's
own environment: see greenshift.fleet.serving). The port defaults to `SAGEMAKER_BIND_TO_PORT`
(else 8080) and the handler module to `SAGEMAKER_PROGRAM`.

Why a raw asyncio protocol with httptools on uvloop: the data-plane benchmark puts HAProxy in
front of these instances, so the server must not be the bottleneck. Measured on the 2-core dev box
(echo model, wrk -c16 keep-alive, server CPU time per request, which is robust to a busy machine):
this server ~13,000 requests per CPU-second with GREENSHIFT_INLINE handlers (~75 us/request) and
~9,000 with handlers in threads; aiohttp's low-level server 6,000-8,600; uvicorn with a bare ASGI
app 8,200-10,200. It speaks just the HTTP/1.1 the contract needs: keep-alive (HAProxy reuses
connections), pipelined requests answered in order, Content-Length or chunked request bodies.

Lifecycle: the port is bound at once and `/ping` answers 503 until `model_fn` has returned (it
runs in a thread), so a model that never loads never passes the health check. SIGTERM: stop
accepting, close idle connections, let in-flight requests finish (their connection then closes),
exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httptools

from . import eventstream
from .flavours import FLAVOURS
from .handlers import DEFAULT_PROGRAM, Handlers, InvocationContext, Response, encode_part

log = logging.getLogger("greenshift.model_server")

MAX_BODY = 6 * 1024 * 1024 + 64 * 1024  # the runtime limit (6 MB) plus headroom for framing
CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
DRAIN_SECONDS = 60.0  # the agent SIGKILLs after 30 s anyway
# The data plane sets it to the operation's path segment (dataplane/config.py): for
# InvokeEndpointWithResponseStream, answer with an AWS event stream; otherwise a streaming
# handler's parts are joined into one body.
STREAM_HEADER = b"x-greenshift-response-stream"
STREAM_VALUE = b"invocations-response-stream"
STREAM_ACCEPT = b"x-amzn-sagemaker-accept"  # the streaming API's Accept header


def wants_stream(request: Request) -> bool:
    return request.headers.get(STREAM_HEADER) == STREAM_VALUE


STREAM_DONE = object()
Answer = tuple[int, bytes, str, list[tuple[str, str]]]


class Stream:
    """A streaming answer whose first part has been produced: the head can go out. `next_part`
    runs in a handler thread (a part may take the model long)."""

    def __init__(self, first: bytes, rest: Any, content_type: str, extra: list[tuple[str, str]]):
        self.first = first
        self.rest = rest
        self.content_type = content_type
        self.extra = extra

    def next_part(self) -> Any:
        """The next part's bytes, STREAM_DONE at the end; the handler's exception propagates."""
        try:
            return encode_part(next(self.rest))
        except StopIteration:
            return STREAM_DONE

    def close(self) -> None:
        close = getattr(self.rest, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def stream_head(stream: Stream, keep_alive: bool) -> bytes:
    """The head of an event-stream answer: chunked, the model's type in the header botocore
    reads as ContentType."""
    head = [
        b"HTTP/1.1 200 OK\r\n",
        b"Content-Type: %s\r\n" % eventstream.CONTENT_TYPE.encode(),
        b"%s: %s\r\n"
        % (eventstream.PARTS_CONTENT_TYPE_HEADER.encode(), stream.content_type.encode("latin-1")),
        b"Transfer-Encoding: chunked\r\n",
    ]
    for name, value in stream.extra:
        head.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
    if not keep_alive:
        head.append(b"Connection: close\r\n")
    return b"".join(head) + b"\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def render(
    status: int, body: bytes, content_type: str, extra: list[tuple[str, str]], keep_alive: bool
) -> bytes:
    """One HTTP/1.1 response, head and body in one buffer (one write, one syscall)."""
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, _reason(status)),
        b"Content-Type: %s\r\n" % content_type.encode("latin-1"),
        b"Content-Length: %d\r\n" % len(body),
    ]
    for name, value in extra:
        head.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
    if not keep_alive:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    return b"".join(head) + body


class Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "too_large", "url")

    def __init__(self) -> None:
        self.url = b""
        self.method = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.keep_alive = True
        self.too_large = False


class ModelApp:
    """The contract itself, independent of the transport: the loaded model and how a request is
    answered. The HTTP protocol below only frames bytes."""

    def __init__(self, handlers: Handlers, model_dir: Path, threads: int = 32) -> None:
        self.handlers = handlers
        self.model_dir = model_dir
        self.model: Any = None
        self.loaded = threading.Event()
        self.load_error: BaseException | None = None
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="handler")

    def load_in_background(self, on_failure: Any) -> None:
        """model_fn may take long (or, for never-ready, forever): a daemon thread, so SIGTERM
        can still end the process."""

        def run() -> None:
            try:
                self.model = self.handlers.load_model(self.model_dir)
                self.loaded.set()
                log.info("model loaded from %s", self.model_dir)
            except BaseException as exc:
                self.load_error = exc
                log.exception("model_fn failed")
                on_failure(exc)

        threading.Thread(target=run, name="model_fn", daemon=True).start()

    def invoke(self, request: Request) -> Answer:
        """Answer /invocations. A handler's exception is a 500 whose body is its message and
        traceback, as the toolkit's `Transformer.handle_error` answers (SageMaker's runtime then
        reports it as a ModelError)."""
        answer = self.invoke_any(request, stream=False)
        assert not isinstance(answer, Stream)
        return answer

    def invoke_any(self, request: Request, stream: bool) -> Answer | Stream:
        """Answer /invocations, as a Stream when asked to and the handler streams (its first
        part already produced, so an exception before it is still a plain 500)."""
        if not self.loaded.is_set():
            return 503, b"model not loaded", "text/plain", []
        headers = request.headers
        attrs = headers.get(CUSTOM_ATTRIBUTES)
        context = InvocationContext(
            # A missing Content-Type is taken as JSON (InvokeEndpoint's ContentType is optional);
            # a missing Accept is defaulted by the handlers, as the toolkit does.
            content_type=headers.get(b"content-type", b"application/json").decode("latin-1"),
            accept=headers.get(STREAM_ACCEPT if stream else b"accept", b"").decode("latin-1"),
            custom_attributes=attrs.decode("latin-1") if attrs is not None else None,
        )
        first: Any = STREAM_DONE
        try:
            response: Response = self.handlers.invoke(self.model, b"".join(request.body), context)
            if response.parts is not None and stream:
                first = next(response.parts, STREAM_DONE)
                first = b"" if first is STREAM_DONE else encode_part(first)
            else:
                response = response.joined()
        except Exception as exc:
            log.warning("handler failed: %r", exc)
            trace = traceback.format_exc()
            message = f"{exc}\n{trace}".encode("utf-8", "replace")
            return 500, message, "text/plain; charset=utf-8", []
        extra = []
        # Read after the first part: a generator sets them in its body, before its first yield.
        attrs_out = context.response_custom_attributes or response.custom_attributes
        if attrs_out is not None:
            extra.append(("X-Amzn-SageMaker-Custom-Attributes", attrs_out))
        if stream:
            parts = response.parts if response.parts is not None else iter(())
            body = first if response.parts is not None else response.body
            return Stream(body, parts, response.content_type, extra)
        return 200, response.body, response.content_type, extra


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests are answered strictly in order; an inline model is
    answered synchronously from the parser callback (no task, no thread: the fast path)."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self.app = server.app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None
        self.size = 0
        self.queue: deque[Request] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.closing = False

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self.server.connection_closed()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"upgrade not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"bad request: {exc}".encode())

    # --- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.request = Request()
        self.size = 0

    def on_url(self, url: bytes) -> None:
        assert self.request is not None
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.request is not None
        self.request.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        assert self.request is not None
        self.request.method = self.parser.get_method()
        self.request.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        assert self.request is not None
        self.size += len(body)
        if self.size <= MAX_BODY:
            self.request.body.append(body)
        else:
            self.request.too_large = True
            self.request.body.clear()

    def on_message_complete(self) -> None:
        request, self.request = self.request, None
        assert request is not None
        self.queue.append(request)
        self._pump()

    # --- answering ---------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.request is not None or bool(self.queue) or self.worker is not None

    def _pump(self) -> None:
        """Answer queued requests in order until one needs a thread."""
        while self.queue and self.worker is None and self.transport is not None:
            request = self.queue[0]
            if self._needs_thread(request):
                self.worker = asyncio.get_running_loop().create_task(self._threaded(request))
                return
            self.queue.popleft()
            self._send(request, *self._answer_now(request))

    def _needs_thread(self, request: Request) -> bool:
        return (
            request.url.startswith(b"/invocations")
            and request.method == b"POST"
            and (not self.app.handlers.inline or wants_stream(request))
            and not request.too_large
        )

    async def _threaded(self, request: Request) -> None:
        stream = wants_stream(request) and self.app.loaded.is_set()
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(
                self.app.executor, self.app.invoke_any, request, stream
            )
        except Exception as exc:
            answer = (500, str(exc).encode(), "text/plain", [])
        if isinstance(answer, Stream):
            await self._stream(request, answer)
        else:
            self._send(request, *answer)
        self.queue.popleft()
        self.worker = None
        self._pump()

    async def _stream(self, request: Request, stream: Stream) -> None:
        """Send the parts as event-stream messages in HTTP chunks, each as soon as the model has
        produced it. A handler exception after the head is a ModelStreamError event; a client
        that went away stops the generator. The connection counts as busy throughout, so a
        draining server lets the stream finish."""
        keep_alive = request.keep_alive and not self.server.draining
        if self.transport is None:
            stream.close()
            return
        head = stream_head(stream, keep_alive)
        first = chunk(eventstream.payload_part(stream.first)) if stream.first else b""
        self.transport.write(head + first)
        loop = asyncio.get_running_loop()
        try:
            while self.transport is not None:
                try:
                    part = await loop.run_in_executor(self.app.executor, stream.next_part)
                except Exception as exc:
                    log.warning("stream failed: %r", exc)
                    error = eventstream.stream_error("ModelStreamError", str(exc), "ModelError")
                    if self.transport is not None:
                        self.transport.write(chunk(error))
                    break
                if part is STREAM_DONE or self.transport is None:
                    break
                self.transport.write(chunk(eventstream.payload_part(part)))
        finally:
            stream.close()
        if self.transport is None:
            return
        self.transport.write(b"0\r\n\r\n")
        if not keep_alive or self.server.draining:  # a drain that began mid-stream
            self.closing = True
            self.transport.close()

    def _answer_now(self, request: Request) -> Answer:
        path = request.url.split(b"?", 1)[0]
        if path == b"/ping" and request.method in (b"GET", b"HEAD"):
            if self.app.loaded.is_set():
                return 200, b"", "text/plain", []
            return 503, b"model not loaded", "text/plain", []
        if path == b"/invocations":
            if request.method != b"POST":
                return 405, b"use POST", "text/plain", [("Allow", "POST")]
            if request.too_large:
                return 413, b"request body too large", "text/plain", []
            return self.app.invoke(request)
        return 404, b"not found", "text/plain", []

    def _send(
        self,
        request: Request,
        status: int,
        body: bytes,
        content_type: str,
        extra: list[tuple[str, str]],
    ) -> None:
        if self.transport is None:
            return
        keep_alive = request.keep_alive and not self.server.draining
        if request.method == b"HEAD":
            body = b""
        self.transport.write(render(status, body, content_type, extra, keep_alive))
        if not keep_alive:
            self.closing = True
            self.transport.close()

    def _fail(self, status: int, message: bytes) -> None:
        if self.transport is not None:
            self.transport.write(render(status, message, "text/plain", [], False))
            self.transport.close()

    def close_if_idle(self) -> None:
        """Draining: an idle keep-alive connection is closed now; a busy one closes after its
        response (`_send` stops keeping it alive)."""
        if self.transport is not None and not self.busy():
            self.transport.close()


class ModelServer:
    def __init__(self, app: ModelApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.connections: set[HttpConnection] = set()
        self.draining = False
        self._stopped: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    def connection_closed(self) -> None:
        if self.draining and not self.connections and self._idle is not None:
            self._idle.set()

    def stop(self) -> None:
        """Begin a graceful stop (the SIGTERM handler)."""
        if self._stopped is not None:
            self._stopped.set()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._idle = asyncio.Event()
        server = await loop.create_server(
            lambda: HttpConnection(self), self.host, self.port, reuse_address=True, backlog=1024
        )
        log.info("listening on %s:%d", self.host, self.port)
        await self._stopped.wait()
        # Stop accepting first, then drain: in-flight requests finish, idle sockets close.
        server.close()
        self.draining = True
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), DRAIN_SECONDS)
        self.app.executor.shutdown(wait=False, cancel_futures=True)
        log.info("stopped")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m greenshift.fleet.serving")
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--program", default=os.environ.get("SAGEMAKER_PROGRAM", DEFAULT_PROGRAM))
    parser.add_argument("--flavour", choices=FLAVOURS, default="generic")
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("GREENSHIFT_HANDLER_THREADS", "32"))
    )
    # The fleet agent passes its instance id so that /proc/<pid>/cmdline proves whose process
    # it is when a restarted agent adopts its instances.
    parser.add_argument("--instance-id", default=None)
    # The built-in runtime marks its processes with the server's name (adoption, chaos checks).
    parser.add_argument("--role", default=None)
    return parser.parse_args(argv)


async def _amain(args: argparse.Namespace, app: ModelApp) -> int:
    server = ModelServer(app, args.host, args.port)
    loop = asyncio.get_running_loop()
    failed: list[BaseException] = []

    def on_load_failure(exc: BaseException) -> None:
        failed.append(exc)
        loop.call_soon_threadsafe(server.stop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    app.load_in_background(on_load_failure)
    await server.serve()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # uvloop is an optimisation, not a requirement
        runner = asyncio.run
    # The handler module is imported before the loop starts: importing is blocking work.
    model_dir = Path(args.model_dir).resolve()
    handlers = Handlers.from_model_dir(model_dir, args.program, args.flavour)
    app = ModelApp(handlers, model_dir, args.threads)
    code = runner(_amain(args, app))
    sys.stdout.flush()
    sys.stderr.flush()
    # A never-returning model_fn thread must not hold the exit.
    os._exit(code)


if __name__ == "__main__":
    main()
