"""The log store (SQLite) and the shipper that tails instances' server.log into it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from greenshift.logs.model import StreamRef
from greenshift.logs.shipper import LogShipper
from greenshift.logs.store import Batch, Cursor, SqliteLogStore

GROUP = "/aws/sagemaker/Endpoints/ep1"
IID = "ep1.AllTraffic.abcdef12.0"
STREAM = f"AllTraffic/{IID}"
DAY_MS = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000
        self.mono = 0.0

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
        self.mono += seconds


class CountingStore(SqliteLogStore):
    """The real store, counting the shipper's writes."""

    appends = 0

    def append(self, batches: Sequence[Batch], now_ms: int) -> list[str]:
        self.appends += 1
        return super().append(batches, now_ms)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    s = CountingStore(tmp_path / "logs.db")
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_shipper(store: SqliteLogStore, home: Path, clock: Clock) -> LogShipper:
    return LogShipper(
        store,
        home / "instances",
        partial_flush_seconds=5,
        retention_ms=DAY_MS,
        max_bytes_per_stream=1_000_000,
        clock_ms=lambda: clock.ms,
        monotonic=lambda: clock.mono,
    )


def log_file(home: Path, iid: str = IID) -> Path:
    folder = home / "instances" / iid
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "server.log"


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def messages(store: SqliteLogStore, stream: str = STREAM, group: str = GROUP) -> list[str]:
    return [e.message for e in store.read(group, stream, "forward", 0, None, None, 10_000)]


# --- shipper --------------------------------------------------------------------------------


def test_lines_are_shipped_once_and_a_partial_line_waits_for_its_end(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    shipper = make_shipper(store, tmp_path, clock)
    append(path, "starting\nloading par")
    assert shipper.poll() == 1
    assert messages(store) == ["starting"]
    clock.advance(1)
    append(path, "tial model\nready\n")
    assert shipper.poll() == 2
    assert messages(store) == ["starting", "loading partial model", "ready"]
    stream = store.streams(GROUP)
    assert stream is not None and stream[0].last_event_timestamp == clock.ms


def test_an_unchanged_file_costs_no_write(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    append(path, "one\nhalf")
    shipper = make_shipper(store, tmp_path, clock)
    shipper.poll()
    writes = store.appends
    for _ in range(20):
        clock.advance(0.1)
        assert shipper.poll() == 0
    assert store.appends == writes, "an idle poll must not write"


def test_a_partial_line_is_stored_once_the_file_is_quiet(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    append(path, "Traceback: died mid-li")
    shipper = make_shipper(store, tmp_path, clock)
    assert shipper.poll() == 0
    clock.advance(4)
    assert shipper.poll() == 0
    clock.advance(1.5)
    assert shipper.poll() == 1
    assert messages(store) == ["Traceback: died mid-li"]
    clock.advance(10)
    assert shipper.poll() == 0


def test_a_line_longer_than_an_event_is_stored_without_waiting_for_its_end(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    append(path, "z" * (300 * 1024))  # no newline: a progress bar, a binary dump
    shipper = make_shipper(store, tmp_path, clock)
    assert shipper.poll() == 2
    assert "".join(messages(store)) == "z" * (300 * 1024)
    append(path, " end\n")
    assert shipper.poll() == 1
    assert messages(store)[-1] == " end"


def test_a_truncated_file_is_read_again_from_its_start(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    append(path, "old one\nold two\n")
    shipper = make_shipper(store, tmp_path, clock)
    shipper.poll()
    path.write_text("new\n")  # truncated and rewritten, shorter than what was read
    assert shipper.poll() == 1
    assert messages(store) == ["old one", "old two", "new"]


def test_a_recreated_file_is_read_from_its_start(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    append(path, "first life\n")
    shipper = make_shipper(store, tmp_path, clock)
    shipper.poll()
    fresh = path.with_name("server.log.new")
    fresh.write_text("second life, a longer first line\nand more\n")
    os.replace(fresh, path)  # another inode, larger than the old offset
    assert shipper.poll() == 2
    assert messages(store) == ["first life", "second life, a longer first line", "and more"]


def test_a_restarted_shipper_resumes_at_the_stored_cursor(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    append(path, "a\nb\n")
    make_shipper(store, tmp_path, clock).poll()
    append(path, "c\n")
    assert make_shipper(store, tmp_path, clock).poll() == 1
    assert messages(store) == ["a", "b", "c"]


def test_two_shippers_over_one_home_store_each_line_once(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    first, second = make_shipper(store, tmp_path, clock), make_shipper(store, tmp_path, clock)
    append(path, "a\n")
    assert first.poll() == 1
    assert second.poll() == 0, "the second shipper's batch was read from a stale cursor"
    append(path, "b\n")
    assert second.poll() + first.poll() == 1
    append(path, "c\n")
    assert first.poll() + second.poll() == 1
    assert messages(store) == ["a", "b", "c"]


def test_streams_follow_instance_ids_and_other_folders_are_ignored(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    append(log_file(tmp_path, "ep1.Canary.abcdef12.1"), "canary says hi\n")
    append(log_file(tmp_path, "ep2.AllTraffic.12345678.0"), "other endpoint\n")
    append(log_file(tmp_path, "scratch"), "not an instance\n")
    shipper = make_shipper(store, tmp_path, clock)
    assert shipper.poll() == 2
    assert [g.name for g in store.groups()] == [
        "/aws/sagemaker/Endpoints/ep1",
        "/aws/sagemaker/Endpoints/ep2",
    ]
    assert messages(store, "Canary/ep1.Canary.abcdef12.1") == ["canary says hi"]


def test_a_removed_instance_folder_drops_its_cursor_but_keeps_its_events(
    store: CountingStore, tmp_path: Path, clock: Clock
) -> None:
    path = log_file(tmp_path)
    append(path, "bye\n")
    shipper = make_shipper(store, tmp_path, clock)
    shipper.poll()
    assert str(path) in store.cursors()
    path.unlink()
    path.parent.rmdir()
    shipper.poll()
    assert store.cursors() == {}
    assert messages(store) == ["bye"]


# --- store ----------------------------------------------------------------------------------


def put(store: SqliteLogStore, now_ms: int, *lines: str, stream: str = STREAM) -> None:
    path = f"/x/{stream}"
    previous = store.cursors().get(path)
    offset = (previous.offset if previous else 0) + 1
    batch = Batch(path, StreamRef(GROUP, stream), list(lines), Cursor(1, offset), previous)
    assert store.append([batch], now_ms) == []


def test_reads_forward_backward_and_in_a_time_window(store: CountingStore) -> None:
    for i in range(5):
        put(store, 1000 + i, f"line {i}")
    last = store.last_seq()
    back = store.read(GROUP, STREAM, "backward", last + 1, None, None, 2)
    assert [e.message for e in back] == ["line 3", "line 4"]
    window = store.read(GROUP, STREAM, "forward", 0, 1001, 1003, 10)
    assert [e.message for e in window] == ["line 1", "line 2"]


def test_scan_interleaves_streams_by_time(store: CountingStore) -> None:
    put(store, 10, "a1", stream="A/x")
    put(store, 20, "b1", stream="B/y")
    put(store, 30, "a2", stream="A/x")
    events = store.scan(GROUP, ["A/x", "B/y"], (-1, 0), None, None, 10)
    assert [(e.stream, e.message) for e in events] == [("A/x", "a1"), ("B/y", "b1"), ("A/x", "a2")]
    after = store.scan(GROUP, ["A/x", "B/y"], (events[0].timestamp, events[0].seq), 15, None, 10)
    assert [e.message for e in after] == ["b1", "a2"]


def test_retention_by_age_and_by_size_per_stream(store: CountingStore) -> None:
    now = 10 * DAY_MS
    put(store, now - 3 * DAY_MS, "too old")
    for i in range(10):
        put(store, now - 1000 + i, "x" * 74)  # 100 bytes each, counted as CloudWatch counts
    put(store, now - 3 * DAY_MS, "old stream", stream="Old/gone")
    dropped = store.prune(now, max_age_ms=2 * DAY_MS, max_bytes_per_stream=450)
    assert dropped == 1 + 6 + 1
    assert len(messages(store)) == 4
    streams = store.streams(GROUP)
    assert streams is not None
    assert [s.name for s in streams] == [STREAM], "an expired, empty stream goes too"
    assert streams[0].stored_bytes == 400
    assert streams[0].first_event_timestamp == now - 1000 + 6


def test_pruned_space_goes_back_to_the_file_system(tmp_path: Path) -> None:
    store = SqliteLogStore(tmp_path / "vacuum.db")
    try:
        for i in range(200):
            put(store, 1000 + i, "y" * 4000)
        store.prune(DAY_MS, max_age_ms=DAY_MS, max_bytes_per_stream=1_000_000)
        full = store._db.execute("PRAGMA page_count").fetchone()[0]
        store.prune(1000 + 150 + DAY_MS, max_age_ms=DAY_MS, max_bytes_per_stream=1_000_000)
        assert len(messages(store)) == 50
        assert store._db.execute("PRAGMA page_count").fetchone()[0] < full / 2
    finally:
        store.close()
