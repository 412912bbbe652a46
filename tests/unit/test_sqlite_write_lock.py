"""One write lock per SQLite file in a process (database.py, local_write_lock): a registry write
made while the host store's placement holds the database waits for it on that lock, however
long the placement takes, instead of sleeping in SQLite's busy handler and failing once the busy
timeout runs out."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from greenshift.hosts.messages import Placement
from greenshift.hosts.store import HostStore
from greenshift.registry import database
from greenshift.registry.sql import SqlRegistry
from tests.registry_records import fleet

WAIT_SECONDS = 10.0
BUSY_TIMEOUT = 0.2  # SQLite's busy timeout in this test: shorter than the placement below


def test_a_registry_write_waits_for_a_placement_longer_than_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_SECONDS", BUSY_TIMEOUT)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry, store = SqlRegistry(url), HostStore(url)
    placing, release = threading.Event(), threading.Event()
    written: list[BaseException | None] = []

    def compute(*_: object) -> Placement:
        placing.set()
        assert release.wait(WAIT_SECONDS)
        return Placement(hosts_registered=False)

    def write() -> None:
        try:
            registry.upsert_fleet(fleet("ep.A.d1"))
            written.append(None)
        except BaseException as error:
            written.append(error)

    try:
        placement = threading.Thread(target=store.place, args=("ep.A.d1", compute, 60.0))
        placement.start()
        assert placing.wait(WAIT_SECONDS)
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(BUSY_TIMEOUT * 5)  # well past the busy timeout: still waiting, not failed
        assert writer.is_alive() and written == []
        release.set()
        placement.join(WAIT_SECONDS)
        writer.join(WAIT_SECONDS)
        assert not placement.is_alive() and not writer.is_alive()
        assert written == [None]
        assert registry.get_fleet("ep.A.d1") is not None
    finally:
        release.set()
        store.close()
        registry.close()


def test_each_file_has_its_own_lock_and_every_engine_on_a_file_shares_it(
    tmp_path: Path,
) -> None:
    one, other = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    engines = [database.create_registry_engine(u) for u in (one, one, other)]
    try:
        locks = [database.local_write_lock(e) for e in engines]
        assert locks[0] is locks[1] and locks[0] is not locks[2]
    finally:
        for engine in engines:
            engine.dispose()
