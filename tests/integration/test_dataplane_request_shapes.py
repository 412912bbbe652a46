"""Request shapes the runtime must read as SageMaker does (issue 14's leftovers), over raw
sockets so that nothing between the test and HAProxy normalises the request line:
- absolute-form request targets (`POST http://host/endpoints/E/invocations HTTP/1.1`): HTTP/1.1
  servers must accept them (RFC 9112 3.2.2), so they are served like the origin form (they used to
  reach the model as an absolute URI and come back as a 424 ModelError);
- case: the path's fixed segments are matched exactly (another case is an unknown operation), and
  the endpoint name too: "the case is preserved and must be matched in InvokeEndpoint"
  (CreateEndpoint's EndpointName), so `shop` is not endpoint `Shop`."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.dataplane_support import Dataplane

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[Dataplane]:
    plane = Dataplane(tmp_path)
    try:
        plane.instance("Shop", "A", "Shop.A.aaaa", 0, plane.model("echo-v1"))
        plane.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
        plane.controller.sync_once()
        yield plane
    finally:
        plane.close()


def raw_post(dp: Dataplane, target: str) -> tuple[int, dict[str, str], bytes]:
    """One POST with exactly this request target; status, lower-cased headers, body."""
    port = dp.settings.runtime_port
    body = b'{"x": 1}'
    request = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(
        (k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])
    )
    return int(lines[0].split()[1]), headers, payload


def test_an_absolute_form_request_target_is_served_like_the_origin_form(dp: Dataplane) -> None:
    port = dp.settings.runtime_port
    for target in (
        f"http://127.0.0.1:{port}/endpoints/Shop/invocations",
        "/endpoints/Shop/invocations",
    ):
        status, headers, body = raw_post(dp, target)
        assert status == 200, (target, body)
        assert json.loads(body) == {"version": "v1", "input": {"x": 1}}
        assert headers["x-amzn-invoked-production-variant"] == "A"
    # An unknown endpoint in absolute form gets the same ValidationError as in origin form.
    status, headers, body = raw_post(dp, f"http://127.0.0.1:{port}/endpoints/Nope/invocations")
    assert (status, headers["x-amzn-errortype"]) == (400, "ValidationError")
    assert json.loads(body)["message"] == "Endpoint Nope of account 000000000000 not found."


@pytest.mark.parametrize(
    "target",
    [
        "/Endpoints/Shop/invocations",
        "/endpoints/Shop/Invocations",
        "/ENDPOINTS/Shop/INVOCATIONS",
        "/endpoints/Shop/invocations-Response-Stream",
    ],
)
def test_the_path_is_case_sensitive(dp: Dataplane, target: str) -> None:
    status, headers, body = raw_post(dp, target)
    assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")
    assert json.loads(body) == {"message": "Unknown operation."}


def test_the_endpoint_name_must_match_its_case(dp: Dataplane) -> None:
    for name in ("shop", "SHOP"):
        status, headers, body = raw_post(dp, f"/endpoints/{name}/invocations")
        assert (status, headers["x-amzn-errortype"]) == (400, "ValidationError")
        assert json.loads(body)["message"] == f"Endpoint {name} of account 000000000000 not found."
    assert raw_post(dp, "/endpoints/Shop/invocations")[0] == 200
