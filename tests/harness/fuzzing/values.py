"""Random documents shaped by botocore's service model (pure: everything comes from the `rng`).

`valid_ish` follows the shape (types, required members, enums, roughly the length limits), so a
request gets past JSON decoding and into validation and the handlers; `mutate` then breaks one
thing at a time (a wrong type, a missing required member, an out-of-range number, a huge or
unicode string, deep nesting, an unknown member), which is where servers fall over.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Sequence
from typing import Any

from botocore.model import Shape, StructureShape

NASTY_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "../../etc/passwd",
    "%2e%2e%2f",
    "ü日本語😀",
    "\ud800",  # a lone surrogate: json.dumps escapes it, decoders may choke
    "'; DROP TABLE endpoints; --",
    "${jndi:ldap://127.0.0.1/x}",
    "a" * 64,
    "A-" * 40,
    "x" * 70_000,
    "-1",
    "NaN",
    "null",
    "arn:aws:sagemaker:us-east-1:000000000000:endpoint/x",
)
NASTY_NUMBERS: tuple[Any, ...] = (-1, 0, 2**31, 2**63, 10**30, -(10**30), 1.5, 1e308, -0.0)


def wrong_type(rng: random.Random) -> Any:
    """A JSON value of a random kind, for a member that expects another kind."""
    return rng.choice(
        [
            None,
            True,
            rng.choice(NASTY_NUMBERS),
            rng.choice(NASTY_STRINGS),
            [rng.choice(NASTY_STRINGS)],
            {"Nested": {"Garbage": [1, {"x": None}]}},
            [],
            {},
        ]
    )


DEEP = "__greenshift_fuzz_deep__"
"""Placeholder that `encode` turns into a list nested thousands of levels deep (json.dumps itself
would refuse to write it): a parser without a depth limit recurses until it breaks."""


def encode(doc: Any, depth: int = 5000) -> bytes:
    """`doc` as JSON, with every DEEP placeholder expanded into `depth` nested lists."""
    import json

    text = json.dumps(doc)
    return text.replace(json.dumps(DEEP), "[" * depth + "]" * depth).encode()


def _string(shape: Shape, rng: random.Random, names: Sequence[str]) -> str:
    enum = shape.enum
    if enum:
        return str(rng.choice(enum))
    lowered = shape.name.lower()
    if names and ("name" in lowered or lowered.endswith("arn")) and rng.random() < 0.7:
        return rng.choice(names)
    lo = int(shape.metadata.get("min", 1))
    hi = min(int(shape.metadata.get("max", 40)), 40)
    size = rng.randint(lo, max(lo, hi))
    return (
        "fz"
        + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(size))[
            : max(0, size - 2)
        ]
    )


def _number(shape: Shape, rng: random.Random) -> int | float:
    lo = shape.metadata.get("min", 0)
    hi = shape.metadata.get("max", lo + 100)
    if shape.type_name in ("float", "double"):
        return rng.uniform(float(lo), float(hi))
    return rng.randint(int(lo), int(min(hi, lo + 10_000)))


def valid_ish(shape: Shape, rng: random.Random, names: Sequence[str] = (), depth: int = 0) -> Any:
    """A value that roughly fits `shape` (some optional members, short lists)."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        out: dict[str, Any] = {}
        required = set(shape.required_members)
        for member, sub in shape.members.items():
            if member in required or (depth < 4 and rng.random() < 0.3):
                out[member] = valid_ish(sub, rng, names, depth + 1)
        return out
    if kind == "list":
        count = rng.randint(int(shape.metadata.get("min", 0)), min(3, shape.metadata.get("max", 3)))
        return [valid_ish(shape.member, rng, names, depth + 1) for _ in range(count)]
    if kind == "map":
        return {
            _string(shape.key, rng, ()): valid_ish(shape.value, rng, names, depth + 1)
            for _ in range(rng.randint(0, 2))
        }
    if kind == "string":
        return _string(shape, rng, names)
    if kind in ("integer", "long", "float", "double"):
        return _number(shape, rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "timestamp":
        return rng.choice([1_700_000_000, 1_700_000_000.5, "2026-01-01T00:00:00Z"])
    if kind == "blob":
        return base64.b64encode(rng.randbytes(8)).decode()
    return None


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member or element inside a document."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            found.append((*prefix, key))
            found += _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found.append((*prefix, index))
            found += _paths(sub, (*prefix, index))
    return found


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


def _delete(doc: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        doc = doc[step]
    del doc[path[-1]]


MUTATIONS = (
    "wrong_type",
    "drop_member",
    "huge_string",
    "unicode",
    "out_of_range",
    "unknown_member",
    "deep_nesting",
    "null",
)


def mutate(doc: dict[str, Any], rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One malformed variant of `doc` (a deep copy is changed) and the name of the mutation."""
    import copy

    out = copy.deepcopy(doc)
    paths = _paths(out)
    kind = rng.choice(MUTATIONS)
    if not paths or kind == "unknown_member":
        out[rng.choice(["Bogus", "endpointname", "__type", "ÜnknownMember"])] = wrong_type(rng)
        return "unknown_member", out
    path = rng.choice(paths)
    if kind == "wrong_type":
        _set(out, path, wrong_type(rng))
    elif kind == "drop_member":
        _delete(out, path)
    elif kind == "huge_string":
        _set(out, path, "é" * rng.choice([256, 4096, 1_000_000]))
    elif kind == "unicode":
        _set(out, path, rng.choice(NASTY_STRINGS[4:8]))
    elif kind == "out_of_range":
        _set(out, path, rng.choice(NASTY_NUMBERS))
    elif kind == "deep_nesting":
        _set(out, path, DEEP)
    else:
        _set(out, path, None)
    return kind, out
