"""Beside the SQLite store, the two other takers of its writer lock (``<db>-writer.lock``).

``WriterGate`` takes it for the event loop's batches without ever blocking the loop;
``Checkpointer`` takes it to copy the WAL into the database file off the commit path.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sqlite import SQLiteStore

log = logging.getLogger("creditbook")


class WriterGate:
    """The writer lock for the event loop's batches (``loop.LoopCommitter``).

    The lock is the loop thread's own connection's: taken without waiting on the loop, or by a
    helper thread on the same descriptor while the loop goes on; while the batch is applied
    the store's ``_write`` knows it is held and neither takes nor releases it.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._fd = -1

    def try_acquire(self) -> bool:
        """Take the lock if it is free."""
        _, self._fd = self._store._conn()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._store._local.held = True
        return True

    def wait(self) -> None:
        """Take the lock, waiting for it (a helper thread, on the loop's descriptor)."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        """Release the lock."""
        self._store._local.held = False
        fcntl.flock(self._fd, fcntl.LOCK_UN)


class Checkpointer:
    """A daemon thread that checkpoints the WAL every ``INTERVAL`` seconds after writes, off the
    commit path.

    PASSIVE checkpoints never wait for readers: they copy what they can, so a backup's snapshot
    costs a commit nothing. Each checkpoint runs in two passes: the first copies the WAL without
    the writer lock, while writers go on; the second, under the lock, copies only what was
    committed during the first. The WAL is then copied whole with no writer in between, and the
    next writer starts it again from the top, so it stays small. A single locked pass held the
    lock while it copied and flushed everything since the last checkpoint: 4-37 ms at a time,
    and 40-50 ms for the backlog a backup's snapshot leaves. Checkpoints run wholly beside the
    commits slowed them (one connection: 13% fewer AddCredit/s); the first pass alone measured
    within noise (bench/ANALYSIS.md, seventh pass).
    """

    #: Often enough that each checkpoint copies about what SQLite's automatic one did (1,000
    #: pages) at the write rates measured here. Every 25 ms (with the whole checkpoint under
    #: the writer lock) lowered AddCredit's quiet p99 by a third but cost 4-5% of throughput
    #: and raised the p99 during a backup (bench/ANALYSIS.md).
    INTERVAL = 0.1

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = os.getpid()
        self.pending = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._thread = threading.Thread(target=self._run, name="creditbook-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        """Count a commit (called under the writer lock)."""
        self.pending += 1

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            if self.pending:
                self.run_once()

    def run_once(self) -> int:
        """Run one PASSIVE checkpoint, finished under the writer lock; return the WAL's frames."""
        with self._lock:
            self.pending = 0
            try:
                if self._conn is None:
                    self._conn = sqlite3.connect(
                        self.path, isolation_level=None, check_same_thread=False
                    )
                    self._conn.execute("PRAGMA wal_autocheckpoint=0")
                    self._lock_fd = os.open(
                        self.path + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600
                    )
                assert self._lock_fd is not None
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                try:
                    row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                finally:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            except (sqlite3.Error, OSError) as exc:
                self.pending += 1
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
                return 0
            if row[0]:
                self.pending += 1  # another process's first pass was running: finish next time
            return int(row[1])

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._stop.set()
        if self.pid != os.getpid():
            return  # a forked child: the thread and connection belong to the parent
        self._thread.join()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
