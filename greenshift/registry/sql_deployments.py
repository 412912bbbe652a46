"""Deployment records and their event log. An event with a key is stored once: a retried
activity, or a step repeated after a crash, finds its event already there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from greenshift.errors import ResourceNotFound, ServiceUnavailable
from greenshift.registry import schema as t
from greenshift.registry.database import is_sqlite
from greenshift.registry.records import DeploymentEvent, DeploymentRecord
from greenshift.registry.sql_base import SqlBase
from greenshift.registry.sql_rows import deployment_record, deployment_values, event_values
from greenshift.status import DeploymentOutcome

# Built once: the statements of the frequent reads and writes.
_EVENT_BY_KEY = select(t.deployment_events).where(t.deployment_events.c.key == bindparam("key"))
_BY_ID = select(t.deployments).where(t.deployments.c.deployment_id == bindparam("id"))
_OUTCOME = select(t.deployments.c.outcome).where(t.deployments.c.deployment_id == bindparam("id"))
_INSERT = insert(t.deployments)
_END_RUNNING = (
    update(t.deployments)
    .where(t.deployments.c.deployment_id == bindparam("id"))
    .where(t.deployments.c.outcome == DeploymentOutcome.RUNNING.value)
)


class SqlDeployments(SqlBase):
    """Deployment and event methods of the SQL registry."""

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        with self._read() as conn:
            row = conn.execute(_BY_ID, {"id": deployment_id}).first()
        return None if row is None else deployment_record(row)

    def list_deployments(
        self, endpoint: str | None = None, limit: int = 50
    ) -> list[DeploymentRecord]:
        """Newest first."""
        d = t.deployments
        stmt = select(d).order_by(d.c.started_at.desc(), d.c.deployment_id.desc()).limit(limit)
        if endpoint is not None:
            stmt = stmt.where(d.c.endpoint_lower == endpoint.lower())
        with self._read() as conn:
            return [deployment_record(row) for row in conn.execute(stmt)]

    def update_deployment(self, record: DeploymentRecord) -> None:
        values = deployment_values(record)
        d = t.deployments
        with self._write() as conn:
            result = conn.execute(
                update(d).where(d.c.deployment_id == record.deployment_id).values(**values)
            )
            if result.rowcount == 0:
                raise ResourceNotFound(f'Could not find deployment "{record.deployment_id}".')

    def append_event(self, event: DeploymentEvent) -> DeploymentEvent:
        """The key check is a read before the write lock; the INSERT itself ignores a key that
        a concurrent writer stored in between."""
        if event.key is not None:
            with self._read() as conn:
                stored = event_by_key(conn, event.key)
            if stored is not None:
                return stored
        seq: int | None = None
        try:
            with self._write() as conn:
                seq = conn.execute(self._insert_event, event_values(event)).scalar()
        except IntegrityError:
            pass  # lost a race with a writer of the same key (other dialects)
        if seq is None:
            assert event.key is not None
            with self._read() as conn:
                stored = event_by_key(conn, event.key)
            if stored is None:
                raise ServiceUnavailable(f"Event {event.key} was neither stored nor found.")
            return stored
        return event.model_copy(update={"seq": int(seq)})

    def list_events(
        self, deployment_id: str, after_seq: int = 0, limit: int = 1000
    ) -> list[DeploymentEvent]:
        ev = t.deployment_events
        stmt = (
            select(ev)
            .where(ev.c.deployment_id == deployment_id)
            .where(ev.c.seq > after_seq)
            .order_by(ev.c.seq)
            .limit(limit)
        )
        with self._read() as conn:
            return [DeploymentEvent.model_validate(row._asdict()) for row in conn.execute(stmt)]


def insert_event(engine: Engine) -> Any:
    """INSERT of an event that does nothing when its key is already stored (no read first;
    RETURNING then yields no row). Built once per registry: parameters come with each execute."""
    ev = t.deployment_events
    stmt: Any
    if is_sqlite(engine):
        stmt = sqlite.insert(ev).on_conflict_do_nothing(index_elements=["key"])
    elif engine.dialect.name == "postgresql":
        stmt = postgresql.insert(ev).on_conflict_do_nothing(index_elements=["key"])
    else:
        stmt = insert(ev)
    return stmt.returning(ev.c.seq)


def insert_deployment(conn: Connection, record: DeploymentRecord) -> None:
    conn.execute(_INSERT, deployment_values(record))


def event_by_key(conn: Connection, key: str) -> DeploymentEvent | None:
    row = conn.execute(_EVENT_BY_KEY, {"key": key}).first()
    return None if row is None else DeploymentEvent.model_validate(row._asdict())


def deployment_exists(conn: Connection, deployment_id: str) -> bool:
    return conn.execute(_OUTCOME, {"id": deployment_id}).first() is not None


def deployment_ended(conn: Connection, deployment_id: str) -> bool:
    outcome = conn.execute(_OUTCOME, {"id": deployment_id}).scalar()
    return outcome is not None and outcome != DeploymentOutcome.RUNNING.value


def end_deployment(
    conn: Connection,
    deployment_id: str,
    outcome: DeploymentOutcome,
    failure_reason: str | None,
    now: datetime,
) -> None:
    """Ends a deployment still running (an ended one keeps its outcome)."""
    conn.execute(
        _END_RUNNING,
        {
            "id": deployment_id,
            "outcome": DeploymentOutcome(outcome).value,
            "failure_reason": failure_reason,
            "ended_at": now,
        },
    )
