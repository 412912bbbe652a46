"""The desired routing of each endpoint and the generation counter over all of it: what the router
controller applies to the data plane, and what it reports back as applied."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from greenshift.errors import StaleRouting
from greenshift.registry import schema as t
from greenshift.registry.records import EndpointRouting, RoutingFence, RoutingRecord
from greenshift.registry.sql_base import SqlBase, bump_generation, lock_generation
from greenshift.registry.sql_rows import routing_record


class SqlRouting(SqlBase):
    """Routing and generation methods of the SQL registry."""

    def set_routing(self, routing: EndpointRouting, fence: RoutingFence | None = None) -> int:
        key = routing.endpoint.lower()
        doc = routing.model_dump(mode="json")
        r = t.routing
        fenced: dict[str, Any] = {}
        if fence is not None:
            fenced = {"fence_deployment": fence.deployment_id, "fence_step": fence.step}
        with self._write() as conn:
            lock_generation(conn)
            row = conn.execute(
                select(r.c.version, r.c.doc, r.c.fence_deployment, r.c.fence_step).where(
                    r.c.endpoint_lower == key
                )
            ).first()
            if fence is not None:
                _check_fence(conn, routing.endpoint, fence, row)
            if row is None:
                conn.execute(
                    insert(r).values(
                        endpoint_lower=key,
                        endpoint=routing.endpoint,
                        version=1,
                        doc=doc,
                        applied_version=0,
                        **fenced,
                    )
                )
                version = 1
            elif row.doc == doc:
                # Nothing new to route, but the fence moves on: a rollback that writes what is
                # already there still refuses the earlier steps that come after it.
                if fenced and (row.fence_deployment, row.fence_step) != tuple(fenced.values()):
                    conn.execute(update(r).where(r.c.endpoint_lower == key).values(**fenced))
                return int(row.version)
            else:
                version = int(row.version) + 1
                conn.execute(
                    update(r)
                    .where(r.c.endpoint_lower == key)
                    .values(version=version, doc=doc, **fenced)
                )
            bump_generation(conn)
        return version

    def get_routing(self, endpoint: str) -> RoutingRecord | None:
        r = t.routing
        with self._read() as conn:
            row = conn.execute(select(r).where(r.c.endpoint_lower == endpoint.lower())).first()
        return None if row is None else routing_record(row)

    def list_routing(self) -> list[RoutingRecord]:
        r = t.routing
        with self._read() as conn:
            return [
                routing_record(row) for row in conn.execute(select(r).order_by(r.c.endpoint_lower))
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


def _check_fence(conn: Connection, endpoint: str, fence: RoutingFence, stored: Any) -> None:
    """Refuse a fenced write whose deployment no longer holds the endpoint, or that a write of
    a later step of the same deployment overtook (StaleRouting; nothing is written)."""
    e = t.endpoints
    holder = conn.execute(
        select(e.c.current_deployment_id).where(e.c.name_lower == endpoint.lower())
    ).scalar()
    refused = f"Routing of deployment {fence.deployment_id} ({fence.describe()}) was not applied"
    if holder != fence.deployment_id:
        raise StaleRouting(f"{refused}: the deployment no longer holds endpoint {endpoint}.")
    if stored is not None and fence.overtaken_by(stored.fence_deployment, stored.fence_step):
        raise StaleRouting(
            f"{refused}: {fence.describe(stored.fence_step)} came first (the write outlived "
            "its step)."
        )
