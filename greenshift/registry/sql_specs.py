"""Models and endpoint configs: named records stored as the Create request (`spec`) they were
made from; never changed, only created, read, listed and deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from greenshift.registry import schema as t
from greenshift.registry.api import ListQuery
from greenshift.registry.records import EndpointConfigRecord, ModelRecord, Page
from greenshift.registry.sql_base import SqlBase
from greenshift.registry.sql_paging import page
from greenshift.registry.sql_rows import spec_dict, spec_values
from greenshift.status import DeploymentOutcome


class SqlSpecs(SqlBase):
    """Model and endpoint-config methods of the SQL registry."""

    def create_model(self, record: ModelRecord) -> None:
        self._create_named(t.models, "model", record.name, record.arn, spec_values(record))

    def get_model(self, name: str) -> ModelRecord | None:
        row = self._get_named(t.models, name)
        return None if row is None else ModelRecord.model_validate(spec_dict(row))

    def delete_model(self, name: str) -> bool:
        return self._delete_named(t.models, name)

    def list_models(self, query: ListQuery) -> Page[ModelRecord]:
        return page(
            self._read, t.models, query, lambda row: ModelRecord.model_validate(spec_dict(row))
        )

    def create_endpoint_config(self, record: EndpointConfigRecord) -> None:
        self._create_named(
            t.endpoint_configs, "endpoint-config", record.name, record.arn, spec_values(record)
        )

    def get_endpoint_config(self, name: str) -> EndpointConfigRecord | None:
        row = self._get_named(t.endpoint_configs, name)
        return None if row is None else EndpointConfigRecord.model_validate(spec_dict(row))

    def delete_endpoint_config(self, name: str) -> bool:
        return self._delete_named(t.endpoint_configs, name)

    def list_endpoint_configs(self, query: ListQuery) -> Page[EndpointConfigRecord]:
        return page(
            self._read,
            t.endpoint_configs,
            query,
            lambda row: EndpointConfigRecord.model_validate(spec_dict(row)),
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

    def _delete_named(self, table: Table, name: str) -> bool:
        with self._write() as conn:
            result = conn.execute(delete(table).where(table.c.name_lower == name.lower()))
            return bool(result.rowcount)
