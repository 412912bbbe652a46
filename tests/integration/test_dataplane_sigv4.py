"""SigV4 on the runtime (issue 14 item 2): with access keys configured, InvokeEndpoint through
HAProxy needs a valid signature for service `sagemaker` by a configured key, checked by the Lua
action, with AWS's 403 errors as boto3 raises them; without keys the runtime is open as before.
Bodies up to SageMaker's 6 MB are verified: those larger than HAProxy's buffer through the
body-hash relay (greenshift/dataplane/relay.py), failing closed in the same ways."""

from __future__ import annotations

import hashlib
import http.client
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from greenshift.dataplane.config import MAX_BODY_BYTES
from greenshift.dataplane.controller import RouterController
from greenshift.dataplane.relay import BodyHashRelay
from greenshift.dataplane.sigv4 import PAYLOAD_HEADER, SIGV4_MAX_BODY_BYTES
from tests.integration.dataplane_support import Dataplane

pytestmark = pytest.mark.timeout(120)

KEY, SECRET = "AKIDRUNTIME0001", "runtime/secret+key"


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[Dataplane]:
    plane = Dataplane(tmp_path)
    stop = threading.Event()
    relaying: threading.Thread | None = None
    try:
        plane.settings = plane.settings.model_copy(update={"access_keys": f"{KEY}:{SECRET}"})
        plane.controller = RouterController(plane.registry, plane.haproxy, plane.settings)
        paths = plane.haproxy.paths
        relay = BodyHashRelay(paths.relay_socket, paths.relayed_socket)
        relay.bind()
        relaying = threading.Thread(target=relay.run, args=(stop,), daemon=True)
        relaying.start()
        plane.instance("Shop", "A", "Shop.A.aaaa", 0, plane.model("echo-v1"))
        plane.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
        plane.controller.sync_once()
        yield plane
    finally:
        stop.set()
        if relaying is not None:
            relaying.join(10)
        plane.close()


def runtime(dp: Dataplane, key: str = KEY, secret: str = SECRET, region: str = "us-east-1") -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=dp.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def code_of(client: Any, body: bytes = b'{"x": 1}') -> tuple[int, str, str]:
    with pytest.raises(ClientError) as info:
        client.invoke_endpoint(EndpointName="Shop", ContentType="application/json", Body=body)
    error = info.value.response
    return (
        error["ResponseMetadata"]["HTTPStatusCode"],
        error["Error"]["Code"],
        error["Error"].get("Message", ""),
    )


def test_a_signed_invocation_is_served(dp: Dataplane) -> None:
    answer = runtime(dp).invoke_endpoint(
        EndpointName="Shop", ContentType="application/json", Body=json.dumps({"x": 1})
    )
    assert json.loads(answer["Body"].read()) == {"version": "v1", "input": {"x": 1}}
    # A body near the buffer's size verifies as well (the body hash covers all of it).
    big = json.dumps({"x": "a" * (SIGV4_MAX_BODY_BYTES - 16)}).encode()
    assert len(big) <= SIGV4_MAX_BODY_BYTES
    answer = runtime(dp).invoke_endpoint(
        EndpointName="Shop", ContentType="application/json", Body=big
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_connection_held_over_a_reload_reaches_a_new_endpoint_signed_and_relayed(
    dp: Dataplane,
) -> None:
    """The old worker hands what it still receives after a reload to its successor (config.py,
    handover_rules), signature and all: the successor verifies it, and relays a large body."""
    big = json.dumps({"x": "a" * SIGV4_MAX_BODY_BYTES}).encode()  # past the buffer: relayed
    held = http.client.HTTPConnection("127.0.0.1", dp.settings.runtime_port, timeout=30)
    try:

        def answer(endpoint: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
            held.request(
                "POST",
                f"/endpoints/{endpoint}/invocations",
                body,
                _signed(dp, body, endpoint=endpoint),
            )
            response = held.getresponse()
            return response.status, dict(response.getheaders()), response.read()

        assert answer("Shop", b'{"x": 1}')[0] == 200  # the connection now idles in the worker
        dp.instance("Cart", "B", "Cart.B.bbbb", 0, dp.model("echo-v2"))
        dp.route("Cart", [("B", 1.0, [("Cart.B.bbbb", 1.0)])])
        reloads = dp.controller.reloads
        assert dp.controller.sync_once() and dp.controller.reloads == reloads + 1
        status, headers, body = answer("Cart", big)
        # The old worker's answer (it closes the connection with it), with the new routing.
        assert (status, headers.get("connection")) == (200, "close")
        assert json.loads(body)["version"] == "v2"
    finally:
        held.close()
    client = runtime(dp)
    for body in (b'{"x": 1}', big):
        reply = client.invoke_endpoint(
            EndpointName="Cart", ContentType="application/json", Body=body
        )
        assert json.loads(reply["Body"].read())["version"] == "v2"


def test_wrong_or_unknown_keys_and_other_scopes_are_refused_like_aws(dp: Dataplane) -> None:
    assert code_of(runtime(dp, secret="wrong"))[:2] == (403, "InvalidSignatureException")
    assert code_of(runtime(dp, key="AKIDNOBODY"))[:2] == (403, "UnrecognizedClientException")
    status, code, message = code_of(runtime(dp, region="eu-west-1"))
    assert (status, code) == (403, "InvalidSignatureException") and "region" in message


def test_an_unsigned_invocation_is_refused(dp: Dataplane) -> None:
    answer = httpx.post(
        dp.url + "/endpoints/Shop/invocations",
        content=b"{}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert answer.json() == {"message": "Missing Authentication Token"}


def test_streams_are_verified_before_the_stream_relay_small_or_large(dp: Dataplane) -> None:
    """A response stream is authenticated in the frontend that receives it (or, past the
    buffer, through the body-hash relay) before it goes to the stream relay, whose private
    frontend checks nothing again."""
    for body in (b'{"x": 1}', json.dumps({"x": "a" * SIGV4_MAX_BODY_BYTES}).encode()):
        answer = runtime(dp).invoke_endpoint_with_response_stream(
            EndpointName="Shop", ContentType="application/json", Body=body
        )
        streamed = b"".join(e["PayloadPart"]["Bytes"] for e in answer["Body"])
        assert json.loads(streamed)["input"] == json.loads(body)
        refused = httpx.post(
            dp.url + "/endpoints/Shop/invocations-response-stream",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert refused.status_code == 403, len(body)
        assert refused.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    with pytest.raises(ClientError) as info:
        runtime(dp, secret="wrong").invoke_endpoint_with_response_stream(
            EndpointName="Shop", ContentType="application/json", Body=b"{}"
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _signed(
    dp: Dataplane, body: bytes, service: str = "sagemaker", endpoint: str = "Shop"
) -> dict[str, str]:
    url = dp.url + f"/endpoints/{endpoint}/invocations"
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(KEY, SECRET), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_a_signature_replayed_with_another_body_or_service_is_refused(dp: Dataplane) -> None:
    url = dp.url + "/endpoints/Shop/invocations"
    headers = _signed(dp, b'{"x": 1}')
    assert httpx.post(url, content=b'{"x": 1}', headers=headers, timeout=10).status_code == 200
    replay = httpx.post(url, content=b'{"x": 2}', headers=headers, timeout=10)
    assert replay.status_code == 403
    assert replay.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    other = httpx.post(url, content=b"{}", headers=_signed(dp, b"{}", "monitoring"), timeout=10)
    assert other.status_code == 403 and "correct service" in other.json()["message"]
    unsigned_payload = {**headers, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    assert httpx.post(url, content=b"{}", headers=unsigned_payload, timeout=10).status_code == 403


def test_a_signed_megabyte_is_served_and_just_over_6_mb_is_refused(dp: Dataplane) -> None:
    client = runtime(dp)
    for size in (SIGV4_MAX_BODY_BYTES + 1, 1_048_576):  # past the buffer: through the relay
        payload = {"x": "a" * (size - 9)}
        body = json.dumps(payload).encode()
        assert len(body) == size
        answer = client.invoke_endpoint(
            EndpointName="Shop", ContentType="application/json", Body=body
        )
        assert answer["InvokedProductionVariant"] == "A"
        assert json.loads(answer["Body"].read()) == {"version": "v1", "input": payload}
    # One byte over SageMaker's limit: its 413 ValidationError, before anything is buffered.
    status, code, message = code_of(client, body=b"x" * (MAX_BODY_BYTES + 1))
    assert (status, code) == (413, "ValidationError")
    assert str(MAX_BODY_BYTES) in message


def test_a_large_body_fails_closed_like_a_small_one(dp: Dataplane) -> None:
    url = dp.url + "/endpoints/Shop/invocations"
    signed_body = json.dumps({"x": "a" * 1_048_576}).encode()
    headers = _signed(dp, signed_body)
    other = signed_body.replace(b"a", b"b")
    # The signature of one megabyte replayed with another of the same length.
    replay = httpx.post(url, content=other, headers=headers, timeout=30)
    assert replay.status_code == 403
    assert replay.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    # Nor does a client's own copy of the relay's header stand for the body.
    forged = {**headers, PAYLOAD_HEADER: hashlib.sha256(signed_body).hexdigest()}
    assert httpx.post(url, content=other, headers=forged, timeout=30).status_code == 403
    # Refused before the relay with no valid key, with AWS's codes; the genuine one is served.
    bad_key = httpx.post(url, content=signed_body, headers=_signed_as(dp, signed_body), timeout=30)
    assert bad_key.status_code == 403
    assert bad_key.headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
    unsigned = httpx.post(url, content=signed_body, timeout=30)
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert httpx.post(url, content=signed_body, headers=headers, timeout=30).status_code == 200


def _signed_as(dp: Dataplane, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method="POST", url=dp.url + "/endpoints/Shop/invocations", data=body, headers={}
    )
    SigV4Auth(Credentials("AKIDNOBODY", SECRET), "sagemaker", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_the_lua_file_holding_the_secrets_is_private(dp: Dataplane) -> None:
    path = dp.haproxy.paths.sigv4_lua
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert hashlib.sha256(path.read_bytes()).hexdigest()  # written, non-empty
