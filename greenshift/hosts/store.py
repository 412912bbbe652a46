"""The hosts table, beside the registry's on the same database.

Kept in a module of its own (created here when missing, not by a registry migration step) so the
hosts feature does not renumber the registry's migrations that other work also extends; moving it
into `greenshift.registry.migrations` later is one step that creates the same table. Every write is
one short statement, so heartbeats from many hosts never hold a lock for long.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from greenshift.hosts.records import HostRecord
from greenshift.registry.database import create_registry_engine, writer
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


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HostStore:
    """Hosts on the registry database at `url`. Thread-safe; build one per process."""

    def __init__(self, url: str) -> None:
        self.engine = create_registry_engine(url)
        _metadata.create_all(self.engine, checkfirst=True)

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
        with writer(self.engine).begin() as conn:
            conn.execute(statement)

    def heartbeat(self, address: str, at: datetime | None = None) -> bool:
        """Record that the host is alive; False when it is not registered."""
        with writer(self.engine).begin() as conn:
            result = conn.execute(
                hosts.update()
                .where(hosts.c.address == address)
                .values(heartbeat_at=at or _utcnow())
            )
        return bool(result.rowcount)

    def set_draining(self, address: str, draining: bool) -> bool:
        with writer(self.engine).begin() as conn:
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
            rows = conn.execute(select(hosts).order_by(hosts.c.address)).all()
        return [HostRecord.model_validate(r._asdict()) for r in rows]

    def remove(self, address: str) -> None:
        with writer(self.engine).begin() as conn:
            conn.execute(hosts.delete().where(hosts.c.address == address))

    def close(self) -> None:
        self.engine.dispose()
