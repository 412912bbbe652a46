"""SigV4 verification against botocore's own signer and real botocore clients."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from greenshift.api.sigv4 import (
    MISMATCH,
    UNRECOGNIZED,
    AuthError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
    verify,
)

ACCESS_KEY = "AKIDGREENSHIFT0001"
SECRET = "greenshift/secret+key=="
KEYS = {ACCESS_KEY: SECRET, "AKIDOTHER": "other-secret"}
REGION = "us-east-1"
SERVICES = ("sagemaker", "monitoring")
BASE = "http://127.0.0.1:7070"


@dataclass(frozen=True)
class Received:
    """A request as the server sees it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    when: datetime


def sign(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    service: str = "sagemaker",
    region: str = REGION,
    access_key: str = ACCESS_KEY,
    secret: str = SECRET,
    token: str | None = None,
) -> Received:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(access_key, secret, token), service, region).add_auth(request)
    return received(request.method, request.url, dict(request.headers.items()), body)


def received(method: str, url: str, headers: dict[str, Any], body: bytes) -> Received:
    parts = urlsplit(url)
    # The HTTP client adds Host from the URL (botocore signs exactly that value).
    hdrs = {"Host": parts.netloc, **{k: _text(v) for k, v in headers.items()}}
    when = datetime.strptime(hdrs["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return Received(method, parts.path, parts.query, hdrs, body, when)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check(req: Received, now: datetime | None = None, keys: dict[str, str] = KEYS) -> str:
    return verify(
        req.method,
        req.path,
        req.query,
        req.headers,
        req.body,
        keys,
        now if now is not None else req.when,
        REGION,
        SERVICES,
    )


def sagemaker_request() -> Received:
    return sign(
        "POST",
        BASE + "/",
        b'{"EndpointName": "my-endpoint"}',
        {
            "X-Amz-Target": "SageMaker.DescribeEndpoint",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )


def test_sagemaker_json_request_verifies() -> None:
    assert check(sagemaker_request()) == ACCESS_KEY


def test_runtime_invocation_verifies() -> None:
    req = sign(
        "POST",
        BASE + "/endpoints/my-endpoint/invocations",
        b"1.0,2.0,3.0\n" * 100,
        {"Content-Type": "text/csv", "Accept": "application/json"},
    )
    assert check(req) == ACCESS_KEY


def test_cloudwatch_query_request_verifies() -> None:
    req = sign(
        "POST",
        BASE + "/",
        b"Action=DescribeAlarms&Version=2010-08-01&AlarmNames.member.1=a%20b",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        service="monitoring",
    )
    assert check(req) == ACCESS_KEY


def test_query_string_encoded_path_and_session_token_verify() -> None:
    req = sign(
        "GET",
        BASE + "/some%20path/./x/?b=2&a=1&c=x%2Fy&a=0",
        token="session-token-ignored",
    )
    assert "X-Amz-Security-Token" in req.headers
    assert check(req) == ACCESS_KEY


def test_content_sha256_header_stands_for_the_payload() -> None:
    body = b'{"EndpointName": "e"}'

    req = sign("POST", BASE + "/", body, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert check(req) == ACCESS_KEY
    with pytest.raises(InvalidSignatureException, match="x-amz-content-sha256"):
        check(replace(req, body=b'{"EndpointName": "f"}'))


def test_repeated_and_folded_header_values_are_canonicalised_like_botocore() -> None:
    req = sign("POST", BASE + "/", b"{}", {"X-Amz-Target": "  SageMaker.ListEndpoints   x  "})
    assert check(req) == ACCESS_KEY
    pairs = [(k, v) for k, v in req.headers.items()]
    assert verify("POST", "/", "", pairs, b"{}", KEYS, req.when, REGION, SERVICES) == ACCESS_KEY


def test_header_names_are_case_insensitive() -> None:
    req = sagemaker_request()
    lowered = {k.lower(): v for k, v in req.headers.items()}
    assert check(replace(req, headers=lowered)) == ACCESS_KEY


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: replace(r, body=r.body + b" "), id="body"),
        pytest.param(
            lambda r: replace(r, headers={**r.headers, "X-Amz-Target": "SageMaker.DeleteEndpoint"}),
            id="signed-header",
        ),
        pytest.param(
            lambda r: replace(r, headers={**r.headers, "X-Amz-Date": _shift(r, 1)}),
            id="date",
        ),
        pytest.param(lambda r: replace(r, method="PUT"), id="method"),
        pytest.param(lambda r: replace(r, path="/other"), id="path"),
        pytest.param(lambda r: replace(r, query="x=1"), id="query"),
        pytest.param(
            lambda r: replace(r, headers={**r.headers, "Host": "127.0.0.1:7071"}), id="host"
        ),
        pytest.param(
            lambda r: replace(
                r, headers={k: v for k, v in r.headers.items() if k != "X-Amz-Target"}
            ),
            id="signed-header-dropped",
        ),
    ],
)
def test_tampered_requests_are_refused(tamper: Any) -> None:
    req = tamper(sagemaker_request())
    with pytest.raises(InvalidSignatureException) as info:
        check(req, now=sagemaker_request().when)
    assert info.value.message == MISMATCH
    assert info.value.http_status == 403
    assert info.value.code == "InvalidSignatureException"


def _shift(req: Received, seconds: int) -> str:
    return (req.when + timedelta(seconds=seconds)).strftime("%Y%m%dT%H%M%SZ")


def test_unsigned_header_may_change() -> None:
    req = sagemaker_request()
    assert check(replace(req, headers={**req.headers, "User-Agent": "curl"})) == ACCESS_KEY


def test_wrong_secret_is_a_mismatch() -> None:
    req = sign("POST", BASE + "/", b"{}", secret="not-the-secret")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        check(req)


def test_unknown_key_is_unrecognized_client() -> None:
    req = sign("POST", BASE + "/", b"{}", access_key="AKIDNOBODY")
    with pytest.raises(UnrecognizedClientException) as info:
        check(req)
    assert info.value.message == UNRECOGNIZED
    assert (info.value.code, info.value.http_status) == ("UnrecognizedClientException", 403)


def test_five_minutes_either_way_is_accepted() -> None:
    req = sagemaker_request()
    assert check(req, now=req.when + timedelta(minutes=5)) == ACCESS_KEY
    assert check(req, now=req.when - timedelta(minutes=5)) == ACCESS_KEY


def test_expired_request_is_refused_like_aws() -> None:
    req = sign("POST", BASE + "/", b"{}")
    now = req.when + timedelta(minutes=5, seconds=1)
    with pytest.raises(InvalidSignatureException) as info:
        check(req, now=now)
    stamp = req.headers["X-Amz-Date"]
    earliest = (now - timedelta(minutes=5)).strftime("%Y%m%dT%H%M%SZ")
    assert info.value.message == (
        f"Signature expired: {stamp} is now earlier than {earliest} "
        f"({now.strftime('%Y%m%dT%H%M%SZ')} - 5 min.)"
    )


def test_request_from_the_future_is_refused() -> None:
    req = sign("POST", BASE + "/", b"{}")
    with pytest.raises(InvalidSignatureException, match="Signature not yet current"):
        check(req, now=req.when - timedelta(minutes=6))


def test_scope_for_another_region_or_service_is_refused() -> None:
    with pytest.raises(InvalidSignatureException, match="valid region"):
        check(sign("POST", BASE + "/", b"{}", region="eu-west-1"))
    with pytest.raises(InvalidSignatureException, match="correct service"):
        check(sign("POST", BASE + "/", b"{}", service="s3"))


def test_missing_and_malformed_authorization() -> None:
    req = sagemaker_request()
    without = {k: v for k, v in req.headers.items() if k != "Authorization"}
    with pytest.raises(MissingAuthenticationTokenException):
        check(replace(req, headers=without))
    for bad in [
        "AWS4-HMAC-SHA1 Credential=x",
        "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sagemaker/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=00",
    ]:
        with pytest.raises(IncompleteSignatureException):
            check(replace(req, headers={**without, "Authorization": bad}))
    no_date = {k: v for k, v in req.headers.items() if k != "X-Amz-Date"}
    with pytest.raises(IncompleteSignatureException, match="X-Amz-Date"):
        check(replace(req, headers=no_date))


def test_every_auth_error_is_403() -> None:
    for cls in (
        MissingAuthenticationTokenException,
        IncompleteSignatureException,
        UnrecognizedClientException,
        InvalidSignatureException,
    ):
        assert issubclass(cls, AuthError)
        assert cls.http_status == 403
        assert cls.code == cls.__name__


# --- real botocore clients: what boto3 actually puts on the wire --------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _capture(service: str, call: str, params: dict[str, Any], body: bytes) -> Received:
    session = botocore.session.get_session()
    client = session.create_client(
        service,
        region_name=REGION,
        endpoint_url=BASE,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
    )
    sent: list[Received] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        data = request.body or b""
        data = data.encode() if isinstance(data, str) else data
        sent.append(received(request.method, request.url, dict(request.headers.items()), data))
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(body))

    client.meta.events.register("before-send", before_send)
    getattr(client, call)(**params)
    client.close()
    assert len(sent) == 1
    return sent[0]


@pytest.mark.parametrize(
    ("service", "call", "params", "response"),
    [
        ("sagemaker", "describe_endpoint_config", {"EndpointConfigName": "c"}, b"{}"),
        ("sagemaker", "list_endpoints", {"NameContains": "a b"}, b'{"Endpoints": []}'),
        (
            "sagemaker-runtime",
            "invoke_endpoint",
            {"EndpointName": "my-endpoint", "Body": b"\x00\x01binary", "ContentType": "x/y"},
            b"ok",
        ),
        ("cloudwatch", "describe_alarms", {"AlarmNames": ["a b", "c/d"]}, b"{}"),
    ],
)
def test_real_botocore_clients_verify(
    service: str, call: str, params: dict[str, Any], response: bytes
) -> None:
    req = _capture(service, call, params, response)
    assert check(req) == ACCESS_KEY
    with pytest.raises(InvalidSignatureException):
        check(replace(req, body=req.body + b"x"))


# --- what a signature must cover (issue 14, item 3) ---------------------------------------------


def _sign_over(req: Received, names: list[str], payload_hash: str | None = None) -> Received:
    """Re-sign `req` with our own signer over exactly `names`: an attacker's (or a sloppy
    client's) minimal signature, which botocore never produces."""
    from greenshift.api.sigv4 import ALGORITHM, canonical_request, signing_key

    headers = {k.lower(): [v] for k, v in req.headers.items()}
    amz_date = req.headers["X-Amz-Date"]
    digest = payload_hash or hashlib.sha256(req.body).hexdigest()
    canonical = canonical_request(req.method, req.path, req.query, headers, names, digest)
    scope = f"{amz_date[:8]}/{REGION}/sagemaker/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    import hmac as _hmac

    key = signing_key(SECRET, amz_date[:8], REGION, "sagemaker")
    signature = _hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (
        f"{ALGORITHM} Credential={ACCESS_KEY}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return replace(req, headers={**req.headers, "Authorization": auth})


def test_our_minimal_signer_is_a_faithful_signer() -> None:
    # The helper below must produce valid signatures, or the refusals would prove nothing.
    req = _sign_over(sagemaker_request(), ["content-type", "host", "x-amz-date", "x-amz-target"])
    assert check(req) == ACCESS_KEY


def test_describe_signed_over_host_and_date_cannot_be_replayed_as_delete() -> None:
    describe = _sign_over(sagemaker_request(), ["host", "x-amz-date"])
    delete = replace(
        describe, headers={**describe.headers, "X-Amz-Target": "SageMaker.DeleteEndpoint"}
    )
    for req in (describe, delete):
        with pytest.raises(IncompleteSignatureException, match="'x-amz-target' must be a"):
            check(req)


@pytest.mark.parametrize(
    ("names", "missing"),
    [
        (["x-amz-date", "x-amz-target"], "'Host'"),
        (["host", "x-amz-target"], "'X-Amz-Date'"),
    ],
)
def test_host_and_date_must_be_signed(names: list[str], missing: str) -> None:
    with pytest.raises(IncompleteSignatureException, match=missing):
        check(_sign_over(sagemaker_request(), names))


def test_content_sha256_header_must_be_signed_when_present() -> None:
    body = b'{"EndpointName": "e"}'
    req = sign("POST", BASE + "/", body, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    with pytest.raises(IncompleteSignatureException, match="x-amz-content-sha256"):
        check(_sign_over(req, ["host", "x-amz-date"]))


@pytest.mark.parametrize("declared", ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
def test_unsigned_payload_is_refused(declared: str) -> None:
    # Signed correctly over the declared value, so only the rule can refuse it: the body is free.
    req = sign("POST", BASE + "/", b'{"EndpointName": "e"}', {"X-Amz-Content-SHA256": declared})
    with pytest.raises(InvalidSignatureException, match=declared):
        check(req)
    with pytest.raises(InvalidSignatureException, match=declared):
        check(replace(req, body=b'{"EndpointName": "anything"}'))


def test_scope_must_be_the_service_of_the_operation() -> None:
    # A CloudWatch-scoped signature on a SageMaker operation: refused when the caller says which
    # service the operation belongs to (the API passes one per target).
    req = sign(
        "POST",
        BASE + "/",
        b'{"EndpointName": "e"}',
        {"X-Amz-Target": "SageMaker.DeleteEndpoint"},
        service="monitoring",
    )
    assert check(req) == ACCESS_KEY  # both names accepted: the old, too-wide call
    with pytest.raises(InvalidSignatureException, match="correct service: 'sagemaker'"):
        verify(
            req.method,
            req.path,
            req.query,
            req.headers,
            req.body,
            KEYS,
            req.when,
            REGION,
            ("sagemaker",),
        )
