"""What every part of `SqlRegistry` shares: its transactions, the words of its refusals, and the
two locks writers take (endpoint row first, then generation row, so writers cannot deadlock).

`SqlBase` only declares the state; `SqlRegistry.__init__` (greenshift.registry.sql) builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, Table, bindparam, select, update
from sqlalchemy.exc import OperationalError

from greenshift.errors import ConflictError, ResourceInUse, ResourceNotFound, ServiceUnavailable
from greenshift.registry import schema as t
from greenshift.registry.batching import GroupCommit
from greenshift.registry.database import write_transaction
from greenshift.registry.records import EndpointRecord
from greenshift.registry.sql_rows import endpoint_record, endpoint_values

T = TypeVar("T")

# What SEMANTICS.md section 2 calls each kind in its messages.
_KIND_WORDS = {
    "model": "model",
    "endpoint-config": "endpoint configuration",
    "endpoint": "endpoint",
}

# Built once: the hot reads (DescribeEndpoint) skip rebuilding their statement on every call.
_BY_NAME = {
    table.name: select(table).where(table.c.name_lower == bindparam("key"))
    for table in (t.models, t.endpoint_configs, t.endpoints)
}
_LOCK_ENDPOINT = _BY_NAME[t.endpoints.name].with_for_update()
_LOCK_GENERATION = select(t.generation.c.value).where(t.generation.c.id == 1).with_for_update()
_UPDATE_ENDPOINT = update(t.endpoints).where(t.endpoints.c.name_lower == bindparam("row_key"))
_BUMP_GENERATION = (
    update(t.generation).where(t.generation.c.id == 1).values(value=t.generation.c.value + 1)
)


class SqlBase:
    """The engine and transactions the registry's parts share."""

    url: str
    schema_version: int
    _arn_for: Callable[[str, str], str]
    _clock: Callable[[], datetime]
    _engine: Engine
    _reader: Engine
    _local_writes: AbstractContextManager[Any]
    # INSERT of a deployment event that ignores a stored key (sql_deployments.insert_event).
    _insert_event: Any
    # The most frequent writes (progress, fleets, instances) queue for SQLite's lock as one batch.
    _batched_writes: GroupCommit

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._local_writes, write_transaction(self._engine) as conn:
                yield conn
        except OperationalError as exc:
            raise ServiceUnavailable(f"The registry database is unavailable: {exc.orig}") from exc

    def _in_batch(self, work: Callable[[Connection], T]) -> T:
        """`work` in a write transaction through the group commit: on SQLite it shares one
        with the writers queued meanwhile (greenshift.registry.batching, whose rule it keeps: a
        refusal only before anything is written). Returns what `work` returned."""
        result: list[T] = []

        def job(conn: Connection) -> None:
            result[:] = [work(conn)]

        self._batched_writes.run(job)
        return result[0]

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._reader.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise ServiceUnavailable(f"The registry database is unavailable: {exc.orig}") from exc

    def _missing(self, kind: str, name: str) -> ResourceNotFound:
        return ResourceNotFound(
            f'Could not find {_KIND_WORDS[kind]} "{self._arn_for(kind, name)}".'
        )

    @staticmethod
    def _exists(kind: str, arn: str) -> ResourceInUse:
        return ResourceInUse(f'Cannot create already existing {_KIND_WORDS[kind]} "{arn}".')

    def _get_named(self, table: Table, name: str) -> Row[Any] | None:
        with self._read() as conn:
            return conn.execute(_BY_NAME[table.name], {"key": name.lower()}).first()


def lock_endpoint(conn: Connection, key: str) -> EndpointRecord | None:
    """The endpoint row, locked for this write transaction (None: no such endpoint)."""
    row = conn.execute(_LOCK_ENDPOINT, {"key": key}).first()
    return None if row is None else endpoint_record(row)


def write_endpoint(conn: Connection, record: EndpointRecord) -> None:
    values = endpoint_values(record)
    set_endpoint_columns(conn, values.pop("name_lower"), values)


def set_endpoint_columns(conn: Connection, key: str, values: dict[str, Any]) -> None:
    """Set these columns (stored values) of endpoint `key`, by the statement built once."""
    conn.execute(_UPDATE_ENDPOINT, {**values, "row_key": key})


def not_held(record: EndpointRecord | Row[Any, Any, Any], deployment_id: str) -> ConflictError:
    """`record`: the endpoint, or a row with its `arn` and `current_deployment_id`."""
    arn: str = record.arn
    holder: str = record.current_deployment_id or "no deployment"
    return ConflictError(
        f'Endpoint "{arn}" is held by {holder}, not by deployment {deployment_id}.'
    )


def lock_generation(conn: Connection) -> None:
    """Routing, fleet and instance writes take the generation row first: serialized, and each
    change bumps the generation exactly once. On SQLite the transaction's BEGIN IMMEDIATE
    already holds the database's only write lock: nothing more to take (one statement less in
    the most frequent writes)."""
    if conn.dialect.name != "sqlite":
        conn.execute(_LOCK_GENERATION).first()


def bump_generation(conn: Connection) -> None:
    conn.execute(_BUMP_GENERATION)
