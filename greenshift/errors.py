"""Greenshift's exception tree. Each layer raises these; the wire mapping lives in one place
(`greenshift.api.errors`), and workflows see them as non-retryable ApplicationErrors whose `type`
is the `code` here.
"""

from __future__ import annotations


class GreenshiftError(Exception):
    """Base of every error Greenshift raises on purpose."""

    code = "InternalFailure"
    http_status = 500
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(GreenshiftError):
    """A request that cannot be carried out as given (AWS `ValidationException`)."""

    code = "ValidationException"
    http_status = 400


class ResourceNotFound(ValidationError):
    """SageMaker reports missing resources as ValidationException: `Could not find ...`."""


class ResourceInUse(ValidationError):
    """The resource exists or is busy: `Cannot create already existing ...`, in-progress updates."""


class ResourceLimitExceeded(GreenshiftError):
    """A quota would be exceeded; the message names the limit, its value, the use and the ask."""

    code = "ResourceLimitExceeded"
    http_status = 400


class ConflictError(GreenshiftError):
    """A compare-and-set lost a race: somebody else changed the record first."""

    code = "ConflictException"
    http_status = 400


class StaleRouting(ConflictError):
    """A deployment's traffic write came after a later one of the same deployment (its rollback,
    say), or after the deployment let go of the endpoint: an activity that outlived its step."""

    code = "StaleRouting"


class ServiceUnavailable(GreenshiftError):
    """A dependency (Temporal, the database) does not answer; clients retry."""

    code = "ServiceUnavailable"
    http_status = 503
    retryable = True
