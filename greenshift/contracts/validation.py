"""Parse a request into its contract and report violations the way AWS words them.

Clients turn off client-side validation (`parameter_validation=False`) and other SDKs do less of
it than botocore, so the server must say what is wrong exactly as SageMaker does:

    1 validation error detected: Value 'a_b' at 'endpointName' failed to satisfy constraint:
    Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}

and for several, `N validation errors detected: <first>; <second>`. Paths are AWS's: members in
lowerCamelCase, list items as `productionVariants.1.member.variantName` (1-based), a missing
required member is `Value null at '<path>' ... Member must not be null` (AWS prints null without
quotes). Constraints on the items of a list of scalars, and on map keys and values, are reported
at the list or map, wrapped as AWS does: `Member must satisfy constraint: [...]`,
`Map keys must satisfy constraint: [...]`, `Map value must satisfy constraint: [...]`; we list only
the constraints that failed.

Wrong JSON types (a string where an integer belongs, an object where a string belongs) are not
constraint violations: AWS's deserializer rejects them first with `SerializationException`
("STRING_VALUE can not be converted to an Integer"). We do the same (our choice, to match what
botocore callers see), adding the member path, which AWS omits, because it costs nothing and
saves the user a search: `SerializationError` below, a subclass of our ValidationError so callers
that catch "bad request" catch both. Validation is strict: no "5" -> 5 coercion, as AWS.

Numbers are finite. Python's JSON decoder reads `Infinity`, `NaN` and `1e999` (as inf), which
JSON does not allow and AWS's deserializer refuses; stored, such a number wedged an endpoint (its
workflow could not decode its own arguments). `parse_request` refuses them first, as a
`SerializationException`, so every entry point that parses (API, CloudWatch, workflows) does.

`forbid_unknown=True` refuses members the contract does not have, at any depth, in botocore's
words (`Unknown parameter in DeploymentConfig: "Foo", must be one of: ...`): the workflows use it,
since nobody validated a request started from the temporal CLI. The API keeps AWS's leniency.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from greenshift.errors import ValidationError

ShapeT = TypeVar("ShapeT", bound=BaseModel)


class SerializationError(ValidationError):
    """The body is not JSON, or a member has the wrong JSON type (AWS `SerializationException`)."""

    code = "SerializationException"
    http_status = 400


def parse_request(
    shape_cls: type[ShapeT], document: Any, *, forbid_unknown: bool = False
) -> ShapeT:
    """Validate a decoded JSON document against a contract, strictly, as AWS does.

    Raises SerializationError for wrong JSON types and non-finite numbers, and ValidationError
    (`ValidationException`) with AWS's message for constraint violations and, with
    `forbid_unknown`, for members the contract does not have.
    """
    if not isinstance(document, Mapping):
        raise SerializationError(_unexpected_token(document) or "Unexpected document type.")
    where = non_finite_path(document)
    if where is not None:
        raise SerializationError(
            f"Non-finite number (Infinity, NaN or out of range) at '{where}': numbers must be "
            "finite."
        )
    if forbid_unknown:
        unknown = unknown_members(shape_cls, document)
        if unknown:
            raise ValidationError("; ".join(unknown))
    try:
        return shape_cls.model_validate(document, strict=True)
    except pydantic.ValidationError as exc:
        raise _to_error(shape_cls, exc, document) from None


def non_finite_path(document: Any, path: str = "") -> str | None:
    """The AWS-style path of the first non-finite number in `document`, or None."""
    if isinstance(document, float) and not math.isfinite(document):
        return path or "."
    if isinstance(document, Mapping):
        for key, value in document.items():
            found = non_finite_path(
                value, f"{path}.{_camel(str(key))}" if path else _camel(str(key))
            )
            if found is not None:
                return found
    elif isinstance(document, list | tuple):
        for i, value in enumerate(document):
            found = non_finite_path(value, f"{path}.{i + 1}.member")
            if found is not None:
                return found
    return None


def unknown_members(shape_cls: type[BaseModel], document: Any, path: str = "") -> list[str]:
    """Every member of `document` that `shape_cls` does not have, at any depth, in botocore's
    ParamValidationError words (the form a botocore user knows for this mistake)."""
    problems: list[str] = []
    if not isinstance(document, Mapping):
        return problems
    fields = shape_cls.model_fields
    where = path or "input"
    for key, value in document.items():
        if key not in fields:
            problems.append(
                f'Unknown parameter in {where}: "{key}", must be one of: {", ".join(fields)}'
            )
            continue
        problems.extend(
            _unknown_in(fields[key].annotation, value, f"{path}.{key}" if path else key)
        )
    return problems


def _unknown_in(tp: Any, value: Any, path: str) -> list[str]:
    tp = _unwrap(tp)
    if _is_model(tp):
        return unknown_members(tp, value, path)
    origin = typing.get_origin(tp)
    if origin is list and isinstance(value, list):
        item = typing.get_args(tp)[0]
        return [p for i, v in enumerate(value) for p in _unknown_in(item, v, f"{path}[{i}]")]
    if origin is dict and isinstance(value, Mapping):
        item = typing.get_args(tp)[1]
        return [p for k, v in value.items() for p in _unknown_in(item, v, f"{path}.{k}")]
    return []


def parse_body(shape_cls: type[ShapeT], body: bytes | str) -> ShapeT:
    """Decode a JSON 1.1 request body and parse it; an empty body is the empty object."""
    if not body or not body.strip():
        return parse_request(shape_cls, {})
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationError(f"The request body is not valid JSON: {exc}") from None
    return parse_request(shape_cls, document)


def format_validation_error(
    exc: pydantic.ValidationError, shape_cls: type[BaseModel] | None = None
) -> str:
    """AWS's message for every constraint violation in `exc` (type errors included as text).

    `shape_cls` (default: the model named in `exc.title`, when it can be found) lets map keys be
    told from member names; without it a map key reads as a member.
    """
    errors = [_describe(shape_cls, e) for e in exc.errors(include_url=False)]
    return _join(errors)


def _to_error(
    shape_cls: type[BaseModel], exc: pydantic.ValidationError, document: Any
) -> ValidationError:
    errors = exc.errors(include_url=False)
    for error in errors:
        if _is_type_error(error):
            return SerializationError(_type_message(shape_cls, error))
    return ValidationError(_join([_describe(shape_cls, e, document) for e in errors]))


def _join(parts: list[str]) -> str:
    n = len(parts)
    noun = "error" if n == 1 else "errors"
    return f"{n} validation {noun} detected: " + "; ".join(parts)


# --- one error ----------------------------------------------------------------------------------

_CONSTRAINTS = {
    "missing",
    "string_too_short",
    "string_too_long",
    "too_short",
    "too_long",
    "greater_than_equal",
    "less_than_equal",
    "greater_than",
    "less_than",
    "literal_error",
    "string_pattern_mismatch",
}


def _is_type_error(error: Any) -> bool:
    return error["type"] not in _CONSTRAINTS and error.get("input") is not None


def _describe(shape_cls: type[BaseModel] | None, error: Any, document: Any = None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    where = _locate(shape_cls, error["loc"], document)
    if kind == "missing" or error.get("input") is None:
        return f"Value null at '{where.path}' failed to satisfy constraint: Member must not be null"
    if kind in ("string_too_short", "too_short"):
        why = f"Member must have length greater than or equal to {ctx['min_length']}"
    elif kind in ("string_too_long", "too_long"):
        why = f"Member must have length less than or equal to {ctx['max_length']}"
    elif kind == "greater_than_equal":
        why = f"Member must have value greater than or equal to {_num(ctx['ge'])}"
    elif kind == "less_than_equal":
        why = f"Member must have value less than or equal to {_num(ctx['le'])}"
    elif kind == "greater_than":
        why = f"Member must have value greater than {_num(ctx['gt'])}"
    elif kind == "less_than":
        why = f"Member must have value less than {_num(ctx['lt'])}"
    elif kind == "literal_error":
        values = where.enum if where.enum is not None else [ctx.get("expected", "")]
        why = f"Member must satisfy enum value set: [{', '.join(values)}]"
    elif kind == "string_pattern_mismatch":
        why = f"Member must satisfy regular expression pattern: {ctx['pattern']}"
    else:
        return _type_message(shape_cls, error)
    if where.wrap:
        why = f"{where.wrap} must satisfy constraint: [{why}]"
        value = where.container if where.container is not None else error["input"]
    else:
        value = error["input"]
    return f"Value '{_render(value)}' at '{where.path}' failed to satisfy constraint: {why}"


def _type_message(shape_cls: type[BaseModel] | None, error: Any) -> str:
    """Coral's deserializer wording, plus the path."""
    where = _locate(shape_cls, error["loc"])
    value = error.get("input")
    head = _unexpected_token(value)
    if head is None:
        token = (
            "BOOLEAN_VALUE"
            if isinstance(value, bool)
            else ("NUMBER_VALUE" if isinstance(value, int | float) else "STRING_VALUE")
        )
        head = f"{token} can not be converted to {_expected(error['type'])}"
    return f"{head} at '{where.path}'"


def _unexpected_token(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return "Start of structure or map found where not expected."
    if isinstance(value, list | tuple):
        return "Start of list found where not expected."
    return None


def _expected(kind: str) -> str:
    if kind.startswith("int"):
        return "an Integer"
    if kind.startswith(("float", "decimal")):
        return "a Double"
    if kind.startswith("bool"):
        return "a Boolean"
    if kind.startswith(("datetime", "date", "timestamp")):
        return "a Timestamp"
    if kind.startswith(("model", "dict", "dataclass")):
        return "a Structure"
    if kind.startswith(("list", "tuple", "set", "iterable")):
        return "a List"
    if kind.startswith("bytes"):
        return "a Blob"
    return "a String"


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _render(value: Any) -> str:
    """Roughly Java's toString, which is what AWS prints inside the quotes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return str(value)


# --- where an error is --------------------------------------------------------------------------


class _Where:
    __slots__ = ("container", "enum", "path", "wrap")

    def __init__(self) -> None:
        self.path = ""
        self.enum: list[str] | None = None
        self.wrap: str | None = None  # "Member" (list of scalars), "Map keys", "Map value"
        self.container: Any = None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and `| None` down to the shape's own type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin is typing.Union or origin is types.UnionType:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _locate(
    shape_cls: type[BaseModel] | None, loc: tuple[Any, ...], document: Any = None
) -> _Where:
    """Walk the contract's types along pydantic's `loc` to build AWS's path.

    The walk is what tells a map key from a member name, a list index of a structure list
    (`.1.member.`) from one of a scalar list (reported at the list), and finds enum values.
    """
    where = _Where()
    parts: list[str] = []
    tp: Any = shape_cls
    node = document
    i = 0
    while i < len(loc):
        step = loc[i]
        parent, node = node, _child(node, step)
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if origin is list and isinstance(step, int):
            item = _unwrap(typing.get_args(tp)[0])
            if _is_model(item) or i + 1 < len(loc):
                parts.append(f"{step + 1}.member")
                tp = item
            else:
                where.wrap = "Member"
                where.container = parent
                tp = item
        elif origin is dict:
            key_t, value_t = typing.get_args(tp)
            if i + 1 < len(loc) and loc[i + 1] == "[key]":
                where.wrap = "Map keys"
                where.container = parent
                tp = key_t
                i += 1
            else:
                if i + 1 == len(loc):
                    where.wrap = "Map value"
                    where.container = parent
                else:
                    parts.append(str(step))
                tp = value_t
        elif _is_model(tp) and isinstance(step, str) and step in tp.model_fields:
            parts.append(_camel(step))
            tp = tp.model_fields[step].annotation
        else:
            parts.append(_camel(str(step)) if isinstance(step, str) else str(step))
            tp = None
        i += 1
    leaf = _unwrap(tp)
    if typing.get_origin(leaf) is typing.Literal:
        where.enum = [str(v) for v in typing.get_args(leaf)]
    where.path = ".".join(parts)
    return where


def _child(node: Any, step: Any) -> Any:
    if isinstance(node, Mapping):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return node[step]
    return None
