"""Request documents into typed shapes, with AWS's validation messages.

The contracts package owns the message form; this is the one place the API calls it, so a bad
request is always a `ValidationException` (or `SerializationException`), never a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

from greenshift.contracts.base import AwsShape
from greenshift.contracts.validation import parse_request

S = TypeVar("S", bound=AwsShape)


def parse(shape_cls: type[S], doc: dict[str, Any]) -> S:
    """Parse and validate `doc` as `shape_cls`; raises ValidationError with AWS's message form."""
    return parse_request(shape_cls, doc)
