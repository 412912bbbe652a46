"""The hosts table, beside the registry's on the same database.

Kept in a module of its own (created here when missing, not by a registry migration step) so the
hosts feature does not renumber the registry's migrations that other work also extends; moving it
into `greenshift.registry.migrations` later is one step that creates the same table. Every write is
one short statement, so heartbeats from many hosts never hold a lock for long.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from greenshift.hosts.messages import Placement
from greenshift.hosts.records import HostRecord, Reservation, counts_room
from greenshift.registry.database import (
    create_registry_engine,
    is_sqlite,
    local_write_lock,
    write_transaction,
)
from greenshift.registry.schema import UtcDateTime

_metadata = MetaData()

hosts = Table(
    "hosts",
    _metadata,
    Column("address", String(256), primary_key=True),
    Column("task_queue", String(512), nullable=False),
    Column("vcpus", Integer, nullable=False, default=0),
    Column("memory_gib", Float, nullable=False, default=0.0),
    Column("gpus", Integer, nullable=False, default=0),
    Column("instance_types", JSON, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("draining", Boolean, nullable=False, default=False),
)

# Instance indices a placement handed out whose host has not yet written the instance's record:
# until it does (or the reservation expires), every other placement counts them, so two
# placements at once never give one index twice nor the same room to two fleets.
reservations = Table(
    "host_reservations",
    _metadata,
    Column("fleet_id", String(256), primary_key=True),
    Column("index", Integer, primary_key=True),
    Column("host", String(256), nullable=False),
    Column("reserved_at", UtcDateTime, nullable=False),
)

# PostgreSQL: the transaction-scoped advisory lock every placement takes (any constant will do,
# as long as all placements use the same one). SQLite: BEGIN IMMEDIATE is the lock.
PLACEMENT_LOCK = 0x67736870


def _utcnow() -> datetime:
    return datetime.now(UTC)


# Built once: every placement (and a launch's release of its reservations) runs them.
_ALL_RESERVATIONS = select(reservations)
_FLEET_RESERVATIONS = select(reservations).where(reservations.c.fleet_id == bindparam("fleet"))
_HOSTS = select(hosts).order_by(hosts.c.address)
_EXPIRED = reservations.delete().where(reservations.c.reserved_at < bindparam("before"))
_RESERVE = reservations.insert()
_RELEASE = reservations.delete().where(
    reservations.c.fleet_id == bindparam("fleet"),
    reservations.c.index.in_(bindparam("indices", expanding=True)),
)
_ANY_HOST = select(hosts.c.address).limit(1)
_HEARTBEAT = hosts.update().where(hosts.c.address == bindparam("host"))


def _reservations(conn: Connection, fleet_id: str | None) -> list[Reservation]:
    """The pending reservations, of one fleet only when `fleet_id` is given: on hosts that count
    no room, what other fleets reserved takes none (their number grows with the deployments
    placing at once)."""
    if fleet_id is None:
        rows = conn.execute(_ALL_RESERVATIONS)
    else:
        rows = conn.execute(_FLEET_RESERVATIONS, {"fleet": fleet_id})
    return [
        Reservation(fleet_id=r.fleet_id, index=r.index, host=r.host, reserved_at=r.reserved_at)
        for r in rows
    ]


def _hosts(conn: Connection) -> list[HostRecord]:
    return [HostRecord.model_validate(r._asdict()) for r in conn.execute(_HOSTS)]


class HostStore:
    """Hosts on the registry database at `url`. Thread-safe; build one per process."""

    def __init__(self, url: str) -> None:
        self.engine = create_registry_engine(url)
        # Shared with every registry of this process on the same SQLite file.
        self._local_writes = local_write_lock(self.engine)
        _metadata.create_all(self.engine, checkfirst=True)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._local_writes, write_transaction(self.engine) as conn:
            yield conn

    def register(self, host: HostRecord) -> None:
        """Insert or replace the host's advertisement; a re-registering host keeps its drain
        flag (a drained host that restarts must not take instances again by surprise)."""
        values: dict[str, Any] = host.model_dump()
        values.pop("draining")
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(hosts).values(**values, draining=host.draining)
        statement = statement.on_conflict_do_update(
            index_elements=["address"],
            set_={k: v for k, v in values.items() if k not in ("address", "registered_at")},
        )
        with self._write() as conn:
            conn.execute(statement)

    def heartbeat(self, address: str, at: datetime | None = None) -> bool:
        """Record that the host is alive; False when it is not registered."""
        with self._write() as conn:
            result = conn.execute(_HEARTBEAT, {"host": address, "heartbeat_at": at or _utcnow()})
        return bool(result.rowcount)

    def set_draining(self, address: str, draining: bool) -> bool:
        with self._write() as conn:
            result = conn.execute(
                hosts.update().where(hosts.c.address == address).values(draining=draining)
            )
        return bool(result.rowcount)

    def get(self, address: str) -> HostRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(hosts).where(hosts.c.address == address)).first()
        return HostRecord.model_validate(row._asdict()) if row is not None else None

    def list(self) -> list[HostRecord]:
        with self.engine.connect() as conn:
            return _hosts(conn)

    def any_registered(self) -> bool:
        """Whether a host is registered (every step asks: is there anything to place on?)."""
        with self.engine.connect() as conn:
            return conn.execute(_ANY_HOST).first() is not None

    def remove(self, address: str) -> None:
        with self._write() as conn:
            conn.execute(hosts.delete().where(hosts.c.address == address))

    def place(
        self,
        fleet_id: str,
        compute: Callable[[builtins.list[Reservation], builtins.list[HostRecord]], Placement],
        ttl_seconds: float,
        now: datetime | None = None,
    ) -> Placement:
        """Run `compute` (reads instances, decides the shares of fleet `fleet_id`) under the
        placement lock, given the reservations still pending (only this fleet's when no host
        counts room: `_reservations`) and the hosts, and record the
        indices it hands out, all in one transaction: placements on any number of workers take
        turns, each seeing what the ones before it reserved. Reservations older than
        `ttl_seconds` are dropped (their host never launched them: it was lost, or the activity
        never started). The hosts are read on the transaction's own connection: placements
        queued for the lock hold the pool's others, so a second one could never be had."""
        now = now or _utcnow()
        with self._write() as conn:
            if not is_sqlite(self.engine):
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLACEMENT_LOCK})
            conn.execute(_EXPIRED, {"before": now - timedelta(seconds=ttl_seconds)})
            known = _hosts(conn)
            pending = _reservations(conn, None if any(counts_room(h) for h in known) else fleet_id)
            placement = compute(pending, known)
            rows = [
                {"fleet_id": fleet_id, "index": i, "host": share.address, "reserved_at": now}
                for share in placement.shares
                for i in share.indices
            ]
            if rows:
                conn.execute(_RESERVE, rows)
        return placement

    def release(self, fleet_id: str, indices: builtins.list[int]) -> None:
        """The host launched (or gave up on) these: their instance records speak for them now."""
        if not indices:
            return
        with self._write() as conn:
            conn.execute(_RELEASE, {"fleet": fleet_id, "indices": list(indices)})

    def reservations(self) -> builtins.list[Reservation]:
        with self.engine.connect() as conn:
            return _reservations(conn, None)

    def close(self) -> None:
        self.engine.dispose()
