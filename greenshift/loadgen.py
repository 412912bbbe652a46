"""A steady, bounded load on one endpoint, recording every answer: used by the demo, the chaos and
load suites, and tests that prove no request is lost.

It paces requests at a fixed rate (open loop, so a slow data plane shows as latency and errors, not
as a quietly lower rate), stops after `duration` seconds or `max_requests` requests, whichever comes
first, and only ever targets the runtime URL it is given (127.0.0.1 in tests).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


@dataclass(frozen=True)
class Answer:
    at: float  # seconds since the load started
    status: int  # HTTP status; 0 when the connection failed
    version: str | None  # the model's "version" field, when it answered JSON
    variant: str | None  # x-Amzn-Invoked-Production-Variant
    error_type: str | None  # x-amzn-ErrorType
    latency: float
    retries: int = 0  # connection-level failures retried before this answer (see SteadyLoad)


@dataclass
class LoadReport:
    answers: list[Answer] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.answers)

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def by_version(self) -> Counter[str]:
        return Counter(a.version or "error" for a in self.answers)

    @property
    def retries(self) -> int:
        return sum(a.retries for a in self.answers)

    def failed_not_by_model(self) -> list[Answer]:
        """Failures the data plane caused (not a model answering 5xx)."""
        return [a for a in self.failed if not (a.error_type or "").startswith("ModelError")]


class SteadyLoad:
    """Send `rate` requests/s to an endpoint in a background thread until stopped or bounded."""

    def __init__(
        self,
        runtime_url: str,
        endpoint: str,
        rate: float = 20.0,
        duration: float = 300.0,
        max_requests: int = 100_000,
        payload: object | None = None,
        timeout: float = 10.0,
        connect_retries: int = 0,
        credentials: tuple[str, str] | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.url = f"{runtime_url.rstrip('/')}/endpoints/{endpoint}/invocations"
        self.rate = rate
        self.duration = duration
        self.max_requests = max_requests
        self.body = json.dumps(payload if payload is not None else {"hello": "greenshift"})
        self.timeout = timeout
        # Like botocore, retry a request whose connection failed before any response (refused,
        # reset, closed) up to this many times, backing off exponentially from 0.1 s; an HTTP
        # error answer is never retried.
        self.connect_retries = connect_retries
        # (access key, secret): sign every request with SigV4 for `sagemaker`, as boto3 does,
        # for a stack whose runtime requires signatures (access keys configured).
        self.credentials = credentials
        self.region = region
        self.report = LoadReport()
        self.started_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SteadyLoad:
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> LoadReport:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        return self.report

    async def _run(self) -> None:
        interval = 1.0 / self.rate
        limits = aiohttp.TCPConnector(limit=256)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(connector=limits, timeout=timeout) as session:
            tasks: set[asyncio.Task[None]] = set()
            for n in range(self.max_requests):
                due = self.started_at + n * interval
                if self._stop.is_set() or due - self.started_at > self.duration:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._one(session))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout + 1)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.credentials is None:
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method="POST", url=self.url, data=self.body, headers=headers)
        SigV4Auth(Credentials(*self.credentials), "sagemaker", self.region).add_auth(request)
        return dict(request.headers.items())

    async def _one(self, session: aiohttp.ClientSession) -> None:
        begun = time.monotonic()
        status, version, variant, error_type = 0, None, None, None
        retries = 0
        while True:
            try:
                async with session.post(
                    self.url, data=self.body, headers=self._headers()
                ) as response:
                    status = response.status
                    variant = response.headers.get("x-Amzn-Invoked-Production-Variant")
                    error_type = response.headers.get("x-amzn-ErrorType")
                    raw = await response.read()
                    if status == 200:
                        try:
                            version = json.loads(raw).get("version")
                        except (ValueError, AttributeError):
                            version = None
            except TimeoutError as exc:  # may have reached the model: never retried
                error_type = f"ConnectionError:{type(exc).__name__}"
            except aiohttp.ClientConnectionError as exc:
                if status == 0 and retries < self.connect_retries:
                    retries += 1
                    await asyncio.sleep(0.1 * 2 ** (retries - 1))  # 0.1, 0.2, 0.4 s...
                    continue
                error_type = f"ConnectionError:{type(exc).__name__}"
            except aiohttp.ClientError as exc:
                error_type = f"ConnectionError:{type(exc).__name__}"
            break
        now = time.monotonic()
        self.report.answers.append(
            Answer(
                begun - self.started_at, status, version, variant, error_type, now - begun, retries
            )
        )
