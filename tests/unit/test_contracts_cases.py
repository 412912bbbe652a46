"""Test cases for the contracts, derived from botocore's service model (no hand-written list).

For every constrained member reachable from an operation's input: values just inside and just
outside each string/list/map length bound and numeric bound, every enum value and bad ones, a
string that matches each pattern and one that violates it, and each required member left out.
Each case carries the minimal valid document around it and what AWS would answer.

This module is the generator (imported by test_contracts_botocore.py); the tests at its end check
the generator itself, so a generator bug cannot make the contract test vacuous.
"""

from __future__ import annotations

import math
import re
import re._constants as sre_c
import re._parser as sre_parse
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import regex
from botocore.model import ServiceModel, Shape

BIG = 10**7
MISSING = object()

# Characters tried first when a class must be satisfied / when one must be broken.
PREFERRED = "aAb0Z9x-_.:/=+@ ,;~!#$%&*()[]{}|\\\"'?<>^`\t\né€\x00"
BAD_CHARS = " !#_/\n\x00-.é€A:a0@*\t"

# Java's Unicode classes, narrowed to ASCII subsets that Python's `re` parser understands: only
# used to *generate* matching text; every generated value is re-checked with `regex` against the
# model's own pattern.
_UNICODE_CLASSES = {"L": "a-zA-Z", "N": "0-9", "Z": " ", "M": "\u0300", "P": ".,", "S": "+$"}


@dataclass(frozen=True)
class Case:
    """One request: the member path, the value put there, and the model's verdict."""

    operation: str
    path: tuple[tuple[str, Any], ...]  # ("m", Name) | ("i", index) | ("k", None) | ("v", None)
    value: Any  # MISSING: leave the member out
    ok: bool
    phrase: str  # the constraint AWS names when it refuses (empty when ok)
    label: str


# --- strings that match a pattern ---------------------------------------------------------------


def python_pattern(pattern: str) -> str:
    """The model's (Java) pattern with \\p{..} classes replaced by ASCII subsets."""
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "p" and pattern[i + 2 : i + 3] == "{":
                end = pattern.index("}", i)
                name = pattern[i + 3 : end]
                chars = _UNICODE_CLASSES.get(name[:1], "a")
                out.append(chars if in_class else f"[{chars}]")
                i = end + 1
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def _width(items: list[Any]) -> tuple[int, int]:
    lo = hi = 0
    for op, av in items:
        a, b = _item_width(op, av)
        lo, hi = lo + a, min(BIG, hi + b)
    return lo, hi


def _item_width(op: Any, av: Any) -> tuple[int, int]:
    if op in (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.ANY, sre_c.IN, sre_c.CATEGORY):
        return 1, 1
    if op is sre_c.SUBPATTERN:
        return _width(list(av[-1]))
    if op is sre_c.BRANCH:
        widths = [_width(list(alt)) for alt in av[1]]
        return min(w[0] for w in widths), max(w[1] for w in widths)
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        lo, hi, sub = av
        a, b = _width(list(sub))
        top = BIG if hi == sre_c.MAXREPEAT else hi
        return lo * a, min(BIG, top * b)
    return 0, 0  # AT, ASSERT, ASSERT_NOT: zero width, left to the final check


_CATEGORIES = {
    sre_c.CATEGORY_DIGIT: r"\d",
    sre_c.CATEGORY_NOT_DIGIT: r"\D",
    sre_c.CATEGORY_SPACE: r"\s",
    sre_c.CATEGORY_NOT_SPACE: r"\S",
    sre_c.CATEGORY_WORD: r"\w",
    sre_c.CATEGORY_NOT_WORD: r"\W",
}


def _in_set(ch: str, items: list[Any]) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            hit = hit or ord(ch) == av
        elif op is sre_c.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op is sre_c.CATEGORY:
            hit = hit or re.fullmatch(_CATEGORIES[av], ch) is not None
    return hit != negate


def _candidates(lo: int, hi: int) -> list[int]:
    seen: list[int] = []
    for n in (hi, lo, lo + 1, hi - 1, (lo + hi) // 2):
        if lo <= n <= hi and n not in seen:
            seen.append(n)
    return seen


def _gen_seq(items: list[Any], length: int) -> str | None:
    if not items:
        return "" if length == 0 else None
    first, rest = items[0], items[1:]
    rmin, rmax = _width(rest)
    fmin, fmax = _item_width(*first)
    for l1 in _candidates(max(fmin, length - rmax), min(fmax, length - rmin)):
        head = _gen_item(first, l1)
        if head is None:
            continue
        tail = _gen_seq(rest, length - l1)
        if tail is not None:
            return head + tail
    return None


def _gen_item(item: Any, length: int) -> str | None:
    op, av = item
    if op is sre_c.LITERAL:
        return chr(av) if length == 1 else None
    if op is sre_c.NOT_LITERAL:
        return next(c for c in PREFERRED if ord(c) != av) if length == 1 else None
    if op is sre_c.ANY:
        return "a" if length == 1 else None
    if op in (sre_c.IN, sre_c.CATEGORY):
        members = list(av) if op is sre_c.IN else [(sre_c.CATEGORY, av)]
        if length != 1:
            return None
        return next((c for c in PREFERRED if _in_set(c, members)), None)
    if op is sre_c.SUBPATTERN:
        return _gen_seq(list(av[-1]), length)
    if op is sre_c.BRANCH:
        for alt in av[1]:
            text = _gen_seq(list(alt), length)
            if text is not None:
                return text
        return None
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        return _gen_repeat(av, length)
    return "" if length == 0 else None


def _gen_repeat(av: Any, length: int) -> str | None:
    lo, hi, sub = av
    sub_items = list(sub)
    smin, smax = _width(sub_items)
    top = BIG if hi == sre_c.MAXREPEAT else hi
    if length == 0:
        if lo == 0:
            return ""
        one = _gen_seq(sub_items, 0)
        return None if one is None else one * lo
    fewest = max(lo, 1, -(-length // max(smax, 1)))
    most = min(top, length // smin) if smin else min(top, length)
    for n in _candidates(fewest, most):
        # All repetitions as short as possible but the last, which takes the rest.
        pieces = [smin] * (n - 1) + [length - smin * (n - 1)]
        if not smin <= pieces[-1] <= smax:
            base, extra = divmod(length, n)
            pieces = [base + (1 if k < extra else 0) for k in range(n)]
        parts = [_gen_seq(sub_items, p) for p in pieces]
        if all(p is not None for p in parts):
            return "".join(p for p in parts if p is not None)
    return None


@cache
def pattern_width(pattern: str) -> tuple[int, int]:
    """Shortest and longest match of a pattern (longest capped at BIG)."""
    return _width(list(sre_parse.parse(python_pattern(pattern))))


@cache
def matching(pattern: str, length: int) -> str | None:
    """A string of exactly `length` characters that fully matches the model's pattern."""
    text = _gen_seq(list(sre_parse.parse(python_pattern(pattern))), length)
    if text is not None and regex.fullmatch(pattern, text) is not None:
        return text
    return None


def violating(pattern: str, lo: int, hi: int) -> str | None:
    """A string of allowed length that breaks the pattern: one character replaced."""
    start = max(lo, 1, pattern_width(pattern)[0])
    for length in sorted({start, start + 1, min(hi, max(start, 8))}):
        if not lo <= length <= hi:
            continue
        good = matching(pattern, length)
        if good is None:
            continue
        for pos in range(length):
            for bad in BAD_CHARS:
                text = good[:pos] + bad + good[pos + 1 :]
                if regex.fullmatch(pattern, text) is None:
                    return text
    return None


# --- minimal valid values -----------------------------------------------------------------------


def string_value(shape: Shape) -> str:
    meta = shape.metadata
    if shape.enum:
        return str(shape.enum[0])
    lo, hi = meta.get("min", 0), meta.get("max", BIG)
    pattern = meta.get("pattern")
    start = max(lo, pattern_width(pattern)[0]) if pattern else lo
    for length in (max(start, 1), start, *range(start + 1, min(hi, start + 12) + 1)):
        if not lo <= length <= hi:
            continue
        if pattern is None:
            return "a" * length
        text = matching(pattern, length)
        if text is not None:
            return text
    raise AssertionError(f"cannot generate a value for {shape.name} ({meta})")


def number_value(shape: Shape) -> int | float:
    meta = shape.metadata
    cast = int if shape.type_name in ("integer", "long") else float
    if "min" in meta:
        return cast(meta["min"])
    if "max" in meta and meta["max"] < 1:
        return cast(meta["max"])
    return cast(1)


def minimal(shape: Shape, depth: int = 0) -> Any:
    """The smallest valid value of a shape: required members only, lists at their minimum."""
    assert depth < 30, f"recursive shape {shape.name}"
    t = shape.type_name
    if t == "structure":
        return {name: minimal(shape.members[name], depth + 1) for name in shape.required_members}
    if t == "list":
        return [minimal(shape.member, depth + 1) for _ in range(shape.metadata.get("min", 0))]
    if t == "map":
        keys = distinct_keys(shape.key, shape.metadata.get("min", 0))
        assert keys is not None
        return {k: minimal(shape.value, depth + 1) for k in keys}
    if t == "string":
        return string_value(shape)
    if t in ("integer", "long", "float", "double"):
        return number_value(shape)
    if t == "boolean":
        return True
    if t == "timestamp":
        return 1_700_000_000.0
    raise AssertionError(f"no minimal value for {shape.name} ({t})")


def distinct_keys(shape: Shape, n: int) -> list[str] | None:
    """n different valid map keys, or None when the generator cannot find them."""
    if n == 0:
        return []
    base = string_value(shape)
    meta = shape.metadata
    keys: list[str] = []
    for i in range(n * 4):
        key = (base + str(i))[-meta.get("max", BIG) :] if i else base
        ok = meta.get("min", 0) <= len(key) <= meta.get("max", BIG)
        if "pattern" in meta:
            ok = ok and regex.fullmatch(meta["pattern"], key) is not None
        if ok and key not in keys:
            keys.append(key)
        if len(keys) == n:
            return keys
    return None


# --- the cases ----------------------------------------------------------------------------------


def cases(model: ServiceModel, operations: list[str]) -> Iterator[Case]:
    for operation in operations:
        shape = model.operation_model(operation).input_shape
        assert shape is not None
        yield from _structure_cases(operation, shape, (), ())


def _structure_cases(
    op: str, shape: Shape, path: tuple[tuple[str, Any], ...], stack: tuple[str, ...]
) -> Iterator[Case]:
    if shape.name in stack:
        return
    stack = (*stack, shape.name)
    required = set(shape.required_members)
    for name, member in shape.members.items():
        here = (*path, ("m", name))
        if name in required:
            yield Case(op, here, MISSING, False, "Member must not be null", f"{name} missing")
        yield from _member_cases(op, member, here, stack)


def _member_cases(
    op: str, shape: Shape, path: tuple[tuple[str, Any], ...], stack: tuple[str, ...]
) -> Iterator[Case]:
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        yield from _structure_cases(op, shape, path, stack)
    elif t == "list":
        item = minimal(shape.member)
        for n, ok, phrase in _length_bounds(meta):
            yield Case(op, path, [item] * n, ok, phrase, f"{shape.name} of {n} items")
        yield from _member_cases(op, shape.member, (*path, ("i", 0)), stack)
    elif t == "map":
        value = minimal(shape.value)
        for n, ok, phrase in _length_bounds(meta):
            keys = distinct_keys(shape.key, n)
            if keys is not None:
                doc = dict.fromkeys(keys, value)
                yield Case(op, path, doc, ok, phrase, f"{shape.name} of {n} entries")
        yield from _member_cases(op, shape.key, (*path, ("k", None)), stack)
        yield from _member_cases(op, shape.value, (*path, ("v", None)), stack)
    elif t == "string":
        yield from _string_cases(op, shape, path)
    elif t in ("integer", "long", "float", "double"):
        yield from _number_cases(op, shape, path)


def _length_bounds(meta: dict[str, Any]) -> Iterator[tuple[int, bool, str]]:
    if meta.get("min", 0) > 0:
        lo = meta["min"]
        yield lo, True, ""
        yield lo - 1, False, f"Member must have length greater than or equal to {lo}"
    if "max" in meta:
        hi = meta["max"]
        yield hi, True, ""
        yield hi + 1, False, f"Member must have length less than or equal to {hi}"


def _string_cases(op: str, shape: Shape, path: tuple[tuple[str, Any], ...]) -> Iterator[Case]:
    meta = shape.metadata
    name = shape.name
    if shape.enum:
        values = ", ".join(shape.enum)
        phrase = f"Member must satisfy enum value set: [{values}]"
        for value in shape.enum:
            yield Case(op, path, value, True, "", f"{name}={value}")
        bad = ["NOT_A_VALUE", "", shape.enum[0].lower(), shape.enum[0] + " "]
        for value in dict.fromkeys(bad):
            if value not in shape.enum:
                yield Case(op, path, value, False, phrase, f"{name}={value!r}")
        return
    pattern = meta.get("pattern")
    lo, hi = meta.get("min", 0), meta.get("max", BIG)
    for length, ok, phrase in _length_bounds(meta):
        text = matching(pattern, length) if pattern else "a" * length
        if text is None:
            if ok:
                continue  # the pattern itself forbids this length: no valid value there
            text = "a" * length
        yield Case(op, path, text, ok, phrase, f"{name} of length {length}")
    if pattern:
        yield Case(op, path, string_value(shape), True, "", f"{name} matching")
        bad_text = violating(pattern, lo, hi)
        if bad_text is not None:
            phrase = f"Member must satisfy regular expression pattern: {pattern}"
            yield Case(op, path, bad_text, False, phrase, f"{name}={bad_text!r}")


def _number_cases(op: str, shape: Shape, path: tuple[tuple[str, Any], ...]) -> Iterator[Case]:
    meta = shape.metadata
    is_int = shape.type_name in ("integer", "long")
    name = shape.name
    if "min" in meta:
        lo = meta["min"]
        below = lo - 1 if is_int else math.nextafter(float(lo), -math.inf)
        yield Case(op, path, lo, True, "", f"{name}={lo}")
        phrase = f"Member must have value greater than or equal to {lo}"
        yield Case(op, path, below, False, phrase, f"{name}={below}")
    if "max" in meta:
        hi = meta["max"]
        above = hi + 1 if is_int else math.nextafter(float(hi), math.inf)
        yield Case(op, path, hi, True, "", f"{name}={hi}")
        phrase = f"Member must have value less than or equal to {hi}"
        yield Case(op, path, above, False, phrase, f"{name}={above}")


# --- documents and AWS paths ----------------------------------------------------------------------


def document(model: ServiceModel, case: Case) -> dict[str, Any]:
    """The minimal valid input document with the case's value at its path."""
    shape = model.operation_model(case.operation).input_shape
    assert shape is not None
    root: dict[str, Any] = minimal(shape)
    node: Any = root
    for step_no, (kind, arg) in enumerate(case.path):
        last = step_no == len(case.path) - 1
        if kind == "m":
            member = shape.members[arg]
            if last:
                if case.value is MISSING:
                    node.pop(arg, None)
                else:
                    node[arg] = case.value
                return root
            if arg not in node or not node[arg]:
                node[arg] = (
                    minimal(member) if member.type_name != "list" else [minimal(member.member)]
                )
                if member.type_name == "map" and not node[arg]:
                    key = string_value(member.key)
                    node[arg] = {key: minimal(member.value)}
            node, shape = node[arg], member
        elif kind == "i":
            if last:
                node[0] = case.value
                return root
            node, shape = node[0], shape.member
        elif kind == "k":
            value = next(iter(node.values()))
            node.clear()
            node[case.value] = value
            return root
        elif kind == "v":
            key = next(iter(node))
            if last:
                node[key] = case.value
                return root
            node, shape = node[key], shape.value
    return root


def aws_path(case: Case) -> str:
    """Where AWS reports the case: camelCase members, `.1.member.` items, scalars at their list."""
    parts: list[str] = []
    for step_no, (kind, arg) in enumerate(case.path):
        last = step_no == len(case.path) - 1
        if kind == "m":
            parts.append(arg[:1].lower() + arg[1:])
        elif kind == "i" and not last:
            parts.append("1.member")
        elif kind == "v" and not last:
            parts.append("KEY")  # replaced by the actual key by the caller
    return ".".join(parts)


def wrapper(case: Case) -> str | None:
    """How AWS wraps a constraint on a list item or a map key/value reported at its container."""
    kind = case.path[-1][0]
    return {"i": "Member", "k": "Map keys", "v": "Map value"}.get(kind)


# --- the generator's own tests ------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)",
        "(?!\\s*$).+",
        "arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        "(https|s3)://([^/]+)/?(.*)",
    ],
)
def test_generated_strings_match_and_violate(pattern: str) -> None:
    lo = pattern_width(pattern)[0]
    for length in (max(lo, 1), max(lo, 1) + 5, 63):
        text = matching(pattern, length)
        assert text is not None and len(text) == length
        assert regex.fullmatch(pattern, text) is not None
    bad = violating(pattern, 0, 2048)
    assert bad is not None and regex.fullmatch(pattern, bad) is None


def test_unviolatable_pattern_has_no_violation() -> None:
    assert violating("[\\S\\s]*", 0, 100) is None


def test_endpoint_name_cannot_exceed_63_by_pattern() -> None:
    assert matching("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", 63) is not None
    assert matching("[a-zA-Z0-9]([a-zA-Z0-9]){0,62}", 64) is None
