"""The embedded SQLite store: one file, WAL, durable commits, writers serialised by a file lock.

Each thread gets its own connection. Writers take an exclusive ``flock`` on ``<db>-writer.lock``
around ``BEGIN IMMEDIATE ... COMMIT``: contending processes then queue in the kernel instead of
polling in SQLite's busy handler, which measured p99 of 300-750 ms under two workers. The event
loop's batches never wait for that lock on the loop (``WriterGate``): while another process or
the checkpointer holds it, a helper thread waits and the loop goes on reading requests (32
connections, two workers: the loops had spent 17% of their time blocked there).

The access-control invalidation counters (``meta``) are cached per process and re-read only when
the change stamp (``<db>-stamp``, ``stamp.Stamp``) moved: every transaction that bumps a counter
increments it after its commit, and a request compares eight bytes of shared memory instead of
running a query (SQLite's ``data_version`` would change with every credit another process
commits).

WAL checkpoints run on a background thread of each writing process (``Checkpointer``), never in a
commit: SQLite's automatic checkpoint runs inside the committing call, and while a backup's read
snapshot holds it back it is retried, and costs, on every commit (p99 during a backup 51 ms with
it, 27 ms without it, in the measurements of docs/performance.md).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .. import errors
from . import many
from .base import CreditWork, SqlStore
from .batch import GroupCommitter, Outcome, Unit, apply_each, commit_units
from .loop import LoopCommitter
from .protocol import CreditOp, Waitable
from .sql import CHAIN_MIGRATION, CLIENT_KEYS_MIGRATION, Cursor, T, Work, migrations
from .sqlite_writer import Checkpointer, WriterGate
from .stamp import Stamp
from .writeback import write_behind

SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")
_SIZE = ("page_count", "page_size")


def create_private(path: str) -> None:
    """Create an empty database file readable by its owner only, unless it exists: it will hold
    password hashes and client data, and SQLite gives its WAL the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class SQLiteStore(SqlStore):
    """Store protocol on a SQLite file."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        group_commit: bool = True,
    ):
        if synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = os.path.abspath(path)
        self.url = f"sqlite:///{self.path}"
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[tuple[sqlite3.Connection, int]] = []
        self._all_lock = threading.Lock()
        self._pid = os.getpid()
        self._committer = GroupCommitter(self._write, self._apply_units) if group_commit else None
        self._on_loop: LoopCommitter[Work[Any]] | None = None
        if self._committer is not None:
            committer = self._committer
            self._on_loop = LoopCommitter(
                lambda batch: commit_units(self._write, batch, committer, self._apply_units),
                gate=WriterGate(self),
            )
        self._stamp = Stamp(self.path + "-stamp")
        self._seen: tuple[bytes, tuple[int, int]] | None = None
        self._checkpointer: Checkpointer | None = None

    # --- connections -----------------------------------------------------------------------

    def _conn(self) -> tuple[sqlite3.Connection, int]:
        pair: tuple[sqlite3.Connection, int] | None = getattr(self._local, "pair", None)
        if pair is None or self._pid != os.getpid():
            self._pid = os.getpid()
            pair = self._connect()
            self._local.pair = pair
        return pair

    def _connect(self) -> tuple[sqlite3.Connection, int]:
        try:
            create_private(self.path)
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout_ms / 1000,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's job
            # A WAL grown during a long backup shrinks back when it next starts from the top.
            conn.execute("PRAGMA journal_size_limit=67108864")
        except (sqlite3.Error, OSError) as exc:
            raise errors.StoreError(f"cannot open {self.path}: {exc}") from exc
        lock_fd = os.open(self.path + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        with self._all_lock:
            self._all.append((conn, lock_fd))
        return conn, lock_fd

    def _submit(self, work: Work[T], inline: bool = False) -> Waitable[T]:
        if self._committer is None or self._on_loop is None:
            return super()._submit(work)
        if not inline:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass  # a thread without an event loop: the writer thread collects it
            else:
                return self._on_loop.submit(work, loop)
        return self._committer.submit(work, inline=inline)

    def apply_credits(self, ops: Sequence[CreditOp]) -> list[int | errors.CreditError]:
        """Apply many balance changes in one transaction, in order (runs of grants set-based,
        ``many.py``); a database failure applies none of them."""
        outcomes: list[int | errors.CreditError] = []
        if not ops:
            return outcomes
        with self._write() as cur:
            start = 0
            while start < len(ops):
                end = start
                while end < len(ops) and _grant(ops[end]):
                    end += 1
                if end > start:
                    outcomes += many.apply_grants(
                        cur, ops[start:end], self._deferred(), self._heads()
                    )
                    start = end
                    continue
                try:
                    outcomes.append(self._apply_credit(cur, ops[start]))
                except errors.CreditError as exc:  # refused before writing: nothing to undo
                    outcomes.append(exc)
                start += 1
        return outcomes

    def _apply_units(self, cur: Cursor, batch: Sequence[Unit]) -> list[Outcome]:
        """Apply a group commit's units in order; each run of grants set-based.

        Two or more grants in a row are one read and one write of their clients (``many``)
        instead of a guarded UPDATE each: fewer statements under the writer lock (and fewer
        releases of the GIL). A lone grant keeps its UPDATE, which is faster alone; a change
        that spends grants takes the row path (``spend.py``).
        """
        results: list[Outcome] = []
        start = 0
        while start < len(batch):
            ops: list[CreditOp] = []
            end = start
            while (
                end < len(batch)
                and isinstance(work := batch[end][0], CreditWork)
                and _grant(work.op)
            ):
                ops.append(work.op)
                end += 1
            if len(ops) < 2:
                results += apply_each(cur, batch[start : start + 1])
                start += 1
                continue
            outcomes = many.apply_grants(cur, ops, self._deferred(), self._heads())
            for (_, future), outcome in zip(batch[start:end], outcomes, strict=True):
                results.append((future, not isinstance(outcome, errors.CreditError), outcome))
            start = end
        return results

    def close(self) -> None:
        """Stop the writer and the checkpointer, and close every connection this store opened."""
        if self._committer is not None:
            self._committer.close()
        if self._on_loop is not None:
            self._on_loop.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._stamp.close()
        with self._all_lock:
            for conn, fd in self._all:
                conn.close()
                os.close(fd)
            self._all.clear()
        self._local = threading.local()

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        # Autocommit reads: each statement sees a committed snapshot. Multi-statement readers
        # rely on the ledger being append-only (see Ledger.get_credits).
        conn, _ = self._conn()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise errors.StoreError(str(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        conn, fd = self._conn()
        held = getattr(self._local, "held", False)  # taken for a batch by ``WriterGate``
        if not held:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._begin_deferred()
            try:
                yield conn
                self._write_deferred(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if getattr(self._local, "bumped", False):
                self._stamp.bump()
            self._wrote()
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            unique = isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
            raise errors.StoreError(str(exc), unique=unique) from exc
        finally:
            self._local.bumped = False
            if not held:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _wrote(self) -> None:
        checkpointer = self._checkpointer
        if checkpointer is None or checkpointer.pid != os.getpid():
            with self._all_lock:
                checkpointer = self._checkpointer
                if checkpointer is None or checkpointer.pid != os.getpid():
                    checkpointer = self._checkpointer = Checkpointer(self.path)
        checkpointer.wrote()

    def checkpoint(self) -> int:
        """Copy the WAL into the database file now, as far as readers allow; return its frames."""
        if self._checkpointer is None:
            return 0
        return self._checkpointer.run_once()

    def _bump(self, cur: Cursor, counter: str) -> None:
        super()._bump(cur, counter)
        self._local.bumped = True

    def versions(self) -> tuple[int, int]:
        """Return the invalidation counters, re-read only after another write bumped them."""
        stamp = self._stamp.read()
        seen = self._seen
        if stamp is not None and seen is not None and seen[0] == stamp:
            return seen[1]
        # The stamp is read before the counters: a bump committed in between is seen now, and
        # its stamp differs from the one kept, so the next request reads again.
        counters = super().versions()
        self._seen = None if stamp is None else (stamp, counters)
        return counters

    def _q(self, sql: str) -> str:
        return sql

    def backup_to(self, dest: str, progress: Callable[[int, int], None] | None = None) -> None:
        """Copy the database into a new file with SQLite's online backup API.

        One backup step copies every page inside one read transaction: a consistent snapshot,
        while writers go on (WAL). ``progress(bytes written, bytes in all)`` is called twice a
        second from a watcher thread.
        """
        if os.path.exists(dest):
            raise errors.StoreError(f"{dest} already exists")
        done = threading.Event()
        try:
            source = sqlite3.connect(self.path)
            create_private(dest)
            target = sqlite3.connect(dest)
        except sqlite3.Error as exc:
            raise errors.StoreError(f"cannot back up to {dest}: {exc}") from exc
        try:
            pages, size = (source.execute(f"PRAGMA {p}").fetchone()[0] for p in _SIZE)
            if progress is not None:
                total = int(pages) * int(size)

                def watch() -> None:
                    while not done.wait(0.5):
                        progress(os.path.getsize(dest), total)

                threading.Thread(target=watch, name="creditbook-backup", daemon=True).start()
            with write_behind(dest):
                source.backup(target)
            if progress is not None:
                progress(os.path.getsize(dest), os.path.getsize(dest))
        except sqlite3.Error as exc:
            raise errors.StoreError(f"backup failed: {exc}") from exc
        finally:
            done.set()
            target.close()
            source.close()

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers."""
        with self._read() as cur:
            cur.execute("SELECT 1").fetchone()

    # --- migrations --------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction; return those applied."""
        conn, fd = self._conn()
        applied: list[int] = []
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, script in migrations("sqlite"):
                if version in done:
                    continue
                conn.executescript(
                    "BEGIN IMMEDIATE;\n" + script + "\nINSERT INTO schema_migrations VALUES "
                    f"({int(version)}, strftime('%Y-%m-%dT%H:%M:%SZ','now'));\nCOMMIT;"
                )
                applied.append(version)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise errors.StoreError(f"migration failed: {exc}") from exc
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if CHAIN_MIGRATION in applied:
            self.backfill_chain()
        if CLIENT_KEYS_MIGRATION in applied:
            self.backfill_client_keys()
        return applied


def _grant(op: CreditOp) -> bool:
    """Whether a change adds credit as a grant (``CreditOp.kind_of``, inline)."""
    return op.kind == "grant" or (not op.kind and op.amount_cents > 0)
