"""Request documents into typed shapes, with AWS's validation messages.

The contracts package owns the message form; this is the one place the API calls it, so a bad
request is always a `ValidationException` (or `SerializationException`), never a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

from greenshift.contracts.base import AwsShape
from greenshift.contracts.support import check_supported
from greenshift.contracts.validation import parse_request

S = TypeVar("S", bound=AwsShape)


def parse(shape_cls: type[S], doc: dict[str, Any]) -> S:
    """Parse and validate `doc` as `shape_cls`; raises ValidationError with AWS's message form,
    or naming a member Greenshift does not support (SEMANTICS.md 8: nothing accepted is
    ignored)."""
    parsed = parse_request(shape_cls, doc)
    check_supported(shape_cls, doc)
    return parsed
