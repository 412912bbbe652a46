"""Fuzz cases for the runtime (the data plane): paths, methods, headers and bodies from empty to
past the 6 MB limit, plain and chunked. `fixed_cases` are the boundaries checked every run."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from greenshift.dataplane.config import MAX_BODY_BYTES
from tests.harness.fuzzing.values import NASTY_STRINGS
from tests.harness.fuzzing.wire import RawRequest


@dataclass(frozen=True)
class RuntimeCase:
    label: str
    request: RawRequest
    # A Content-Length larger than the body: the server rightly waits for the rest, so no answer
    # before our timeout is fine (we only check it still serves afterwards).
    may_hang: bool = False
    expect: int | None = None  # an exact status the boundary cases must get


def _json_body(size: int) -> bytes:
    """A JSON document of exactly `size` bytes (size >= 12)."""
    skeleton = b'{"pad": ""}'
    return b'{"pad": "' + b"a" * (size - len(skeleton)) + b'"}'


def fixed_cases(endpoint: str) -> list[RuntimeCase]:
    path = f"/endpoints/{endpoint}/invocations"

    def post(body: bytes, chunked: bool = False) -> RawRequest:
        return RawRequest("POST", path, (("Content-Type", "application/json"),), body, chunked)

    return [
        RuntimeCase("body:exactly_6MB", post(_json_body(MAX_BODY_BYTES)), expect=200),
        RuntimeCase("body:6MB_plus_1", post(_json_body(MAX_BODY_BYTES + 1)), expect=413),
        # Chunked bodies cannot be size-checked by HAProxy, so they are refused (411).
        RuntimeCase("body:chunked_small", post(b'{"x": 1}', chunked=True), expect=411),
        RuntimeCase("body:chunked_7MB", post(_json_body(7_000_000), chunked=True), expect=411),
        RuntimeCase("body:empty", post(b"")),
    ]


def _path(rng: random.Random, endpoint: str) -> str:
    return rng.choice(
        [
            f"/endpoints/{endpoint}/invocations",
            f"/endpoints/{endpoint.upper()}/invocations",
            "/endpoints/fz-unknown/invocations",
            "/endpoints/../invocations",
            f"/endpoints/{endpoint}/../../invocations",
            "/endpoints/%2e%2e%2f%2e%2e/invocations",
            f"/endpoints/{endpoint}%2Finvocations",
            "/endpoints//invocations",
            "/endpoints/%00/invocations",
            "/endpoints/%C3%BC%E6%97%A5/invocations",
            f"/endpoints/{endpoint}/invocations?x=" + "a" * 2000,
            "/endpoints/" + "a" * rng.choice([100, 8000, 70_000]) + "/invocations",
            "/",
            "/ping",
            "/invocations",
            "*",
            f"/endpoints/{endpoint}/invocations#frag",
        ]
    )


def generate(rng: random.Random, endpoint: str) -> RuntimeCase:
    """One random runtime request."""
    method = rng.choices(
        ["POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "FUZZ", "CONNECT"],
        weights=[12, 1, 1, 1, 1, 1, 1, 1, 1],
    )[0]
    path = _path(rng, endpoint) if rng.random() < 0.5 else f"/endpoints/{endpoint}/invocations"
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    labels = []
    body = json.dumps({"x": rng.random()}).encode()
    may_hang, chunked = False, False
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(
            [
                "huge_header",
                "many_headers",
                "bad_length",
                "sagemaker_garbage",
                "target_variant",
                "body_size",
                "binary_body",
                "chunked",
                "content_type",
            ]
        )
        labels.append(kind)
        if kind == "huge_header":
            headers.append(("X-Fuzz", "h" * rng.choice([1000, 16_000, 100_000])))
        elif kind == "many_headers":
            headers += [(f"X-Fuzz-{i}", str(i)) for i in range(rng.choice([50, 200, 1000]))]
        elif kind == "bad_length":
            value = rng.choice(["-1", "abc", "1e3", "", "99999999999999999999", "0", "5", "100"])
            headers.append(("Content-Length", value))
            if rng.random() < 0.3:
                headers.append(("Content-Length", "3"))
            may_hang = True
        elif kind == "sagemaker_garbage":
            name = rng.choice(
                [
                    "X-Amzn-SageMaker-Custom-Attributes",
                    "X-Amzn-SageMaker-Inference-Id",
                    "X-Amzn-SageMaker-Target-Variant",
                    "X-Amzn-SageMaker-Target-Model",
                    "Accept",
                ]
            )
            value = rng.choice(NASTY_STRINGS[:11]).replace("\x00", "%00").replace("\ud800", "?")
            headers.append((name, value))
        elif kind == "target_variant":
            variant = rng.choice(["AllTraffic", "Nope", "alltraffic"])
            headers.append(("X-Amzn-SageMaker-Target-Variant", variant))
        elif kind == "body_size":
            size = rng.choice([0, 1, 100, 65_536, 10**6, MAX_BODY_BYTES - 1, MAX_BODY_BYTES + 10])
            body = rng.randbytes(size) if rng.random() < 0.5 else b"a" * size
        elif kind == "binary_body":
            body = rng.randbytes(rng.randint(0, 4096))
        elif kind == "chunked":
            chunked = True
        else:
            headers[0] = ("Content-Type", rng.choice(["", "text/plain", "é", "x" * 4096]))
    request = RawRequest(method, path, tuple(headers), body, chunked=chunked)
    return RuntimeCase("+".join(labels) or "plain", request, may_hang=may_hang)
