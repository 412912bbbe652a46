"""The wire form of every error, in one place (SEMANTICS.md section 1).

Handlers raise `greenshift.errors` exceptions; this module turns any exception into the AWS JSON
error document `{"__type": code, "message": text}` with its HTTP status. Nothing else in the API
builds an error response, so a new failure mode cannot leak a traceback or an unhandled 5xx.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import Response

from greenshift.contracts.validation import SerializationError
from greenshift.errors import GreenshiftError, ServiceUnavailable

__all__ = ["SerializationError", "UnknownOperationError", "classify", "error_response"]

log = logging.getLogger("greenshift.api")

JSON_11 = "application/x-amz-json-1.1"


class UnknownOperationError(GreenshiftError):
    """The X-Amz-Target names no operation this server serves."""

    code = "UnknownOperationException"
    http_status = 400


class NoDeploymentInProgressError(GreenshiftError):
    """Pause/resume/promote/abort of an endpoint that has no deployment running."""

    code = "ValidationException"
    http_status = 400


def _is_database_outage(exc: BaseException) -> bool:
    # Imported lazily: the API must not need SQLAlchemy to render an error.
    try:
        from sqlalchemy.exc import InterfaceError, OperationalError
    except ImportError:  # pragma: no cover - SQLAlchemy is a pinned dependency
        return False
    return isinstance(exc, OperationalError | InterfaceError)


def classify(exc: BaseException) -> GreenshiftError:
    """The GreenshiftError a raised exception stands for on the wire.

    A database that does not answer is `ServiceUnavailable` (botocore retries it); anything not
    raised on purpose is `InternalFailure` with a generic message, and is logged with its
    traceback here, so the client never sees internals.
    """
    if isinstance(exc, GreenshiftError):
        return exc
    if _is_database_outage(exc):
        log.warning("registry unavailable: %s", exc)
        return ServiceUnavailable("The registry database is unavailable; retry shortly.")
    log.error("internal failure", exc_info=exc)
    return GreenshiftError("An internal error occurred; see the API server's log.")


def error_response(exc: BaseException, request_id: str) -> Response:
    """The AWS JSON error response for `exc`."""
    err = classify(exc)
    body = {"__type": err.code, "message": err.message}
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code}
    return Response(
        json.dumps(body), status_code=err.http_status, headers=headers, media_type=JSON_11
    )
