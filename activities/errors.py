"""Business failures leave activities as ApplicationErrors whose `type` is the error's code
(STYLE.md habit 8); only errors marked retryable (ServiceUnavailable) let Temporal retry."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from greenshift.errors import GreenshiftError
from greenshift.ports import Progress

P = ParamSpec("P")
R = TypeVar("R")


def business_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn GreenshiftErrors raised by `fn` into typed ApplicationErrors."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except GreenshiftError as error:
            raise ApplicationError(
                error.message, type=error.code, non_retryable=not error.retryable
            ) from error

    return wrapper


def heartbeat_progress() -> Progress:
    """A Progress callback for the ports: heartbeats, and stops the call once the activity was
    cancelled (a sync activity learns of cancellation only through its heartbeats). A local
    activity (a traffic step, workflows/deployment.py) has no heartbeat, the server knows
    nothing of it; its worker tells it of a cancel directly."""
    local = activity.info().is_local

    def progress(message: str) -> None:
        if not local:
            activity.heartbeat(message)
        if activity.is_cancelled():
            raise CancelledError("the deployment no longer needs this step")

    return progress
