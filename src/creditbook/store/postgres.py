"""The PostgreSQL store: psycopg 3 with a connection pool, for many processes on many hosts.

Every plain grant (AddCredit adding paid credit that never expires, without an idempotency key)
is one statement in autocommit: one round trip, one implicit transaction. Concurrent ones are
group-committed into one call of the function ``creditbook_apply_credits`` (``pg_credit.py``;
on the event loop for the HTTP server, on a writer thread for blocking callers): the function
applies the batch in order, checks each grant on its own, chains each entry to its client's
head and updates each touched client once. A grant that arrives alone skips the function's
setup: ``ONE_CREDIT`` does the same work as one statement. Changes that spend grants take the
row path (``spend.py``), a run of them one transaction.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import errors
from ..money import MAX_BALANCE_CENTS
from . import queries as Q
from .base import SqlStore
from .batch import Unit, apply_each, outcomes
from .listener import VersionListener
from .loop import OffloadCommitter
from .pg_credit import ARRAYS, BATCH, ONE_CREDIT, CreditBatcher, credit_fields
from .protocol import CreditOp, IdempotencyKey, Replay, Waitable
from .sql import (
    CHAIN_MIGRATION,
    CLIENT_KEYS_MIGRATION,
    Cursor,
    Row,
    Stream,
    migrations,
)
from .transfer import IDENTITY_TABLES

log = logging.getLogger("creditbook")
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_]+)")
_MIGRATION_LOCK = 0x63726564  # arbitrary constant: serialises concurrent migrators

RESET_IDENTITY = [
    f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "  # noqa: S608 constant table names
    f"COALESCE((SELECT MAX(id) FROM {t}), 0) + 1, false)"
    for t in IDENTITY_TABLES
]


@lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """Rewrite ``:name`` placeholders of a constant statement to psycopg's ``%(name)s``
    (a literal ``%``, as in a ``LIKE`` pattern, is doubled first)."""
    return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


class PostgresStore(SqlStore):
    """Store protocol on PostgreSQL."""

    LOCKS_ROWS = True
    AGGREGATES_IN_DATABASE = True

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        timeout: float = 10.0,
        group_commit: bool = True,
        listen: bool = True,
    ) -> None:
        self.url = url
        self._batcher = CreditBatcher(self) if group_commit else None
        self._on_loop = OffloadCommitter(self._batcher.process) if self._batcher else None
        self._listen = listen
        self._listener: VersionListener | None = None
        self.timeout = timeout
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(pool_size, 1),
            open=False,
            timeout=timeout,
            kwargs={"autocommit": True},
            name="creditbook",
        )
        try:
            self.pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self.pool.close()
            raise errors.StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    def close(self) -> None:
        """Stop the writers and the listener, and close the pool."""
        if self._on_loop is not None:
            self._on_loop.close()
        if self._batcher is not None:
            self._batcher.close()
        if self._listener is not None:
            self._listener.close()
        self.pool.close()

    def versions(self) -> tuple[int, int]:
        """Return the invalidation counters: cached by the listener, else read."""
        if self._listen and self._listener is None:
            self._listener = VersionListener(self.url)
        cached = self._listener.current if self._listener is not None else None
        return cached if cached is not None else super().versions()

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise errors.StoreError(str(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                self._begin_deferred()
                yield conn
                self._write_deferred(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            unique = isinstance(exc, pg_errors.UniqueViolation)
            raise errors.StoreError(str(exc), unique=unique) from exc

    def _q(self, sql: str) -> str:
        return _pg(sql)

    def _stream(self, sql: str, **params: Any) -> Iterator[Row]:
        """Yield a query's rows through a server-side cursor (constant memory)."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                with conn.cursor(name="creditbook_stream") as cur:
                    cur.itersize = 5000
                    cur.execute(self._q(sql), params)
                    yield from cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise errors.StoreError(str(exc)) from exc

    def _batches(self, sql: str, size: int = 5000, **params: Any) -> Iterator[list[Row]]:
        """Yield a query's rows a batch at a time through a server-side cursor."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                with conn.cursor(name="creditbook_batches") as cur:
                    cur.execute(self._q(sql), params)
                    while batch := cur.fetchmany(size):
                        yield batch
        except (psycopg.Error, PoolTimeout) as exc:
            raise errors.StoreError(str(exc)) from exc

    @contextmanager
    def _snapshot(self, work_mem_mb: int = 0) -> Iterator[Stream]:
        """Stream queries from one ``REPEATABLE READ`` snapshot (server-side cursors);
        ``work_mem_mb`` raises the memory per sort or hash for this transaction only (a
        report's aggregates over a whole ledger, kept off disk)."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                if work_mem_mb:
                    conn.execute(f"SET LOCAL work_mem = '{int(work_mem_mb)}MB'")
                names = itertools.count()

                def stream(sql: str, **params: Any) -> Iterator[Row]:
                    with conn.cursor(name=f"creditbook_copy_{next(names)}") as cur:
                        cur.itersize = 5000
                        cur.execute(self._q(sql), params)
                        yield from cur

                yield stream
        except (psycopg.Error, PoolTimeout) as exc:
            raise errors.StoreError(str(exc)) from exc

    def _after_copy(self, cur: Cursor) -> None:
        """Move each id sequence past the copied ids."""
        for sql in RESET_IDENTITY:
            cur.execute(sql)

    def _activity_ids(self, cur: Cursor, count: int) -> list[int]:
        """Ids for ``count`` new activity lines from the table's sequence, ascending."""
        return sorted(int(r[0]) for r in self._run(cur, Q.ACTIVITY_NEXT_IDS, n=count))

    def _run_many(self, cur: Cursor, sql: str, rows: list[dict[str, Any]]) -> None:
        with cur.cursor() as many:
            many.executemany(self._q(sql), rows)

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers within two seconds."""
        try:
            with self.pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1").fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise errors.StoreError(str(exc)) from exc

    def submit_credit(
        self, op: CreditOp, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Apply a balance change in one statement (or, with a key, one transaction)."""
        if idem is not None:
            return super().submit_credit(op, idem, inline=inline)
        if self._on_loop is not None and not inline:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass  # a thread without an event loop: the writer thread collects it
            else:
                return self._on_loop.submit(op, loop)
        if self._batcher is not None:
            return self._batcher.submit(op, inline=inline)
        future: Future[int | Replay] = Future()
        CreditBatcher(self).process([(op, future)])
        return future

    def apply_credits(self, ops: Sequence[CreditOp]) -> list[int | errors.CreditError]:
        """Apply many balance changes in one transaction, in order: plain grants with one call
        of the batch function (one round trip), any other mix by the row path."""
        if not ops:
            return []
        if self._batcher is not None and all(op.plain for op in ops):
            units: list[tuple[CreditOp, Future[Any]]] = [(op, Future()) for op in ops]
            self._batcher.process(units)
            return outcomes([future for _, future in units])
        work: list[Unit] = [(partial(self._apply_credit, op=op), Future()) for op in ops]
        with self._write() as cur:
            results = apply_each(cur, work)
        return [value for _, _, value in results]

    def _apply_batch(self, ops: Sequence[CreditOp]) -> list[tuple[int, int | None, str]]:
        """Apply credits with one call of ``creditbook_apply_credits`` (one statement, one
        transaction; a lone credit with ``ONE_CREDIT``): each is checked alone and chained to
        its client's head."""
        if len(ops) <= 1:
            return [self._apply_one(op) for op in ops]
        columns = zip(*map(credit_fields, ops), strict=True)
        arrays = [array(column) for array, column in zip(ARRAYS, columns, strict=True)]
        with self._read() as cur:
            return cur.execute(BATCH, (*arrays, MAX_BALANCE_CENTS)).fetchall()  # type: ignore[no-any-return]

    def _apply_one(self, op: CreditOp) -> tuple[int, int | None, str]:
        """Apply one credit with ``ONE_CREDIT``; the row ``_apply_batch`` gives for it."""
        with self._read() as cur:
            row = cur.execute(ONE_CREDIT, (*credit_fields(op), MAX_BALANCE_CENTS)).fetchone()
        if row is None:
            return 1, None, "notfound"
        _, after, _, status = row
        if after is not None:
            return 1, int(after), "ok"
        return 1, None, "closed" if status == "Closed" else "limit"

    def migrate(self) -> list[int]:
        """Apply pending migrations under an advisory lock; return those applied."""
        applied: list[int] = []
        try:
            with self.pool.connection() as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
                try:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations"
                        " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
                    )
                    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
                    for version, script in migrations("postgres"):
                        if version in done:
                            continue
                        with conn.transaction():
                            conn.execute(script.encode())
                            conn.execute(
                                "INSERT INTO schema_migrations VALUES (%s, now()::text)", (version,)
                            )
                        applied.append(version)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        except psycopg.Error as exc:
            raise errors.StoreError(f"migration failed: {exc}") from exc
        if CHAIN_MIGRATION in applied:
            self.backfill_chain()
        if CLIENT_KEYS_MIGRATION in applied:
            self.backfill_client_keys()
        return applied
