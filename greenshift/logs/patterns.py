"""CloudWatch Logs filter patterns for unstructured events, as a pure matcher.

Supported, as CloudWatch matches them (case-sensitive, anywhere in the message):

- `""` or no pattern: every event;
- `ERROR Exception`: terms separated by spaces, all of them must appear;
- `"Connection refused"`: a quoted phrase (spaces, punctuation) must appear as written;
- `?ERROR ?WARN`: at least one of the `?` terms must appear;
- `ERROR -Retrying`: a `-` term must not appear;
- `%ERR[0-9]+%`: a regular expression (the whole pattern between `%`).

JSON (`{ $.level = ... }`) and space-delimited (`[ip, user, ...]`) patterns are refused with
InvalidParameterException, never silently matched as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from greenshift.logs.errors import InvalidParameterException

Matcher = Callable[[str], bool]


@dataclass(frozen=True)
class Terms:
    required: tuple[str, ...]
    any_of: tuple[str, ...]
    excluded: tuple[str, ...]

    def __call__(self, message: str) -> bool:
        return (
            all(t in message for t in self.required)
            and not any(t in message for t in self.excluded)
            and (not self.any_of or any(t in message for t in self.any_of))
        )


def compile_pattern(pattern: str | None) -> Matcher:
    """The matcher for a filterPattern; raises InvalidParameterException for a pattern that is
    malformed or of a kind not supported here."""
    text = (pattern or "").strip()
    if not text:
        return lambda message: True
    if text.startswith("{") or text.startswith("["):
        raise InvalidParameterException(
            "Greenshift supports term, phrase and %regex% filter patterns only, not JSON or "
            f"space-delimited patterns: {pattern!r}."
        )
    if len(text) >= 2 and text.startswith("%") and text.endswith("%"):
        try:
            regex = re.compile(text[1:-1])
        except re.error as exc:
            raise InvalidParameterException(f"Invalid regex filter pattern: {exc}.") from None
        return lambda message: regex.search(message) is not None
    required: list[str] = []
    any_of: list[str] = []
    excluded: list[str] = []
    for prefix, term in tokenize(text):
        {"": required, "?": any_of, "-": excluded}[prefix].append(term)
    return Terms(tuple(required), tuple(any_of), tuple(excluded))


def tokenize(text: str) -> list[tuple[str, str]]:
    """(prefix, term) pairs: prefix is "", "?" or "-"; a quoted term keeps its spaces."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        prefix = ""
        if text[i] in "?-" and i + 1 < len(text) and not text[i + 1].isspace():
            prefix, i = text[i], i + 1
        if text[i] == '"':
            close = text.find('"', i + 1)
            if close < 0:
                raise InvalidParameterException(
                    f"Invalid filter pattern: unterminated quote in {text!r}."
                )
            term, i = text[i + 1 : close], close + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace():
                j += 1
            term, i = text[i:j], j
        if term:
            out.append((prefix, term))
    return out
