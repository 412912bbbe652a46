"""AWS Signature Version 4 verification of incoming requests, as a pure function.

boto3, the AWS CLI and the SageMaker SDK sign every request; with access keys configured the
control API recomputes the signature with the secret it knows and refuses what does not match,
with the error codes and messages AWS uses (so botocore maps them to the same exceptions):

- no Authorization header: `MissingAuthenticationTokenException`;
- a malformed one: `IncompleteSignatureException`;
- an access key we do not know: `UnrecognizedClientException`;
- a wrong signature, a scope for another region or service, a date more than five minutes from
  ours: `InvalidSignatureException`.

Only the Authorization-header form is supported (what botocore sends); presigned URLs are not.
`x-amz-security-token` is ignored (no session credentials here); when `x-amz-content-sha256` is
present it stands for the payload, as in botocore's signer, and must match the body:
`UNSIGNED-PAYLOAD` (and the streaming forms) are S3's and refused here, since none of the services
on these ports lets a signature leave the body out.

What a signature must cover, because a signature over less can be replayed as another request:
`host`, the header carrying the signing time (`x-amz-date`, or `date` without it), and every
header that selects the operation or the payload when present (`x-amz-target`,
`x-amz-content-sha256`). A signature over `host;x-amz-date` alone would let a signed
DescribeEndpoint be replayed, within its five minutes, as DeleteEndpoint with the same body.

The canonical request is built exactly as botocore's `SigV4Auth` builds it, from the request as
received: `path` is the raw, still percent-encoded path of the request line (ASGI `raw_path`),
`query` the raw query string.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from greenshift.errors import GreenshiftError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class AuthError(GreenshiftError):
    """Base of the authentication failures: all 403, never retried."""

    code = "AccessDeniedException"
    http_status = 403


class MissingAuthenticationTokenException(AuthError):  # noqa: N818 - AWS's name
    """The request is not signed."""

    code = "MissingAuthenticationTokenException"


class IncompleteSignatureException(AuthError):  # noqa: N818 - AWS's name
    """The Authorization header is not a well-formed SigV4 header."""

    code = "IncompleteSignatureException"


class UnrecognizedClientException(AuthError):  # noqa: N818 - AWS's name
    """The access key id is not one we know."""

    code = "UnrecognizedClientException"


class InvalidSignatureException(AuthError):  # noqa: N818 - AWS's name
    """The signature does not match, its scope is wrong, or it is too old or too new."""

    code = "InvalidSignatureException"


UNRECOGNIZED = "The security token included in the request is invalid."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


def verify(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    keys: Mapping[str, str],
    now: datetime,
    region: str,
    services: Iterable[str],
) -> str:
    """Check the request's SigV4 signature; return the access key id that signed it.

    `headers` is a mapping or (name, value) pairs (repeated headers allowed); names are
    case-insensitive. `keys` maps access key ids to secret keys. `now` is an aware datetime.
    `services` are the signing names accepted (e.g. `sagemaker`, `monitoring`).
    """
    header_map = _lower_headers(headers)
    auth = _check_header_part(header_map, keys, now, region, services)
    payload_hash = _payload_hash(header_map, body)
    canonical = canonical_request(method, path, query, header_map, auth.signed, payload_hash)
    string_to_sign = "\n".join([ALGORITHM, auth.amz_date, "/".join(auth.scope), _sha256(canonical)])
    key = signing_key(auth.secret, *auth.scope[:3])
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth.signature):
        raise InvalidSignatureException(MISMATCH)
    return auth.access_key


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Authorization:
    """An Authorization header that passed every check but the signature itself."""

    access_key: str
    scope: tuple[str, str, str, str]
    signed: list[str]
    signature: str
    secret: str
    amz_date: str


def check_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    keys: Mapping[str, str],
    now: datetime,
    region: str,
    services: Iterable[str],
) -> None:
    """Every check `verify` makes that does not need the body: run it before reading the body, so
    an unsigned or wrongly signed request is refused before the server buffers a byte of it
    (issue 14 item 4: authenticate before reading, not after). Same errors as `verify`."""
    _check_header_part(_lower_headers(headers), keys, now, region, services)


def _check_header_part(
    header_map: dict[str, list[str]],
    keys: Mapping[str, str],
    now: datetime,
    region: str,
    services: Iterable[str],
) -> _Authorization:
    authorization = header_map.get("authorization")
    if not authorization:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    access_key, scope, signed_headers, signature = _parse_authorization(authorization[0])
    _check_signed_headers(header_map, signed_headers)
    secret = keys.get(access_key)
    if secret is None:
        raise UnrecognizedClientException(UNRECOGNIZED)

    amz_date, when = _request_time(header_map)
    scope_date, scope_region, scope_service, terminator = scope
    if terminator != "aws4_request" or scope_date != amz_date[:8]:
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid date: '{amz_date[:8]}', not '{scope_date}'."
        )
    if scope_region != region:
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region, not '{scope_region}'. "
        )
    allowed = list(services)
    if scope_service not in allowed:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{allowed[0] if allowed else ''}'. "
        )
    _check_time(amz_date, when, now)
    return _Authorization(access_key, scope, signed_headers, signature, secret, amz_date)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key of SigV4: HMAC chain over date, region, service, `aws4_request`."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, list[str]],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    """The canonical request, as botocore's SigV4Auth.canonical_request builds it."""
    lines = [method.upper(), _canonical_path(path), _canonical_query(query)]
    for name in signed_headers:
        values = headers.get(name)
        if values is None:
            # A signed header that did not arrive cannot match: fail as a mismatch.
            raise InvalidSignatureException(MISMATCH)
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}")
    lines.append("")
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def _lower_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, list[str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name.lower().strip(), []).append(value)
    return out


def _parse_authorization(
    value: str,
) -> tuple[str, tuple[str, str, str, str], list[str], str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(f"Unsupported authorization algorithm '{algorithm}'.")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields]
    if missing:
        raise IncompleteSignatureException(
            f"Authorization header requires '{missing[0]}' parameter. Authorization={value.strip()}"
        )
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or not credential[0]:
        raise IncompleteSignatureException(
            f"Authorization header requires a Credential of the form "
            f"'<access key>/<date>/<region>/<service>/aws4_request', not '{fields['Credential']}'."
        )
    access_key, date, region, service, terminator = credential
    signed = fields["SignedHeaders"].split(";")
    if signed != sorted(signed) or "" in signed:
        raise IncompleteSignatureException("SignedHeaders must be a sorted, ';'-separated list.")
    return access_key, (date, region, service, terminator), signed, fields["Signature"].lower()


# Headers that, when present, must be signed: each selects what the request does.
MUST_SIGN_WHEN_PRESENT = ("x-amz-target", "x-amz-content-sha256")


def _check_signed_headers(headers: Mapping[str, list[str]], signed: list[str]) -> None:
    """Refuse a signature that leaves out what makes the request this request (see above).

    AWS answers these with IncompleteSignatureException naming the header; so do we, before the
    key lookup, as AWS does for a malformed Authorization.
    """
    if "host" not in signed:
        raise IncompleteSignatureException(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    time_header = "x-amz-date" if "x-amz-date" in headers else "date"
    if time_header in headers and time_header not in signed:
        name = "X-Amz-Date" if time_header == "x-amz-date" else "Date"
        raise IncompleteSignatureException(
            f"'{name}' must be a 'SignedHeader' in the AWS Authorization."
        )
    for name in MUST_SIGN_WHEN_PRESENT:
        if name in headers and name not in signed:
            raise IncompleteSignatureException(
                f"'{name}' must be a 'SignedHeader' in the AWS Authorization."
            )


def _request_time(headers: Mapping[str, list[str]]) -> tuple[str, datetime]:
    """The signing time: X-Amz-Date, else Date; as the string signed and as a datetime."""
    amz = headers.get("x-amz-date")
    try:
        if amz:
            when = datetime.strptime(amz[0], _AMZ_DATE).replace(tzinfo=UTC)
            return amz[0], when
        date = headers.get("date")
        if date:
            when = parsedate_to_datetime(date[0]).astimezone(UTC)
            return when.strftime(_AMZ_DATE), when
    except (ValueError, TypeError):
        pass
    raise IncompleteSignatureException(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def _check_time(amz_date: str, when: datetime, now: datetime) -> None:
    now = now.astimezone(UTC)
    stamp = now.strftime(_AMZ_DATE)
    if when < now - MAX_SKEW:
        earliest = (now - MAX_SKEW).strftime(_AMZ_DATE)
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - 5 min.)"
        )
    if when > now + MAX_SKEW:
        latest = (now + MAX_SKEW).strftime(_AMZ_DATE)
        raise InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than {latest} ({stamp} + 5 min.)"
        )


def _payload_hash(headers: Mapping[str, list[str]], body: bytes) -> str:
    actual = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-amz-content-sha256")
    if not declared:
        return actual
    value = declared[0].strip()
    if value == "UNSIGNED-PAYLOAD" or value.startswith("STREAMING-"):
        raise InvalidSignatureException(
            f"x-amz-content-sha256 '{value}' is not accepted by this service: "
            "sign the SHA-256 of the payload."
        )
    if value.lower() != actual:
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    return value


def _canonical_path(path: str) -> str:
    # botocore: quote(normalize_url_path(path), safe='/~') on the path as sent, so an encoded
    # character is encoded again (`%20` -> `%2520`), as SigV4 prescribes for non-S3 services.
    return quote(_remove_dot_segments(path.split("?", 1)[0]) or "/", safe="/~")


def _remove_dot_segments(url: str) -> str:
    # RFC 3986 5.2.4, plus AWS's removal of empty segments: botocore.utils.remove_dot_segments.
    if not url:
        return ""
    out: list[str] = []
    for segment in url.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if out:
                    out.pop()
            else:
                out.append(segment)
    first = "/" if url[0] == "/" else ""
    last = "/" if url[-1] == "/" and out else ""
    return first + "/".join(out) + last


def _canonical_query(query: str) -> str:
    # botocore sorts the already-encoded pairs of the URL it sends; do the same on what arrived.
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        pairs.append((key, value))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))
