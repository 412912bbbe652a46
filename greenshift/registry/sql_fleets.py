"""Fleets and their model instances. Both are part of what the data plane applies: a write that
changes what it routes to bumps the routing generation, under the generation lock."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, delete, func, insert, select, update

from greenshift.registry import schema as t
from greenshift.registry.records import FleetRecord, InstanceRecord
from greenshift.registry.sql_base import SqlBase, bump_generation, lock_generation
from greenshift.registry.sql_rows import fleet_record, instance_record
from greenshift.status import InstanceState

# Built once (building a statement costs more than running it on SQLite): the statements of the
# frequent reads and writes, by table (`_KEY` names the row's key in
# an UPDATE's parameters; the other parameters are the columns it sets).
_KEY = "row_key"
_KEYS = {t.fleets.name: t.fleets.c.fleet_id, t.instances.name: t.instances.c.instance_id}
_BY_KEY = {
    name: select(column.table).where(column == bindparam("key")) for name, column in _KEYS.items()
}
_BY_KEYS = {
    name: select(column.table).where(column.in_(bindparam("keys", expanding=True)))
    for name, column in _KEYS.items()
}
_INSERT = {name: insert(column.table) for name, column in _KEYS.items()}
_UPDATE = {
    name: update(column.table).where(column == bindparam(_KEY)) for name, column in _KEYS.items()
}
_DELETE_INSTANCES = delete(t.instances).where(
    t.instances.c.instance_id.in_(bindparam("keys", expanding=True))
)
_COUNT_RUNNING = (
    select(func.count())
    .select_from(t.instances)
    .where(t.instances.c.state != InstanceState.STOPPED)
)

_STOPPING_REASONS = select(t.instances.c.state_reason).where(
    t.instances.c.host == bindparam("host"), t.instances.c.state == InstanceState.STOPPING
)


@functools.cache
def _list_instances(fleet: bool, endpoint: bool, host: bool) -> Select[Any]:
    """The instance listing by the filters given (each a bind parameter), built once each."""
    i = t.instances
    stmt = select(i).order_by(i.c.fleet_id, i.c.index)
    if fleet:
        stmt = stmt.where(i.c.fleet_id == bindparam("fleet_id"))
    if endpoint:
        stmt = stmt.where(i.c.endpoint_lower == bindparam("endpoint"))
    if host:
        stmt = stmt.where(i.c.host == bindparam("host"))
    return stmt


class SqlFleets(SqlBase):
    """Fleet and instance methods of the SQL registry."""

    def upsert_fleet(self, record: FleetRecord) -> None:
        values = {**record.model_dump(mode="python"), "endpoint_lower": record.endpoint.lower()}
        self._upsert_generational(t.fleets, [(record.fleet_id, values)], ())

    def get_fleet(self, fleet_id: str) -> FleetRecord | None:
        with self._read() as conn:
            row = conn.execute(_BY_KEY[t.fleets.name], {"key": fleet_id}).first()
        return None if row is None else fleet_record(row)

    def list_fleets(
        self, endpoint: str | None = None, include_retired: bool = False
    ) -> list[FleetRecord]:
        f = t.fleets
        stmt = select(f).order_by(f.c.created_at, f.c.fleet_id)
        if endpoint is not None:
            stmt = stmt.where(f.c.endpoint_lower == endpoint.lower())
        if not include_retired:
            stmt = stmt.where(f.c.retired.is_(False))
        with self._read() as conn:
            return [fleet_record(row) for row in conn.execute(stmt)]

    def instance_types(self, fleet_ids: Collection[str]) -> dict[str, str]:
        f = t.fleets
        if not fleet_ids:
            return {}
        stmt = select(f.c.fleet_id, f.c.instance_type).where(f.c.fleet_id.in_(list(fleet_ids)))
        with self._read() as conn:
            return {row.fleet_id: row.instance_type for row in conn.execute(stmt)}

    def upsert_instance(self, record: InstanceRecord) -> None:
        """A write that changes nothing but `updated_at` (a health heartbeat) does not bump the
        generation: the data plane has nothing new to apply."""
        self.upsert_instances([record])

    def upsert_instances(self, records: Sequence[InstanceRecord]) -> None:
        rows = [
            (r.instance_id, {**r.model_dump(mode="python"), "endpoint_lower": r.endpoint.lower()})
            for r in records
        ]
        if rows:
            self._upsert_generational(t.instances, rows, ("updated_at",))

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        with self._read() as conn:
            row = conn.execute(_BY_KEY[t.instances.name], {"key": instance_id}).first()
        return None if row is None else instance_record(row)

    def list_instances(
        self, fleet_id: str | None = None, endpoint: str | None = None, host: str | None = None
    ) -> list[InstanceRecord]:
        stmt = _list_instances(fleet_id is not None, endpoint is not None, host is not None)
        params = {"fleet_id": fleet_id, "endpoint": endpoint and endpoint.lower(), "host": host}
        with self._read() as conn:
            return [instance_record(row) for row in conn.execute(stmt, params)]

    def delete_instance(self, instance_id: str) -> bool:
        return bool(self.delete_instances([instance_id]))

    def delete_instances(self, instance_ids: Sequence[str]) -> int:
        deleted = 0

        def write(conn: Connection) -> None:
            nonlocal deleted
            lock_generation(conn)
            deleted = conn.execute(_DELETE_INSTANCES, {"keys": list(instance_ids)}).rowcount
            if deleted:
                bump_generation(conn)

        if instance_ids:
            self._batched_writes.run(write)
        return deleted

    def stopping_reasons(self, host: str) -> list[str]:
        with self._read() as conn:
            return [row[0] or "" for row in conn.execute(_STOPPING_REASONS, {"host": host})]

    def count_instances(self) -> int:
        with self._read() as conn:
            return int(conn.execute(_COUNT_RUNNING).scalar_one())

    def _upsert_generational(
        self, table: Table, rows: list[tuple[str, dict[str, Any]]], ignored: tuple[str, ...]
    ) -> None:
        """Insert or change each (key, values) row; bump the generation once, unless nothing
        but `ignored` changed. The most frequent writes after progress: on SQLite they go
        through the group commit with it, over statements built once
        (greenshift.registry.batching); the rows are read in one statement and the new ones
        inserted in one, whatever their number (a fleet's launch writes all its instances)."""

        def write(conn: Connection) -> None:
            lock_generation(conn)
            if _upsert_rows(conn, table, dict(rows), ignored):
                bump_generation(conn)

        self._batched_writes.run(write)


def _upsert_rows(
    conn: Connection, table: Table, rows: dict[str, dict[str, Any]], ignored: tuple[str, ...]
) -> bool:
    """Insert or change rows (key -> values); whether anything but `ignored` changed."""
    key_column = _KEYS[table.name].name
    stored = {
        row._mapping[key_column]: row._asdict()
        for row in conn.execute(_BY_KEYS[table.name], {"keys": list(rows)})
    }
    new = [values for key, values in rows.items() if key not in stored]
    if new:
        conn.execute(_INSERT[table.name], new)
    changed_any = bool(new)
    for key, old in stored.items():
        changed = {k: v for k, v in rows[key].items() if old.get(k) != v}
        if changed:
            conn.execute(_UPDATE[table.name], {**changed, _KEY: key})
        changed_any = changed_any or bool(set(changed) - set(ignored))
    return changed_any
