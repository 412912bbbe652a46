"""Request documents into typed shapes, with AWS's validation messages.

The contracts package owns the message form (`greenshift.contracts.validation.parse_request`);
until it is importable this module formats the first pydantic error itself, so the API stays
usable. Either way a bad request is a `ValidationError`, never a 500.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

import pydantic

from greenshift.contracts.base import AwsShape
from greenshift.errors import ValidationError

S = TypeVar("S", bound=AwsShape)


def _contracts_parser() -> Any:
    try:
        return importlib.import_module("greenshift.contracts.validation").parse_request
    except (ImportError, AttributeError):
        return None


_PARSE = _contracts_parser()


def _fallback(shape_cls: type[S], doc: dict[str, Any]) -> S:
    try:
        return shape_cls.from_wire(doc)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        path = ".".join(str(p) for p in first["loc"])
        path = path[:1].lower() + path[1:]
        value = first.get("input")
        if first["type"] == "missing":
            raise ValidationError(
                f"1 validation error detected: Value null at '{path}' failed to satisfy "
                "constraint: Member must not be null"
            ) from None
        raise ValidationError(
            f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: Value "
            f"'{value}' at '{path}' failed to satisfy constraint: {first['msg']}"
        ) from None


def parse(shape_cls: type[S], doc: dict[str, Any]) -> S:
    """Parse and validate `doc` as `shape_cls`; raises ValidationError with AWS's message form."""
    if _PARSE is not None:
        result: S = _PARSE(shape_cls, doc)
        return result
    return _fallback(shape_cls, doc)
