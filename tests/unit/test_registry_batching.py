"""Group commit of the frequent writes (greenshift/registry/batching.py): writers queued behind
the write lock share one transaction, a refusal stays its own caller's, a write that breaks the
transaction fails alone, a failed commit fails all of its writers; and progress written from
many threads at once is all there, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from greenshift.errors import ConflictError, ResourceInUse, ResourceNotFound, ServiceUnavailable
from greenshift.registry.batching import GroupCommit
from greenshift.registry.records import PendingDeployment
from greenshift.registry.sql import SqlRegistry
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.registry_records import at, deployment, endpoint, event

WAIT_SECONDS = 10.0


class FakeWrites:
    """A write lock the test holds, and the jobs each committed transaction carried out."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.committed: list[list[int]] = []
        self.fail_commit = False

    @contextmanager
    def write(self) -> Iterator[Any]:
        with self.lock:
            done: list[int] = []
            yield done
            if self.fail_commit:
                raise ServiceUnavailable("the registry database is unavailable: disk I/O")
            self.committed.append(done)


def _queue_behind_the_lock(
    batches: GroupCommit, writes: FakeWrites, jobs: list[Callable[[Any], None]]
) -> list[BaseException | None]:
    """Run every job from its own thread while the test holds the write lock, then let go."""
    results: list[BaseException | None] = [None] * len(jobs)

    def run(number: int) -> None:
        try:
            batches.run(jobs[number])
        except BaseException as error:
            results[number] = error

    writes.lock.acquire()
    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while batches.queued < len(jobs):
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.005)
    writes.lock.release()
    for thread in threads:
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive()
    return results


def _append(number: int) -> Callable[[Any], None]:
    return lambda done: done.append(number)


def test_writers_queued_behind_the_lock_share_one_transaction() -> None:
    writes = FakeWrites()
    batches = GroupCommit(writes.write, batched=True)
    results = _queue_behind_the_lock(batches, writes, [_append(n) for n in range(8)])
    assert results == [None] * 8
    assert len(writes.committed) == 1 and sorted(writes.committed[0]) == list(range(8))
    assert batches.transactions == 1 and batches.queued == 0


@pytest.mark.parametrize(
    "refusal",
    [
        ConflictError("Endpoint e3 is held by deployment d9."),
        ResourceInUse('Cannot create already existing endpoint "e3".'),
        ResourceNotFound('Could not find endpoint "e3".'),
    ],
)
def test_a_refusal_is_its_own_writers_and_the_rest_commits(refusal: Exception) -> None:
    writes = FakeWrites()
    batches = GroupCommit(writes.write, batched=True)

    def refuse(done: Any) -> None:
        raise refusal

    jobs = [_append(n) for n in range(5)]
    jobs[3] = refuse
    results = _queue_behind_the_lock(batches, writes, jobs)
    assert results[3] is refusal
    assert [r for n, r in enumerate(results) if n != 3] == [None] * 4
    # One transaction: the refusal did not send the batch round again one write at a time.
    assert len(writes.committed) == 1 and sorted(writes.committed[0]) == [0, 1, 2, 4]


def test_a_failed_transaction_fails_every_writer_in_it() -> None:
    writes = FakeWrites()
    writes.fail_commit = True
    batches = GroupCommit(writes.write, batched=True)
    results = _queue_behind_the_lock(batches, writes, [_append(n) for n in range(4)])
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    assert writes.committed == [] and batches.transactions == 0 and batches.queued == 0


def test_a_writer_that_breaks_the_transaction_fails_alone_and_the_rest_commit() -> None:
    """A constraint one write breaks (here a RuntimeError standing in for an IntegrityError)
    rolls its batch back; every other write of it is carried out again and committed."""
    writes = FakeWrites()
    batches = GroupCommit(writes.write, batched=True)

    def broken(done: Any) -> None:
        done.append(99)
        raise RuntimeError("FOREIGN KEY constraint failed")

    jobs = [_append(n) for n in range(4)]
    jobs[1] = broken
    results = _queue_behind_the_lock(batches, writes, jobs)
    assert isinstance(results[1], RuntimeError)
    assert [r for n, r in enumerate(results) if n != 1] == [None] * 3
    assert sorted(n for done in writes.committed for n in done) == [0, 2, 3]
    assert 99 not in [n for done in writes.committed for n in done]


def test_unbatched_runs_each_job_in_its_own_transaction() -> None:
    writes = FakeWrites()
    batches = GroupCommit(writes.write, batched=False)
    for n in range(3):
        batches.run(_append(n))
    assert writes.committed == [[0], [1], [2]]


def _pending(step: int) -> PendingDeployment:
    return PendingDeployment(
        config_name="c2", start_time=at(1), variants=[], phase="Baking", step_index=step
    )


def test_progress_from_many_threads_at_once_is_all_stored(registry: SqlRegistry) -> None:
    endpoints, steps = 12, 5
    for n in range(endpoints):
        name = f"ep{n}"
        registry.create_endpoint(endpoint(name), deployment(f"c{n}", name, "CreateEndpoint"))
        registry.finish_operation(
            name, f"c{n}", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
        )
        registry.begin_operation(
            name, [EndpointStatus.IN_SERVICE], EndpointStatus.UPDATING, deployment(f"d{n}", name)
        )

    def deploy(n: int) -> None:
        for step in range(steps):
            registry.record_progress(
                f"ep{n}", f"d{n}", _pending(step), event(f"d{n}", key=f"d{n}:{step}", n=step)
            )

    with ThreadPoolExecutor(max_workers=endpoints) as pool:
        list(pool.map(deploy, range(endpoints), timeout=60))
    for n in range(endpoints):
        record = registry.get_endpoint(f"ep{n}")
        assert record is not None and record.pending == _pending(steps - 1)
        assert [e.key for e in registry.list_events(f"d{n}")] == [f"d{n}:{s}" for s in range(steps)]
    # Another deployment's progress is still refused, whatever batch it shares.
    with pytest.raises(ConflictError):
        registry.record_progress("ep0", "d1", _pending(9), event("d1", key="d1:x"))
