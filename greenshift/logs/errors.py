"""CloudWatch Logs' error codes, as botocore's `logs` model names them (all HTTP 400)."""

from __future__ import annotations

from greenshift.errors import GreenshiftError


class InvalidParameterException(GreenshiftError):  # noqa: N818 - AWS's name
    """A parameter is malformed, out of range, or not supported by Greenshift."""

    code = "InvalidParameterException"
    http_status = 400


class ResourceNotFoundException(GreenshiftError):  # noqa: N818 - AWS's name
    """The log group or log stream does not exist."""

    code = "ResourceNotFoundException"
    http_status = 400


GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."
