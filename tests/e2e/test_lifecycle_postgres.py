"""The same end-to-end lifecycle with the registry on PostgreSQL (a server the tests start on
127.0.0.1; skipped where PostgreSQL is not installed, which CI's .ci/run makes sure it is)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, processes_mentioning, running_stack
from tests.e2e.test_lifecycle import canary_lifecycle
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def pg_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Stack]:
    database = postgres_server.create_database()
    home = tmp_path_factory.mktemp("greenshift-pg-home")
    try:
        with running_stack(home, database_url=postgres_server.url(database)) as running:
            yield running
        assert processes_mentioning(str(running.settings.home_dir)) == []
    finally:
        postgres_server.drop_database(database)


def test_canary_lifecycle_on_postgresql(pg_stack: Stack) -> None:
    assert pg_stack.settings.database_url is not None
    assert pg_stack.settings.database_url.startswith("postgresql")
    canary_lifecycle(pg_stack)
