"""Endpoint records: created (already held by the deployment that creates them), read, listed,
and saved by compare-and-set on their revision."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from greenshift.errors import ConflictError
from greenshift.registry import schema as t
from greenshift.registry.api import ListQuery
from greenshift.registry.records import DeploymentRecord, EndpointRecord, Page
from greenshift.registry.sql_base import SqlBase, lock_endpoint
from greenshift.registry.sql_deployments import insert_deployment
from greenshift.registry.sql_paging import page
from greenshift.registry.sql_rows import endpoint_record, endpoint_values

# Built once.
_COUNT = select(func.count()).select_from(t.endpoints)
_INSERT = insert(t.endpoints)


class SqlEndpoints(SqlBase):
    """Endpoint-record methods of the SQL registry (operations on them: sql_operations)."""

    def get_endpoint(self, name: str) -> EndpointRecord | None:
        row = self._get_named(t.endpoints, name)
        return None if row is None else endpoint_record(row)

    def list_endpoints(self, query: ListQuery) -> Page[EndpointRecord]:
        return page(self._read, t.endpoints, query, endpoint_record)

    def count_endpoints(self) -> int:
        with self._read() as conn:
            return int(conn.execute(_COUNT).scalar_one())

    def create_endpoint(self, record: EndpointRecord, deployment: DeploymentRecord) -> None:
        """Also marks the endpoint as held by `deployment` (the create is its operation). A retry
        with the same deployment is a no-op."""
        key = record.name.lower()
        values = endpoint_values(record)
        values["current_deployment_id"] = deployment.deployment_id

        def create(conn: Connection) -> None:  # the refusal before any write
            existing = lock_endpoint(conn, key)
            if existing is not None:
                if existing.current_deployment_id == deployment.deployment_id:
                    return
                raise self._exists("endpoint", existing.arn)
            conn.execute(_INSERT, values)
            insert_deployment(conn, deployment)

        try:
            self._in_batch(create)
        except IntegrityError as exc:
            raise self._exists("endpoint", record.arn) from exc

    def save_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        saved = record.model_copy(
            update={"revision": record.revision + 1, "last_modified": self._clock()}
        )
        values = endpoint_values(saved)
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
