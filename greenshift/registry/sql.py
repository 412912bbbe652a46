"""`SqlRegistry`: the `Registry` over SQLAlchemy 2 Core, on a SQLite file or PostgreSQL.

Every write is one short transaction. Compare-and-set reads the row it will change under the
write lock (SQLite: the transaction began IMMEDIATE, so it holds the database's write lock;
PostgreSQL: `SELECT ... FOR UPDATE`), checks, then writes: two processes can never both take an
endpoint. Routing, fleet and instance writes lock the generation row first, so they are
serialized and each change bumps the generation exactly once. Lock order is always endpoint row,
then generation row, so writers cannot deadlock.

The schema is created or upgraded once, when the object is built; calls never check it again.

The methods live in one module per concern, each a part of this class over the transactions of
`sql_base.SqlBase`: models and endpoint configs (`sql_specs`), endpoint records
(`sql_endpoints`), operations on an endpoint (`sql_operations`) and their progress
(`sql_progress`), rollout-group holds (`sql_holds`), deployments and events
(`sql_deployments`), fleets and instances (`sql_fleets`), routing (`sql_routing`), tags (`tags`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from greenshift.errors import ServiceUnavailable
from greenshift.registry.api import Registry
from greenshift.registry.batching import GroupCommit
from greenshift.registry.database import (
    create_registry_engine,
    is_sqlite,
    local_write_lock,
    reader,
)
from greenshift.registry.migrations import migrate
from greenshift.registry.sql_deployments import SqlDeployments, insert_event
from greenshift.registry.sql_endpoints import SqlEndpoints
from greenshift.registry.sql_fleets import SqlFleets
from greenshift.registry.sql_holds import SqlHolds
from greenshift.registry.sql_operations import SqlOperations
from greenshift.registry.sql_progress import SqlProgress
from greenshift.registry.sql_routing import SqlRouting
from greenshift.registry.sql_specs import SqlSpecs
from greenshift.registry.tags import SqlTags


def default_arn(kind: str, name: str) -> str:
    """ARN with the default region and account; callers with settings pass `settings.arn`."""
    return f"arn:aws:sagemaker:us-east-1:000000000000:{kind}/{name.lower()}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlRegistry(
    SqlSpecs,
    SqlEndpoints,
    SqlOperations,
    SqlProgress,
    SqlHolds,
    SqlDeployments,
    SqlFleets,
    SqlRouting,
    SqlTags,
):
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
        self._reader = reader(self._engine)
        self._local_writes = local_write_lock(self._engine)
        self._insert_event = insert_event(self._engine)
        # The most frequent writes (progress, fleets, instances) queue for SQLite's lock as one
        # batch.
        self._batched_writes = GroupCommit(self._write, batched=is_sqlite(self._engine))
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


def _implements_registry(registry: SqlRegistry) -> Registry:
    """Never called: makes mypy check that SqlRegistry satisfies the Registry protocol."""
    return registry
