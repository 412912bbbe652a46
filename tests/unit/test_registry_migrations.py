"""The schema is created and upgraded on start without losing data."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, inspect, update

from greenshift.errors import ServiceUnavailable
from greenshift.registry import schema
from greenshift.registry.database import create_registry_engine, write_transaction
from greenshift.registry.migrations import LATEST, STEPS, _v1_tables, migrate, schema_version_of
from greenshift.registry.records import EndpointRouting
from greenshift.registry.sql import SqlRegistry
from greenshift.status import EndpointStatus
from tests.registry_records import T0, config, endpoint, event, model


@pytest.fixture
def engine(registry_url: str) -> Iterator[Engine]:
    eng = create_registry_engine(registry_url)
    try:
        yield eng
    finally:
        eng.dispose()


def columns(engine: Engine) -> dict[str, set[str]]:
    insp = inspect(engine)
    return {table: {c["name"] for c in insp.get_columns(table)} for table in insp.get_table_names()}


def test_migrations_build_exactly_the_schema_the_code_uses(engine: Engine) -> None:
    assert migrate(engine) == LATEST
    expected = {
        name: {c.name for c in table.columns} for name, table in schema.metadata.tables.items()
    }
    assert columns(engine) == expected
    insp = inspect(engine)
    for name, table in schema.metadata.tables.items():
        assert {i["name"] for i in insp.get_indexes(name)} == {i.name for i in table.indexes}


def test_steps_are_ordered_and_idempotent(engine: Engine) -> None:
    assert [s.version for s in STEPS] == list(range(1, len(STEPS) + 1))
    migrate(engine)
    before = columns(engine)
    with write_transaction(engine) as conn:
        for step in STEPS:  # a crash after a step's DDL but before the version was recorded
            step.apply(conn)
    assert columns(engine) == before
    assert migrate(engine) == LATEST


def test_an_old_database_is_upgraded_with_its_data(registry_url: str, engine: Engine) -> None:
    assert migrate(engine, target=1) == 1
    v1 = _v1_tables().tables
    ep = endpoint("OldEp", status=EndpointStatus.IN_SERVICE)
    ev = event("d-old", key="k-old")
    with engine.begin() as conn:
        conn.execute(v1["models"].insert().values(name_lower="oldm", **model("OldM").model_dump()))
        conn.execute(
            v1["endpoint_configs"].insert().values(name_lower="oldc", **config("OldC").model_dump())
        )
        conn.execute(
            v1["endpoints"]
            .insert()
            .values(
                name_lower="oldep",
                **ep.model_dump(mode="json", exclude={"created_at", "last_modified"}),
                created_at=T0,
                last_modified=T0,
            )
        )
        conn.execute(
            v1["deployment_events"]
            .insert()
            .values(**ev.model_dump(mode="python", exclude={"seq", "actor"}))
        )
        conn.execute(
            v1["routing"]
            .insert()
            .values(
                endpoint_lower="oldep",
                endpoint="OldEp",
                version=3,
                doc=EndpointRouting(endpoint="OldEp").model_dump(mode="json"),
            )
        )
    assert "generation" not in columns(engine)

    registry = SqlRegistry(registry_url)
    try:
        assert registry.schema_version == LATEST == schema_version_of(engine)
        assert registry.get_model("oldm") == model("OldM")
        assert registry.get_endpoint_config("OLDC") == config("OldC")
        assert registry.get_endpoint("oldep") == ep
        routing = registry.get_routing("OldEp")
        assert routing is not None and (routing.version, routing.applied_version) == (3, 0)
        events = registry.list_events("d-old")
        assert len(events) == 1 and events[0].actor is None and events[0].key == "k-old"
        # What the new version added works on the upgraded database.
        assert registry.routing_generation() == 0
        assert registry.set_routing(EndpointRouting(endpoint="OldEp", variants=[])) == 3
        registry.mark_applied("OldEp", 3)
        assert registry.append_event(event("d-old", key="k-old")) == events[0]
    finally:
        registry.close()
    # Opening it again changes nothing.
    again = SqlRegistry(registry_url)
    try:
        assert again.get_endpoint("OldEp") == ep
        assert schema_version_of(engine) == LATEST
    finally:
        again.close()


def test_a_newer_database_is_refused(registry_url: str, engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(update(schema.schema_version).values(version=LATEST + 1))
    with pytest.raises(ServiceUnavailable, match="newer"):
        SqlRegistry(registry_url)


def test_processes_starting_together_migrate_once(registry_url: str, engine: Engine) -> None:
    """`greenshift up` starts the API, the worker and the router controller at once on a new
    database: every one of them must come up on the latest schema."""
    barrier = threading.Barrier(8, timeout=30)

    def start(_: int) -> int:
        barrier.wait()
        registry = SqlRegistry(registry_url)
        try:
            return registry.schema_version
        finally:
            registry.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(start, range(8), timeout=120))
    assert versions == [LATEST] * 8
    assert schema_version_of(engine) == LATEST
