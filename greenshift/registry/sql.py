"""`SqlRegistry`: the `Registry` over SQLAlchemy 2 Core, on a SQLite file or PostgreSQL.

Every write is one short transaction. Compare-and-set reads the row it will change under the
write lock (SQLite: the transaction began IMMEDIATE, so it holds the database's write lock;
PostgreSQL: `SELECT ... FOR UPDATE`), checks, then writes: two processes can never both take an
endpoint. Routing, fleet and instance writes lock the generation row first, so they are
serialized and each change bumps the generation exactly once. Lock order is always endpoint row,
then generation row, so writers cannot deadlock.

The schema is created or upgraded once, when the object is built; calls never check it again.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from greenshift import messages
from greenshift.errors import (
    ConflictError,
    ResourceInUse,
    ResourceNotFound,
    ServiceUnavailable,
    ValidationError,
)
from greenshift.groups.model import group_of
from greenshift.registry import schema as t
from greenshift.registry.api import ListQuery, Registry
from greenshift.registry.batching import GroupCommit
from greenshift.registry.database import create_registry_engine, is_sqlite, reader, writer
from greenshift.registry.migrations import migrate
from greenshift.registry.records import (
    DeploymentEvent,
    DeploymentRecord,
    EndpointConfigRecord,
    EndpointRecord,
    EndpointRouting,
    FleetRecord,
    InstanceRecord,
    ModelRecord,
    Page,
    PendingDeployment,
    RoutingRecord,
    VariantState,
)
from greenshift.registry.tags import SqlTags
from greenshift.status import IN_PROGRESS, DeploymentOutcome, EndpointStatus, InstanceState

R = TypeVar("R")

# What SEMANTICS.md section 2 calls each kind in its messages.
_KIND_WORDS = {
    "model": "model",
    "endpoint-config": "endpoint configuration",
    "endpoint": "endpoint",
}


def default_arn(kind: str, name: str) -> str:
    """ARN with the default region and account; callers with settings pass `settings.arn`."""
    return f"arn:aws:sagemaker:us-east-1:000000000000:{kind}/{name.lower()}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlRegistry(SqlTags):
    """The registry on the database at `url` (SQLAlchemy URL: `sqlite:////abs/path.db`,
    `postgresql+psycopg://user@host:port/db`). Build one per process and share it: it owns the
    connection pool. Thread-safe. `arn_for(kind, name)` names resources in error messages
    (kind: model | endpoint-config | endpoint)."""

    def __init__(
        self,
        url: str,
        *,
        arn_for: Callable[[str, str], str] = default_arn,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.url = url
        self._arn_for = arn_for
        self._clock = clock
        self._engine = create_registry_engine(url)
        self._writer = writer(self._engine)
        self._reader = reader(self._engine)
        # SQLite has one writer at a time. Threads of this process queue on a Python lock, which
        # hands over at once, instead of on SQLite's busy handler, which sleeps 1, 2, 5 ... 25 ms
        # between tries: with dozens of activity threads that made every write wait for idle
        # sleeps. Other processes still meet the busy timeout. PostgreSQL locks rows, not the
        # database, so its writers run in parallel.
        self._local_writes: AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite(self._engine) else nullcontext()
        )
        self._insert_event = self._build_insert_event()
        # Progress writes, the most frequent, queue for SQLite's lock as one batch.
        self._progress_writes = GroupCommit(self._write, batched=is_sqlite(self._engine))
        try:
            self.schema_version = migrate(self._engine)
        except OperationalError as exc:
            self._engine.dispose()
            raise ServiceUnavailable(f"The registry database is unavailable: {exc.orig}") from exc
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        """Close every pooled connection (the object must not be used afterwards)."""
        self._engine.dispose()

    # --- transactions ----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._local_writes, self._writer.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise ServiceUnavailable(f"The registry database is unavailable: {exc.orig}") from exc

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

    # --- models and endpoint configs -------------------------------------------------------

    def create_model(self, record: ModelRecord) -> None:
        self._create_named(t.models, "model", record.name, record.arn, _spec_values(record))

    def get_model(self, name: str) -> ModelRecord | None:
        row = self._get_named(t.models, name)
        return None if row is None else ModelRecord.model_validate(_spec_dict(row))

    def delete_model(self, name: str) -> bool:
        return self._delete_named(t.models, name)

    def list_models(self, query: ListQuery) -> Page[ModelRecord]:
        return self._page(t.models, query, lambda row: ModelRecord.model_validate(_spec_dict(row)))

    def create_endpoint_config(self, record: EndpointConfigRecord) -> None:
        self._create_named(
            t.endpoint_configs, "endpoint-config", record.name, record.arn, _spec_values(record)
        )

    def get_endpoint_config(self, name: str) -> EndpointConfigRecord | None:
        row = self._get_named(t.endpoint_configs, name)
        return None if row is None else EndpointConfigRecord.model_validate(_spec_dict(row))

    def delete_endpoint_config(self, name: str) -> bool:
        return self._delete_named(t.endpoint_configs, name)

    def list_endpoint_configs(self, query: ListQuery) -> Page[EndpointConfigRecord]:
        return self._page(
            t.endpoint_configs,
            query,
            lambda row: EndpointConfigRecord.model_validate(_spec_dict(row)),
        )

    def endpoints_using_config(self, config_name: str) -> list[str]:
        key = config_name.lower()
        e, d = t.endpoints, t.deployments
        serving = select(e.c.name).where(func.lower(e.c.config_name) == key)
        towards = (
            select(e.c.name)
            .join(d, d.c.endpoint_lower == e.c.name_lower)
            .where(d.c.outcome == DeploymentOutcome.RUNNING.value)
            .where(func.lower(d.c.to_config) == key)
        )
        with self._read() as conn:
            names = {r[0] for r in conn.execute(serving.union(towards))}
        return sorted(names, key=str.lower)

    def _create_named(
        self, table: Table, kind: str, name: str, arn: str, values: dict[str, Any]
    ) -> None:
        key = name.lower()
        try:
            with self._write() as conn:
                existing = conn.execute(
                    select(table.c.arn).where(table.c.name_lower == key)
                ).first()
                if existing is not None:
                    raise self._exists(kind, existing[0])
                conn.execute(insert(table).values(name_lower=key, **values))
        except IntegrityError as exc:  # lost an insert race (PostgreSQL)
            raise self._exists(kind, arn) from exc

    def _get_named(self, table: Table, name: str) -> Row[Any] | None:
        with self._read() as conn:
            return conn.execute(_BY_NAME[table.name], {"key": name.lower()}).first()

    def _delete_named(self, table: Table, name: str) -> bool:
        with self._write() as conn:
            result = conn.execute(delete(table).where(table.c.name_lower == name.lower()))
            return bool(result.rowcount)

    # --- endpoints ---------------------------------------------------------------------------

    def get_endpoint(self, name: str) -> EndpointRecord | None:
        row = self._get_named(t.endpoints, name)
        return None if row is None else _endpoint_record(row)

    def list_endpoints(self, query: ListQuery) -> Page[EndpointRecord]:
        return self._page(t.endpoints, query, _endpoint_record)

    def count_endpoints(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.endpoints)).scalar_one())

    def create_endpoint(self, record: EndpointRecord, deployment: DeploymentRecord) -> None:
        """Also marks the endpoint as held by `deployment` (the create is its operation). A retry
        with the same deployment is a no-op."""
        key = record.name.lower()
        values = _endpoint_values(record)
        values["current_deployment_id"] = deployment.deployment_id
        try:
            with self._write() as conn:
                existing = self._lock_endpoint(conn, key)
                if existing is not None:
                    if existing.current_deployment_id == deployment.deployment_id:
                        return
                    raise self._exists("endpoint", existing.arn)
                conn.execute(insert(t.endpoints).values(**values))
                conn.execute(insert(t.deployments).values(**_deployment_values(deployment)))
        except IntegrityError as exc:
            raise self._exists("endpoint", record.arn) from exc

    def begin_operation(
        self,
        name: str,
        allowed: Iterable[EndpointStatus],
        new_status: EndpointStatus,
        deployment: DeploymentRecord,
    ) -> EndpointRecord:
        allowed_set = frozenset(EndpointStatus(s) for s in allowed)
        key = name.lower()
        with self._write() as conn:
            record = self._lock_endpoint(conn, key)
            if record is None:
                raise self._missing("endpoint", name)
            if record.current_deployment_id == deployment.deployment_id:
                return record  # a retried activity: it already holds the endpoint
            self._check_can_begin(record, allowed_set)
            self._check_group_hold(conn, key, record.arn, deployment.deployment_id)
            if self._deployment_exists(conn, deployment.deployment_id):
                raise ConflictError(
                    f"Deployment {deployment.deployment_id} already ran on endpoint "
                    f'"{record.arn}"; start a new deployment.'
                )
            changes: dict[str, Any] = {
                "status": EndpointStatus(new_status),
                "current_deployment_id": deployment.deployment_id,
                "revision": record.revision + 1,
                "last_modified": self._clock(),
            }
            conn.execute(
                update(t.endpoints)
                .where(t.endpoints.c.name_lower == key)
                .values({**changes, "status": EndpointStatus(new_status).value})
            )
            conn.execute(insert(t.deployments).values(**_deployment_values(deployment)))
        return record.model_copy(update=changes)

    def _check_can_begin(self, record: EndpointRecord, allowed: frozenset[EndpointStatus]) -> None:
        if record.status not in allowed:
            if record.status in IN_PROGRESS:
                raise ResourceInUse(messages.in_progress_endpoint(record.arn))
            if record.status is EndpointStatus.FAILED:
                raise ResourceInUse(messages.failed_endpoint(record.arn))
            wanted = " or ".join(sorted(s.value for s in allowed)) or "nothing"
            raise ResourceInUse(
                f'Endpoint "{record.arn}" is {record.status.value}; this operation needs it '
                f"to be {wanted}."
            )
        if record.current_deployment_id is not None:
            raise ResourceInUse(messages.in_progress_endpoint(record.arn))

    def _check_group_hold(self, conn: Connection, key: str, arn: str, deployment_id: str) -> None:
        """An endpoint a rollout group holds is taken only by that group's deployments."""
        holds = t.endpoint_holds
        holder = conn.execute(
            select(holds.c.group_name).where(holds.c.endpoint_lower == key)
        ).scalar()
        if holder is not None and holder != group_of(deployment_id):
            raise ResourceInUse(
                f'Cannot update endpoint "{arn}": rollout group {holder} holds it until the '
                "group ends."
            )

    def hold_endpoints(self, group: str, names: Sequence[str], at: datetime) -> dict[str, str]:
        holds = t.endpoint_holds
        configs: dict[str, str] = {}
        with self._write() as conn:
            for name in names:
                key = name.lower()
                record = self._lock_endpoint(conn, key)
                if record is None:
                    raise self._missing("endpoint", name)
                holder = conn.execute(
                    select(holds.c.group_name).where(holds.c.endpoint_lower == key)
                ).scalar()
                if holder is None:
                    self._check_can_begin(record, frozenset({EndpointStatus.IN_SERVICE}))
                    conn.execute(
                        insert(holds).values(
                            endpoint_lower=key, endpoint=record.name, group_name=group, held_at=at
                        )
                    )
                elif holder != group:
                    raise ResourceInUse(
                        f'Endpoint "{record.arn}" is held by rollout group {holder}.'
                    )
                configs[record.name] = record.config_name
        return configs

    def release_endpoints(self, group: str) -> None:
        with self._write() as conn:
            conn.execute(delete(t.endpoint_holds).where(t.endpoint_holds.c.group_name == group))

    def endpoint_holder(self, name: str) -> str | None:
        holds = t.endpoint_holds
        with self._read() as conn:
            return conn.execute(
                select(holds.c.group_name).where(holds.c.endpoint_lower == name.lower())
            ).scalar()

    def save_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        saved = record.model_copy(
            update={"revision": record.revision + 1, "last_modified": self._clock()}
        )
        values = _endpoint_values(saved)
        del values["name_lower"]
        with self._write() as conn:
            result = conn.execute(
                update(t.endpoints)
                .where(t.endpoints.c.name_lower == record.name.lower())
                .where(t.endpoints.c.revision == record.revision)
                .values(**values)
            )
            if result.rowcount == 0:
                raise ConflictError(
                    f'Endpoint "{record.arn}" changed since revision {record.revision} was read '
                    "(or no longer exists); read it again and retry."
                )
        return saved

    def set_status(
        self, name: str, deployment_id: str, status: EndpointStatus, reason: str | None = None
    ) -> EndpointRecord:
        """`reason`, when given, becomes the FailureReason; None leaves it as it is."""
        changes: dict[str, Any] = {"status": EndpointStatus(status)}
        if reason is not None:
            changes["failure_reason"] = reason
        return self._change_held(name, deployment_id, changes, touch=True)

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
        with self._read() as conn:
            row = conn.execute(_HELD_PENDING, {"key": key}).first()
            stored = (
                None if event is None or event.key is None else self._event_by_key(conn, event.key)
            )
        if row is None:
            raise self._missing("endpoint", name)
        if row.current_deployment_id != deployment_id:
            raise self._not_held(row, deployment_id)
        write_pending = row.pending != doc
        write_event = event is not None and stored is None
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
                    raise self._not_held(held, deployment_id)
            if write_event:
                assert event is not None
                conn.execute(self._insert_event, _event_values(event))

        self._progress_writes.run(write)

    def _build_insert_event(self) -> Any:
        """INSERT of an event that does nothing when its key is already stored (no read first;
        RETURNING then yields no row). Built once: parameters come with each execute."""
        ev = t.deployment_events
        stmt: Any
        if is_sqlite(self._engine):
            stmt = sqlite.insert(ev).on_conflict_do_nothing(index_elements=["key"])
        elif self._engine.dialect.name == "postgresql":
            stmt = postgresql.insert(ev).on_conflict_do_nothing(index_elements=["key"])
        else:
            stmt = insert(ev)
        return stmt.returning(ev.c.seq)

    def _change_held(
        self, name: str, deployment_id: str, changes: dict[str, Any], *, touch: bool
    ) -> EndpointRecord:
        key = name.lower()
        with self._write() as conn:
            record = self._lock_endpoint(conn, key)
            if record is None:
                raise self._missing("endpoint", name)
            if record.current_deployment_id != deployment_id:
                raise self._not_held(record, deployment_id)
            changes = {**changes, "revision": record.revision + 1}
            if touch:
                changes["last_modified"] = self._clock()
            updated = record.model_copy(update=changes)
            self._write_endpoint(conn, updated)
        return updated

    def finish_operation(
        self,
        name: str,
        deployment_id: str,
        *,
        status: EndpointStatus,
        outcome: DeploymentOutcome,
        config_name: str | None = None,
        config_snapshot: dict[str, Any] | None = None,
        variants: Sequence[VariantState] | None = None,
        failure_reason: str | None = None,
        last_deployment_config: dict[str, Any] | None = None,
        event: DeploymentEvent | None = None,
    ) -> EndpointRecord:
        """`failure_reason` is always written (None clears it: the operation succeeded); the
        other optional fields change only when given; `event` (the Finished event) is stored in
        the same transaction. A second call for a deployment that already finished returns the
        endpoint unchanged."""
        key = name.lower()
        now = self._clock()
        with self._write() as conn:
            record = self._lock_endpoint(conn, key)
            if record is None:
                raise self._missing("endpoint", name)
            if record.current_deployment_id != deployment_id:
                if self._deployment_ended(conn, deployment_id):
                    return record  # already finished: a retried activity
                raise self._not_held(record, deployment_id)
            changes: dict[str, Any] = {
                "status": EndpointStatus(status),
                "pending": None,
                "current_deployment_id": None,
                "failure_reason": failure_reason,
                "revision": record.revision + 1,
                "last_modified": now,
            }
            if config_name is not None:
                changes["config_name"] = config_name
            if config_snapshot is not None:
                changes["config_snapshot"] = config_snapshot
            if variants is not None:
                changes["variants"] = list(variants)
            if last_deployment_config is not None:
                changes["last_deployment_config"] = last_deployment_config
            updated = record.model_copy(update=changes)
            self._write_endpoint(conn, updated)
            self._end_deployment(conn, deployment_id, outcome, failure_reason, now)
            if event is not None:
                conn.execute(self._insert_event, _event_values(event))
        return updated

    def delete_endpoint_record(self, name: str, deployment_id: str) -> bool:
        """Also ends the deployment (Succeeded) if it is still running, and bumps the
        generation (the routing went away)."""
        key = name.lower()
        with self._write() as conn:
            record = self._lock_endpoint(conn, key)
            if record is None:
                return False
            if record.current_deployment_id != deployment_id:
                raise self._not_held(record, deployment_id)
            self._lock_generation(conn)
            conn.execute(delete(t.endpoints).where(t.endpoints.c.name_lower == key))
            conn.execute(delete(t.routing).where(t.routing.c.endpoint_lower == key))
            self._bump_generation(conn)
            self._end_deployment(
                conn, deployment_id, DeploymentOutcome.SUCCEEDED, None, self._clock()
            )
        return True

    def _lock_endpoint(self, conn: Connection, key: str) -> EndpointRecord | None:
        row = conn.execute(_LOCK_ENDPOINT, {"key": key}).first()
        return None if row is None else _endpoint_record(row)

    def _write_endpoint(self, conn: Connection, record: EndpointRecord) -> None:
        values = _endpoint_values(record)
        key = values.pop("name_lower")
        conn.execute(update(t.endpoints).where(t.endpoints.c.name_lower == key).values(**values))

    @staticmethod
    def _not_held(record: EndpointRecord | Row[Any, Any, Any], deployment_id: str) -> ConflictError:
        """`record`: the endpoint, or a row with its `arn` and `current_deployment_id`."""
        arn: str = record.arn
        holder: str = record.current_deployment_id or "no deployment"
        return ConflictError(
            f'Endpoint "{arn}" is held by {holder}, not by deployment {deployment_id}.'
        )

    # --- deployments and events ------------------------------------------------------------

    @staticmethod
    def _deployment_exists(conn: Connection, deployment_id: str) -> bool:
        d = t.deployments
        return (
            conn.execute(
                select(d.c.deployment_id).where(d.c.deployment_id == deployment_id)
            ).first()
            is not None
        )

    @staticmethod
    def _deployment_ended(conn: Connection, deployment_id: str) -> bool:
        d = t.deployments
        outcome = conn.execute(
            select(d.c.outcome).where(d.c.deployment_id == deployment_id)
        ).scalar()
        return outcome is not None and outcome != DeploymentOutcome.RUNNING.value

    @staticmethod
    def _end_deployment(
        conn: Connection,
        deployment_id: str,
        outcome: DeploymentOutcome,
        failure_reason: str | None,
        now: datetime,
    ) -> None:
        d = t.deployments
        conn.execute(
            update(d)
            .where(d.c.deployment_id == deployment_id)
            .where(d.c.outcome == DeploymentOutcome.RUNNING.value)
            .values(
                outcome=DeploymentOutcome(outcome).value,
                failure_reason=failure_reason,
                ended_at=now,
            )
        )

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        d = t.deployments
        with self._read() as conn:
            row = conn.execute(select(d).where(d.c.deployment_id == deployment_id)).first()
        return None if row is None else _deployment_record(row)

    def list_deployments(
        self, endpoint: str | None = None, limit: int = 50
    ) -> list[DeploymentRecord]:
        """Newest first."""
        d = t.deployments
        stmt = select(d).order_by(d.c.started_at.desc(), d.c.deployment_id.desc()).limit(limit)
        if endpoint is not None:
            stmt = stmt.where(d.c.endpoint_lower == endpoint.lower())
        with self._read() as conn:
            return [_deployment_record(row) for row in conn.execute(stmt)]

    def update_deployment(self, record: DeploymentRecord) -> None:
        values = _deployment_values(record)
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
                stored = self._event_by_key(conn, event.key)
            if stored is not None:
                return stored
        seq: int | None = None
        try:
            with self._write() as conn:
                seq = conn.execute(self._insert_event, _event_values(event)).scalar()
        except IntegrityError:
            pass  # lost a race with a writer of the same key (other dialects)
        if seq is None:
            assert event.key is not None
            with self._read() as conn:
                stored = self._event_by_key(conn, event.key)
            if stored is None:
                raise ServiceUnavailable(f"Event {event.key} was neither stored nor found.")
            return stored
        return event.model_copy(update={"seq": int(seq)})

    @staticmethod
    def _event_by_key(conn: Connection, key: str) -> DeploymentEvent | None:
        row = conn.execute(_EVENT_BY_KEY, {"key": key}).first()
        return None if row is None else DeploymentEvent.model_validate(row._asdict())

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

    # --- fleets and instances --------------------------------------------------------------

    def upsert_fleet(self, record: FleetRecord) -> None:
        values = {**record.model_dump(mode="python"), "endpoint_lower": record.endpoint.lower()}
        self._upsert_generational(t.fleets, t.fleets.c.fleet_id, record.fleet_id, values, ())

    def get_fleet(self, fleet_id: str) -> FleetRecord | None:
        f = t.fleets
        with self._read() as conn:
            row = conn.execute(select(f).where(f.c.fleet_id == fleet_id)).first()
        return None if row is None else _fleet_record(row)

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
            return [_fleet_record(row) for row in conn.execute(stmt)]

    def upsert_instance(self, record: InstanceRecord) -> None:
        """A write that changes nothing but `updated_at` (a health heartbeat) does not bump the
        generation: the data plane has nothing new to apply."""
        values = {**record.model_dump(mode="python"), "endpoint_lower": record.endpoint.lower()}
        self._upsert_generational(
            t.instances, t.instances.c.instance_id, record.instance_id, values, ("updated_at",)
        )

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        i = t.instances
        with self._read() as conn:
            row = conn.execute(select(i).where(i.c.instance_id == instance_id)).first()
        return None if row is None else _instance_record(row)

    def list_instances(
        self, fleet_id: str | None = None, endpoint: str | None = None, host: str | None = None
    ) -> list[InstanceRecord]:
        i = t.instances
        stmt = select(i).order_by(i.c.fleet_id, i.c.index)
        if fleet_id is not None:
            stmt = stmt.where(i.c.fleet_id == fleet_id)
        if endpoint is not None:
            stmt = stmt.where(i.c.endpoint_lower == endpoint.lower())
        if host is not None:
            stmt = stmt.where(i.c.host == host)
        with self._read() as conn:
            return [_instance_record(row) for row in conn.execute(stmt)]

    def delete_instance(self, instance_id: str) -> bool:
        i = t.instances
        with self._write() as conn:
            self._lock_generation(conn)
            deleted = conn.execute(delete(i).where(i.c.instance_id == instance_id)).rowcount
            if deleted:
                self._bump_generation(conn)
        return bool(deleted)

    def count_instances(self) -> int:
        i = t.instances
        stmt = select(func.count()).select_from(i).where(i.c.state != InstanceState.STOPPED)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def _upsert_generational(
        self,
        table: Table,
        key_column: Any,
        key: str,
        values: dict[str, Any],
        ignored: tuple[str, ...],
    ) -> None:
        with self._write() as conn:
            self._lock_generation(conn)
            row = conn.execute(select(table).where(key_column == key)).first()
            if row is None:
                conn.execute(insert(table).values(**values))
                self._bump_generation(conn)
                return
            stored = row._asdict()
            changed = {k: v for k, v in values.items() if stored.get(k) != v}
            if not changed:
                return
            conn.execute(update(table).where(key_column == key).values(**changed))
            if set(changed) - set(ignored):
                self._bump_generation(conn)

    # --- routing ---------------------------------------------------------------------------

    def set_routing(self, routing: EndpointRouting) -> int:
        key = routing.endpoint.lower()
        doc = routing.model_dump(mode="json")
        r = t.routing
        with self._write() as conn:
            self._lock_generation(conn)
            row = conn.execute(
                select(r.c.version, r.c.doc).where(r.c.endpoint_lower == key)
            ).first()
            if row is None:
                conn.execute(
                    insert(r).values(
                        endpoint_lower=key,
                        endpoint=routing.endpoint,
                        version=1,
                        doc=doc,
                        applied_version=0,
                    )
                )
                version = 1
            elif row.doc == doc:
                return int(row.version)
            else:
                version = int(row.version) + 1
                conn.execute(
                    update(r).where(r.c.endpoint_lower == key).values(version=version, doc=doc)
                )
            self._bump_generation(conn)
        return version

    def get_routing(self, endpoint: str) -> RoutingRecord | None:
        r = t.routing
        with self._read() as conn:
            row = conn.execute(select(r).where(r.c.endpoint_lower == endpoint.lower())).first()
        return None if row is None else _routing_record(row)

    def list_routing(self) -> list[RoutingRecord]:
        r = t.routing
        with self._read() as conn:
            return [
                _routing_record(row) for row in conn.execute(select(r).order_by(r.c.endpoint_lower))
            ]

    def mark_applied(self, endpoint: str, version: int) -> None:
        r = t.routing
        with self._write() as conn:
            conn.execute(
                update(r)
                .where(r.c.endpoint_lower == endpoint.lower())
                .where(r.c.applied_version < version)
                .values(applied_version=version)
            )

    def routing_generation(self) -> int:
        g = t.generation
        with self._read() as conn:
            return int(conn.execute(select(g.c.value).where(g.c.id == 1)).scalar_one())

    def mark_generation_applied(self, generation: int) -> None:
        g = t.generation
        with self._write() as conn:
            conn.execute(
                update(g)
                .where(g.c.id == 1)
                .where(g.c.applied < generation)
                .values(applied=generation)
            )

    def applied_generation(self) -> int:
        g = t.generation
        with self._read() as conn:
            return int(conn.execute(select(g.c.applied).where(g.c.id == 1)).scalar_one())

    @staticmethod
    def _lock_generation(conn: Connection) -> None:
        conn.execute(_LOCK_GENERATION).first()

    @staticmethod
    def _bump_generation(conn: Connection) -> None:
        conn.execute(_BUMP_GENERATION)

    # --- paging ----------------------------------------------------------------------------

    def _page(self, table: Table, query: ListQuery, to_record: Callable[[Row[Any]], R]) -> Page[R]:
        offset = _decode_token(query.next_token)
        c = table.c
        conditions: list[ColumnElement[bool]] = []
        if query.name_contains:
            conditions.append(c.name_lower.contains(query.name_contains.lower(), autoescape=True))
        if query.creation_time_after is not None:
            conditions.append(c.created_at > query.creation_time_after)
        if query.creation_time_before is not None:
            conditions.append(c.created_at < query.creation_time_before)
        if "last_modified" in c:
            if query.last_modified_time_after is not None:
                conditions.append(c.last_modified > query.last_modified_time_after)
            if query.last_modified_time_before is not None:
                conditions.append(c.last_modified < query.last_modified_time_before)
        if "status" in c and query.status_equals is not None:
            conditions.append(c.status == query.status_equals)
        sort_columns = {"Name": c.name_lower, "CreationTime": c.created_at}
        if "status" in c:
            sort_columns["Status"] = c.status
        if query.sort_by not in sort_columns:
            raise ValidationError(
                f"SortBy must be one of {', '.join(sort_columns)}, not {query.sort_by!r}."
            )
        if query.sort_order not in ("Ascending", "Descending"):
            raise ValidationError(
                f"SortOrder must be Ascending or Descending, not {query.sort_order!r}."
            )
        descending = query.sort_order == "Descending"
        order = [sort_columns[query.sort_by], c.name_lower]
        stmt = (
            select(table)
            .where(*conditions)
            .order_by(*(col.desc() if descending else col.asc() for col in order))
            .offset(offset)
            .limit(query.max_results + 1)
        )
        with self._read() as conn:
            rows = list(conn.execute(stmt))
        more = len(rows) > query.max_results
        items = [to_record(row) for row in rows[: query.max_results]]
        token = _encode_token(offset + query.max_results) if more else None
        return Page[R](items=items, next_token=token)


# Built once: the hot reads (DescribeEndpoint) skip rebuilding their statement on every call.
_BY_NAME = {
    table.name: select(table).where(table.c.name_lower == bindparam("key"))
    for table in (t.models, t.endpoint_configs, t.endpoints)
}
# What progress needs of an endpoint: who holds it and what it shows.
_HELD_PENDING = select(
    t.endpoints.c.arn, t.endpoints.c.current_deployment_id, t.endpoints.c.pending
).where(t.endpoints.c.name_lower == bindparam("key"))
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
_LOCK_ENDPOINT = _BY_NAME[t.endpoints.name].with_for_update()
_LOCK_GENERATION = select(t.generation.c.value).where(t.generation.c.id == 1).with_for_update()
_BUMP_GENERATION = (
    update(t.generation).where(t.generation.c.id == 1).values(value=t.generation.c.value + 1)
)
_EVENT_BY_KEY = select(t.deployment_events).where(t.deployment_events.c.key == bindparam("key"))


# --- paging tokens ---------------------------------------------------------------------------


def _encode_token(offset: int) -> str:
    """Opaque to clients: base64 of a small JSON document."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValidationError("Invalid pagination token (NextToken).") from exc
    if not isinstance(offset, int) or offset < 0:
        raise ValidationError("Invalid pagination token (NextToken).")
    return offset


# --- rows <-> records ------------------------------------------------------------------------


def _spec_values(record: ModelRecord | EndpointConfigRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "arn": record.arn,
        "created_at": record.created_at,
        "spec": record.spec,
    }


def _spec_dict(row: Row[Any]) -> dict[str, Any]:
    return {"name": row.name, "arn": row.arn, "created_at": row.created_at, "spec": row.spec}


def _endpoint_values(record: EndpointRecord) -> dict[str, Any]:
    return {
        "name_lower": record.name.lower(),
        "name": record.name,
        "arn": record.arn,
        "status": EndpointStatus(record.status).value,
        "config_name": record.config_name,
        "config_snapshot": record.config_snapshot,
        "variants": [v.model_dump(mode="json") for v in record.variants],
        "pending": None if record.pending is None else record.pending.model_dump(mode="json"),
        "failure_reason": record.failure_reason,
        "last_deployment_config": record.last_deployment_config,
        "current_deployment_id": record.current_deployment_id,
        "revision": record.revision,
        "created_at": record.created_at,
        "last_modified": record.last_modified,
    }


def _event_values(event: DeploymentEvent) -> dict[str, Any]:
    return event.model_dump(mode="python", exclude={"seq"})


def _endpoint_record(row: Row[Any]) -> EndpointRecord:
    values = row._asdict()
    del values["name_lower"]
    return EndpointRecord.model_validate(values)


def _deployment_values(record: DeploymentRecord) -> dict[str, Any]:
    values = record.model_dump(mode="python")
    values["endpoint_lower"] = record.endpoint.lower()
    values["outcome"] = DeploymentOutcome(record.outcome).value
    return values


def _deployment_record(row: Row[Any]) -> DeploymentRecord:
    values = row._asdict()
    del values["endpoint_lower"]
    return DeploymentRecord.model_validate(values)


def _fleet_record(row: Row[Any]) -> FleetRecord:
    values = row._asdict()
    del values["endpoint_lower"]
    return FleetRecord.model_validate(values)


def _instance_record(row: Row[Any]) -> InstanceRecord:
    values = row._asdict()
    del values["endpoint_lower"]
    return InstanceRecord.model_validate(values)


def _routing_record(row: Row[Any]) -> RoutingRecord:
    return RoutingRecord(
        endpoint=row.endpoint,
        version=row.version,
        applied_version=row.applied_version,
        routing=EndpointRouting.model_validate(row.doc),
    )


def _implements_registry(registry: SqlRegistry) -> Registry:
    """Never called: makes mypy check that SqlRegistry satisfies the Registry protocol."""
    return registry
