"""The metric store and the alarm tables, on the registry's database (SQLAlchemy 2).

Datapoints arrive from the data plane's collector once a second (`MetricStore` is its
`MetricSink`); CloudWatch queries and the alarm evaluator read them back as `stats.Second`s.
Alarms, their current state and their history live here too, so one database holds everything the
CloudWatch API serves and the evaluator can change a state with a compare-and-set.

Bounded by construction: one row per series per second with at most `stats.SAMPLE_CAP` sampled
values (packed float64s), rows older than `retention_seconds` (default 25 h, so a full day can be
queried) are deleted by `prune()`, which the evaluator calls every minute; alarm history keeps 30
days, as CloudWatch does. Nothing is cached in memory but series ids.

All methods block: callers on an event loop run them in a thread.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from greenshift.metrics.model import Datapoint
from greenshift.metrics.stats import SAMPLE_CAP, Second, downsample

DEFAULT_RETENTION_SECONDS = 25 * 3600
HISTORY_RETENTION_SECONDS = 30 * 86400
_LAST_SEEN_EVERY = 60.0

metadata = MetaData()

series_table = Table(
    "cw_metric_series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(255), nullable=False),
    Column("metric_name", String(255), nullable=False),
    Column("dimensions", Text, nullable=False),  # canonical JSON: sorted [[name, value], ...]
    Column("last_seen", Integer, nullable=False),
    UniqueConstraint("namespace", "metric_name", "dimensions", name="uq_cw_series"),
)

seconds_table = Table(
    "cw_metric_seconds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("series_id", Integer, nullable=False),
    Column("ts", Integer, nullable=False),
    Column("count", Float, nullable=False),
    Column("sum", Float, nullable=False),
    Column("minimum", Float, nullable=False),
    Column("maximum", Float, nullable=False),
    Column("sample", LargeBinary, nullable=False),
    Index("ix_cw_seconds_series_ts", "series_id", "ts"),
    Index("ix_cw_seconds_ts", "ts"),
)

alarms_table = Table(
    "cw_alarms",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("definition", Text, nullable=False),  # the PutMetricAlarm request, wire JSON
    Column("state_value", String(32), nullable=False),
    Column("state_reason", Text, nullable=False),
    Column("state_reason_data", Text, nullable=True),
    Column("state_updated", Float, nullable=False),
    Column("state_transitioned", Float, nullable=False),
    Column("config_updated", Float, nullable=False),
)

# When the evaluator last judged each alarm (every round, not only on a change of state): its own
# table, so stores made before it gain it from create_all without a migration.
evaluations_table = Table(
    "cw_alarm_evaluations",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("evaluated_at", Float, nullable=False),
)

history_table = Table(
    "cw_alarm_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_name", String(255), nullable=False),
    Column("ts", Float, nullable=False),
    Column("item_type", String(64), nullable=False),
    Column("summary", String(255), nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_cw_history_alarm_ts", "alarm_name", "ts"),
)


def make_engine(url: str) -> Engine:
    """An engine for the registry's URL; SQLite gets WAL and a busy timeout so the API, the
    collector and the evaluator can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def dimensions_key(dimensions: dict[str, str] | Iterable[tuple[str, str]]) -> str:
    pairs = dimensions.items() if isinstance(dimensions, dict) else dimensions
    return json.dumps(sorted([name, value] for name, value in pairs), separators=(",", ":"))


def _pack(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def _unpack(blob: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(blob) // 8}d", blob)


@dataclass(frozen=True)
class Series:
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AlarmRow:
    name: str
    definition: dict[str, Any]
    state_value: str
    state_reason: str
    state_reason_data: str | None
    state_updated: float
    state_transitioned: float
    config_updated: float


@dataclass(frozen=True)
class HistoryRow:
    alarm_name: str
    ts: float
    item_type: str
    summary: str
    data: str


class MetricStore:
    """Datapoints at 1 s resolution (a `MetricSink`) plus the alarm tables; tables are created
    on start."""

    def __init__(self, url: str, retention_seconds: int = DEFAULT_RETENTION_SECONDS) -> None:
        self.engine = make_engine(url)
        self.retention_seconds = retention_seconds
        metadata.create_all(self.engine)
        self.alarms = AlarmStore(self.engine)
        self._series_ids: dict[tuple[str, str, str], int] = {}
        self._last_seen: dict[int, float] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    # --- MetricSink -----------------------------------------------------------------------
    def put(self, points: list[Datapoint]) -> None:
        """Store one second per point; the sample of raw values is capped at SAMPLE_CAP.

        Rows are appended, not merged: a second delivered twice counts twice, so the collector
        sends each (series, second) once. Points with no requests are not stored (missing data).
        """
        if not points:
            return
        rows = []
        for p in points:
            if p.count <= 0:
                continue
            series_id = self._series_id(p.namespace, p.metric_name, p.dimensions, p.timestamp)
            sample = downsample(p.values, SAMPLE_CAP) if p.minimum != p.maximum else []
            rows.append(
                {
                    "series_id": series_id,
                    "ts": int(p.timestamp),
                    "count": p.count,
                    "sum": p.sum,
                    "minimum": p.minimum,
                    "maximum": p.maximum,
                    "sample": _pack(sample),
                }
            )
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(seconds_table), rows)

    def _series_id(self, namespace: str, metric: str, dims: dict[str, str], ts: int) -> int:
        key = (namespace, metric, dimensions_key(dims))
        with self._lock:
            series_id = self._series_ids.get(key)
        if series_id is None:
            series_id = self._find_or_create_series(key, ts)
            with self._lock:
                self._series_ids[key] = series_id
        now = time.monotonic()
        if now - self._last_seen.get(series_id, -_LAST_SEEN_EVERY) >= _LAST_SEEN_EVERY:
            self._last_seen[series_id] = now
            with self.engine.begin() as conn:
                conn.execute(
                    update(series_table)
                    .where(series_table.c.id == series_id, series_table.c.last_seen < ts)
                    .values(last_seen=ts)
                )
        return series_id

    def _find_or_create_series(self, key: tuple[str, str, str], ts: int) -> int:
        namespace, metric, dims = key
        where = (
            series_table.c.namespace == namespace,
            series_table.c.metric_name == metric,
            series_table.c.dimensions == dims,
        )
        for _ in range(2):
            with self.engine.begin() as conn:
                found = conn.execute(select(series_table.c.id).where(*where)).scalar()
                if found is not None:
                    return int(found)
                try:
                    result = conn.execute(
                        insert(series_table).values(
                            namespace=namespace, metric_name=metric, dimensions=dims, last_seen=ts
                        )
                    )
                    key_row = result.inserted_primary_key
                    if key_row is not None:
                        return int(key_row[0])
                except IntegrityError:
                    continue  # another process created it: read it back
        raise RuntimeError(f"could not register metric series {key}")

    # --- reads ----------------------------------------------------------------------------
    def seconds(
        self, namespace: str, metric_name: str, dimensions: dict[str, str], start: int, end: int
    ) -> list[Second]:
        """The stored seconds in [start, end) of the series with exactly these dimensions (as
        CloudWatch matches GetMetricStatistics and alarms)."""
        key = dimensions_key(dimensions)
        with self.engine.connect() as conn:
            series_id = conn.execute(
                select(series_table.c.id).where(
                    series_table.c.namespace == namespace,
                    series_table.c.metric_name == metric_name,
                    series_table.c.dimensions == key,
                )
            ).scalar()
            if series_id is None:
                return []
            rows = conn.execute(
                select(
                    seconds_table.c.ts,
                    seconds_table.c.count,
                    seconds_table.c.sum,
                    seconds_table.c.minimum,
                    seconds_table.c.maximum,
                    seconds_table.c.sample,
                ).where(
                    seconds_table.c.series_id == series_id,
                    seconds_table.c.ts >= start,
                    seconds_table.c.ts < end,
                )
            ).all()
        return [
            Second(int(ts), count, total, low, high, _unpack(sample))
            for ts, count, total, low, high, sample in rows
        ]

    def list_series(
        self,
        namespace: str | None = None,
        metric_name: str | None = None,
        dimension_filters: Sequence[tuple[str, str | None]] = (),
        active_since: int | None = None,
    ) -> list[Series]:
        """Series matching the filters (ListMetrics): a series matches a dimension filter when
        it has that dimension (with that value, when one is given). Sorted for stable paging."""
        query = select(series_table)
        if namespace is not None:
            query = query.where(series_table.c.namespace == namespace)
        if metric_name is not None:
            query = query.where(series_table.c.metric_name == metric_name)
        if active_since is not None:
            query = query.where(series_table.c.last_seen >= active_since)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = []
        for row in rows:
            dims = {name: value for name, value in json.loads(row.dimensions)}
            if all(
                name in dims and (value is None or dims[name] == value)
                for name, value in dimension_filters
            ):
                found.append(Series(row.namespace, row.metric_name, tuple(sorted(dims.items()))))
        return sorted(found, key=lambda s: (s.namespace, s.metric_name, s.dimensions))

    # --- retention ------------------------------------------------------------------------
    def prune(self, now: float | None = None) -> int:
        """Delete seconds and series older than the retention, and old alarm history; returns
        the number of seconds deleted."""
        now = time.time() if now is None else now
        cutoff = int(now) - self.retention_seconds
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(seconds_table).where(seconds_table.c.ts < cutoff))
            # last_seen is refreshed at most once a minute: a series goes only once it is empty.
            has_seconds = (
                select(seconds_table.c.id)
                .where(seconds_table.c.series_id == series_table.c.id)
                .exists()
            )
            conn.execute(
                delete(series_table).where(series_table.c.last_seen < cutoff, ~has_seconds)
            )
            conn.execute(
                delete(history_table).where(history_table.c.ts < now - HISTORY_RETENTION_SECONDS)
            )
        with self._lock:
            self._series_ids.clear()
        return int(deleted.rowcount or 0)

    def stored_seconds(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(seconds_table)).scalar() or 0)


class AlarmStore:
    """Metric alarms, their state and their history. State changes are compare-and-set on
    `state_updated`, so an evaluation never overwrites a SetAlarmState it did not see."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alarms_table)).scalar() or 0)

    def get(self, name: str) -> AlarmRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(alarms_table).where(alarms_table.c.name == name)).first()
        return _alarm_row(row) if row is not None else None

    def all(self) -> list[AlarmRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alarms_table).order_by(alarms_table.c.name)).all()
        return [_alarm_row(r) for r in rows]

    def put(self, name: str, definition: dict[str, Any], now: float) -> bool:
        """Create or replace the definition; a new alarm starts INSUFFICIENT_DATA, an updated one
        keeps its state (as on AWS). Returns True when created."""
        document = json.dumps(definition, sort_keys=True)
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(alarms_table.c.name).where(alarms_table.c.name == name)
            ).first()
            if exists is not None:
                conn.execute(
                    update(alarms_table)
                    .where(alarms_table.c.name == name)
                    .values(definition=document, config_updated=now)
                )
            else:
                conn.execute(
                    insert(alarms_table).values(
                        name=name,
                        definition=document,
                        state_value="INSUFFICIENT_DATA",
                        state_reason="Unchecked: Initial alarm creation",
                        state_reason_data=None,
                        state_updated=now,
                        state_transitioned=now,
                        config_updated=now,
                    )
                )
            verb = "updated" if exists is not None else "created"
            conn.execute(
                insert(history_table).values(
                    alarm_name=name,
                    ts=now,
                    item_type="ConfigurationUpdate",
                    summary=f'Alarm "{name}" {verb}'[:255],
                    data=json.dumps(
                        {"version": "1.0", "type": verb.capitalize(), "updatedAlarm": definition}
                    ),
                )
            )
        return exists is None

    def delete(self, names: Sequence[str], now: float) -> list[str]:
        """Delete all of `names`, or none when some do not exist; returns the missing ones."""
        with self.engine.begin() as conn:
            found = set(
                conn.execute(
                    select(alarms_table.c.name).where(alarms_table.c.name.in_(list(names)))
                ).scalars()
            )
            missing = [n for n in names if n not in found]
            if missing:
                return missing
            conn.execute(delete(alarms_table).where(alarms_table.c.name.in_(list(names))))
            for name in found:
                conn.execute(
                    insert(history_table).values(
                        alarm_name=name,
                        ts=now,
                        item_type="ConfigurationUpdate",
                        summary=f'Alarm "{name}" deleted'[:255],
                        data=json.dumps({"version": "1.0", "type": "Delete"}),
                    )
                )
        return []

    def set_state(
        self,
        name: str,
        state: str,
        reason: str,
        reason_data: str | None,
        now: float,
        expect_updated: float | None = None,
    ) -> bool:
        """Set the state and record a StateUpdate history item when the value changes.

        With `expect_updated`, only if nobody changed the state since (compare-and-set); returns
        False when the alarm is gone or the compare failed.
        """
        with self.engine.begin() as conn:
            row = conn.execute(select(alarms_table).where(alarms_table.c.name == name)).first()
            if row is None:
                return False
            if expect_updated is not None and row.state_updated != expect_updated:
                return False
            changed = row.state_value != state
            conn.execute(
                update(alarms_table)
                .where(
                    alarms_table.c.name == name,
                    alarms_table.c.state_updated == row.state_updated,
                )
                .values(
                    state_value=state,
                    state_reason=reason,
                    state_reason_data=reason_data,
                    state_updated=now,
                    state_transitioned=now if changed else row.state_transitioned,
                )
            )
            old: dict[str, Any] = {"stateValue": row.state_value, "stateReason": row.state_reason}
            new: dict[str, Any] = {"stateValue": state, "stateReason": reason}
            if reason_data:
                try:
                    new["stateReasonData"] = json.loads(reason_data)
                except ValueError:
                    new["stateReasonData"] = reason_data
            conn.execute(
                insert(history_table).values(
                    alarm_name=name,
                    ts=now,
                    item_type="StateUpdate",
                    summary=f"Alarm updated from {row.state_value} to {state}",
                    data=json.dumps({"version": "1.0", "oldState": old, "newState": new}),
                )
            )
        return True

    def mark_evaluated(self, names: Sequence[str], now: float) -> None:
        """Record that the evaluator judged `names` at `now` (one round: one transaction)."""
        if not names:
            return
        with self.engine.begin() as conn:
            done = conn.execute(
                update(evaluations_table)
                .where(evaluations_table.c.name.in_(list(names)))
                .values(evaluated_at=now)
            ).rowcount
            if done < len(names):
                known = set(
                    conn.execute(
                        select(evaluations_table.c.name).where(
                            evaluations_table.c.name.in_(list(names))
                        )
                    ).scalars()
                )
                new = [{"name": n, "evaluated_at": now} for n in names if n not in known]
                if new:
                    conn.execute(insert(evaluations_table), new)

    def evaluated_at(self, names: Sequence[str]) -> dict[str, float]:
        """When each of `names` was last evaluated; names never evaluated are left out."""
        if not names:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(evaluations_table.c.name, evaluations_table.c.evaluated_at).where(
                    evaluations_table.c.name.in_(list(names))
                )
            ).all()
        return {r.name: r.evaluated_at for r in rows}

    def history(
        self,
        name: str | None,
        item_type: str | None,
        start: float | None,
        end: float | None,
        descending: bool,
    ) -> list[HistoryRow]:
        query = select(history_table)
        if name is not None:
            query = query.where(history_table.c.alarm_name == name)
        if item_type is not None:
            query = query.where(history_table.c.item_type == item_type)
        if start is not None:
            query = query.where(history_table.c.ts >= start)
        if end is not None:
            query = query.where(history_table.c.ts <= end)
        order = history_table.c.id.desc() if descending else history_table.c.id.asc()
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(order)).all()
        return [HistoryRow(r.alarm_name, r.ts, r.item_type, r.summary, r.data) for r in rows]


def _alarm_row(row: Any) -> AlarmRow:
    return AlarmRow(
        name=row.name,
        definition=json.loads(row.definition),
        state_value=row.state_value,
        state_reason=row.state_reason,
        state_reason_data=row.state_reason_data,
        state_updated=row.state_updated,
        state_transitioned=row.state_transitioned,
        config_updated=row.config_updated,
    )
