"""Progress of the deployment holding an endpoint (DescribeEndpoint's PendingDeploymentSummary)
and its StepStarted event: the registry's most frequent write, so it holds the write lock for as
little as possible and, on SQLite, goes through the group commit (greenshift.registry.batching)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, exists, select, update

from greenshift.registry import schema as t
from greenshift.registry.records import DeploymentEvent, PendingDeployment
from greenshift.registry.sql_base import SqlBase, not_held
from greenshift.registry.sql_rows import event_values

# What progress needs of an endpoint: who holds it and what it shows.
_HELD_PENDING = select(
    t.endpoints.c.arn, t.endpoints.c.current_deployment_id, t.endpoints.c.pending
).where(t.endpoints.c.name_lower == bindparam("key"))
# The same, and whether the event with this key is stored already: one read, not two.
_HELD_PENDING_EVENT = _HELD_PENDING.add_columns(
    exists().where(t.deployment_events.c.key == bindparam("event_key")).label("event_stored")
)
# Progress of the deployment holding the endpoint (the holder check is the WHERE).
_SET_PENDING = (
    update(t.endpoints)
    .where(t.endpoints.c.name_lower == bindparam("key"))
    .where(t.endpoints.c.current_deployment_id == bindparam("holder"))
    .values(
        pending=bindparam("doc", type_=t.endpoints.c.pending.type),
        revision=t.endpoints.c.revision + 1,
    )
)


class SqlProgress(SqlBase):
    """Progress methods of the SQL registry."""

    def set_progress(
        self, name: str, deployment_id: str, pending: PendingDeployment | None
    ) -> None:
        self._progress(name, deployment_id, pending, None)

    def record_progress(
        self,
        name: str,
        deployment_id: str,
        pending: PendingDeployment | None,
        event: DeploymentEvent,
    ) -> None:
        self._progress(name, deployment_id, pending, event)

    def _progress(
        self,
        name: str,
        deployment_id: str,
        pending: PendingDeployment | None,
        event: DeploymentEvent | None,
    ) -> None:
        """What the write lock is held for is one conditional UPDATE and one INSERT that ignores
        a stored key: the holder check is the UPDATE's WHERE, and the "is anything new?" read is
        done before, without the lock (a retried or repeated step writes nothing)."""
        key = name.lower()
        doc = None if pending is None else pending.model_dump(mode="json")
        event_key = None if event is None else event.key
        with self._read() as conn:
            if event_key is None:
                row = conn.execute(_HELD_PENDING, {"key": key}).first()
            else:
                held = {"key": key, "event_key": event_key}
                row = conn.execute(_HELD_PENDING_EVENT, held).first()
        if row is None:
            raise self._missing("endpoint", name)
        if row.current_deployment_id != deployment_id:
            raise not_held(row, deployment_id)
        write_pending = row.pending != doc
        write_event = event is not None and not (event_key is not None and row.event_stored)
        if not (write_pending or write_event):
            return

        def write(conn: Connection) -> None:
            if write_pending:
                changed = conn.execute(
                    _SET_PENDING, {"key": key, "holder": deployment_id, "doc": doc}
                ).rowcount
                if not changed:  # released or taken since the read: say by whom (nothing written)
                    held = conn.execute(_HELD_PENDING, {"key": key}).first()
                    if held is None:
                        raise self._missing("endpoint", name)
                    raise not_held(held, deployment_id)
            if write_event:
                assert event is not None
                conn.execute(self._insert_event, event_values(event))

        self._batched_writes.run(write)
