"""Group commit for SQLite's single writer: writes that queue for the write lock are carried out
by whichever thread gets it first, all in one transaction.

Under load the queue for the lock grows with the number of deployments, and each write in it
pays its own BEGIN IMMEDIATE, COMMIT and WAL append while the others wait. With group commit the
writes that arrived while one batch ran go together in the next: the number of transactions
follows the number of times the lock changes hands, not the number of writes, and a writer waits
for at most the batch in front of it (issue 17). PostgreSQL locks rows and runs writers in
parallel, so there each write keeps its own transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Connection

from greenshift.errors import ConflictError, ResourceInUse, ResourceNotFound

Job = Callable[[Connection], None]

# A job may refuse (the endpoint is gone, held by another deployment, or busy) only before it
# wrote anything: the refusal goes to its caller, and the rest of the batch commits. Any other
# error rolls the batch back, and its jobs are carried out again one transaction each.
REFUSALS = (ConflictError, ResourceInUse, ResourceNotFound)


@dataclass
class _Entry:
    job: Job
    taken: bool = False
    error: BaseException | None = None


class GroupCommit:
    """`write()` opens a write transaction (with whatever lock the registry uses); `batched`
    False runs every job in its own transaction (PostgreSQL)."""

    def __init__(
        self, write: Callable[[], AbstractContextManager[Connection]], *, batched: bool
    ) -> None:
        self._write = write
        self._batched = batched
        self._pending: list[_Entry] = []
        self._mutex = threading.Lock()  # guards _pending, held for a few instructions
        self._leader = threading.Lock()  # one batch at a time; taken before the write lock
        self.transactions = 0  # how many batches were committed (for tests and benchmarks)

    @property
    def queued(self) -> int:
        """Writes waiting for a transaction."""
        with self._mutex:
            return len(self._pending)

    def run(self, job: Job) -> None:
        """Carry out `job` in a write transaction, possibly together with others; raises what
        the job raised (a refusal), or the transaction's error to every job in it."""
        if not self._batched:
            with self._write() as conn:
                job(conn)
            return
        entry = _Entry(job)
        with self._mutex:
            self._pending.append(entry)
        with self._leader:
            # Taken by an earlier leader: it finished before it let go of the leader lock.
            if not entry.taken:
                try:
                    self._commit()
                finally:
                    if not entry.taken:  # the transaction never began: the caller is told
                        with self._mutex:
                            self._pending.remove(entry)
        if entry.error is not None:
            raise entry.error

    def _commit(self) -> None:
        """The batch is what queued until the write lock was had: writers that arrive while
        the leader waits for it join this transaction instead of queueing behind it."""
        batch: list[_Entry] = []
        try:
            with self._write() as conn:
                with self._mutex:
                    batch, self._pending = self._pending, []
                    for queued in batch:
                        queued.taken = True
                for queued in batch:
                    try:
                        queued.job(conn)
                    except REFUSALS as refusal:
                        queued.error = refusal
            self.transactions += 1
        except BaseException as error:  # the transaction failed: nothing of it was written
            if not batch:
                raise
            if len(batch) == 1:
                batch[0].error = batch[0].error or error
                return
            # One writer's failure (a constraint it broke) is not the others': each is carried
            # out again alone, and what fails fails only its own writer.
            for queued in batch:
                queued.error = None
                try:
                    with self._write() as conn:
                        queued.job(conn)
                    self.transactions += 1
                except BaseException as alone:
                    queued.error = alone
