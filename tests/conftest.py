"""Shared pytest fixtures. Each block belongs to one concern; add yours in a block of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.registry.sql import SqlRegistry
from tests.postgres import PostgresServer, PostgresUnavailableError

# --- registry: SQLite and PostgreSQL ---------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session. Without PostgreSQL binaries the
    tests that need it skip on a developer's machine, but fail in CI (`CI` set), where `.ci/run`
    installs them: the PostgreSQL half of the suite must never vanish silently there."""
    try:
        server = PostgresServer()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test (dropped afterwards)."""
    name = postgres_server.create_schema()
    try:
        yield postgres_server.url(schema=name)
    finally:
        postgres_server.drop_schema(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty registry database URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def registry(registry_url: str) -> Iterator[SqlRegistry]:
    """A `SqlRegistry` on an empty database, once per backend; closed afterwards."""
    reg = SqlRegistry(registry_url)
    try:
        yield reg
    finally:
        reg.close()


# --- model environments: one cache for the whole session ---------------------------------------


@pytest.fixture(scope="session", autouse=True)
def model_env_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every agent and stack of the session shares one model-environment cache (set through
    GREENSHIFT_ENV_CACHE, which stacks inherit), so each distinct requirement set is built once
    per session, cold the first time: the build itself is under test, not a leftover of an
    earlier run."""
    previous = os.environ.get("GREENSHIFT_ENV_CACHE")
    path = tmp_path_factory.mktemp("model-envs")
    os.environ["GREENSHIFT_ENV_CACHE"] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("GREENSHIFT_ENV_CACHE", None)
        else:
            os.environ["GREENSHIFT_ENV_CACHE"] = previous
