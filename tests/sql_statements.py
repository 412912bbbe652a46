"""Counting the SQL statements a piece of code runs: what a registry change saves, in a test and
in bench/workflow_bench.py (each costs ~0.1 ms of CPU on SQLite, ~0.4 ms on PostgreSQL,
whatever it does)."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy
from sqlalchemy.engine import Engine

KINDS = ("SELECT", "INSERT", "UPDATE", "DELETE")


class Statements:
    """The reads and writes run on `target` (one engine, or the Engine class: every engine of
    the process) until `close()`, by their first word. BEGIN (SQLite's BEGIN IMMEDIATE), COMMIT
    and the like are not counted."""

    def __init__(self, target: Any = Engine) -> None:
        self.seen: list[str] = []
        self._target = target
        self._lock = threading.Lock()
        sqlalchemy.event.listen(target, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        word = statement.lstrip()[:6].upper()
        if word in KINDS:
            with self._lock:
                self.seen.append(word)

    @property
    def count(self) -> int:
        return len(self.seen)

    def reset(self) -> None:
        with self._lock:
            self.seen = []

    def close(self) -> None:
        sqlalchemy.event.remove(self._target, "before_cursor_execute", self._on_execute)

    def __enter__(self) -> Statements:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
