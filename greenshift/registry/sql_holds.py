"""Endpoints held by a rollout group: while a group holds an endpoint, only the group's own
deployments may take it (the check at begin: sql_operations.check_group_hold)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select

from greenshift.errors import ResourceInUse
from greenshift.registry import schema as t
from greenshift.registry.sql_base import SqlBase, lock_endpoint
from greenshift.registry.sql_operations import check_can_begin
from greenshift.status import EndpointStatus


class SqlHolds(SqlBase):
    """Rollout-group hold methods of the SQL registry."""

    def hold_endpoints(self, group: str, names: Sequence[str], at: datetime) -> dict[str, str]:
        holds = t.endpoint_holds
        configs: dict[str, str] = {}
        with self._write() as conn:
            for name in names:
                key = name.lower()
                record = lock_endpoint(conn, key)
                if record is None:
                    raise self._missing("endpoint", name)
                holder = conn.execute(
                    select(holds.c.group_name).where(holds.c.endpoint_lower == key)
                ).scalar()
                if holder is None:
                    check_can_begin(record, frozenset({EndpointStatus.IN_SERVICE}))
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
