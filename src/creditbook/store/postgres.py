"""The PostgreSQL store: psycopg 3 with a connection pool, for many processes on many hosts.

A lone AddCredit is one statement (a CTE doing the update and both inserts) in autocommit:
one round trip, one implicit transaction, and the row lock is held only for that statement.
Concurrent AddCredits are group-committed by a writer thread: one call of the function
``creditbook_apply_credits`` (migration 0005) applies the whole batch in order, with each
operation checked on its own and each touched client updated once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import errors
from ..money import MAX_BALANCE_CENTS
from .base import SqlStore
from .batch import Collector, LoopCommitter, settle
from .listener import VersionListener
from .protocol import CreditOp, IdempotencyKey, Replay, Waitable
from .sql import Cursor, credit_detail, migrations

log = logging.getLogger("creditbook")
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_]+)")
_MIGRATION_LOCK = 0x63726564  # arbitrary constant: serialises concurrent migrators

CREDIT_CTE = """
WITH u AS (
    UPDATE clients SET balance_cents = balance_cents + %(amount)s, entries = entries + 1
    WHERE id = %(client_id)s AND balance_cents + %(amount)s BETWEEN 0 AND %(max)s
    RETURNING id, balance_cents, entries
), e AS (
    INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                         balance_cents, relid, created_at)
    SELECT id, entries, %(admin_id)s, %(date)s, %(description)s, %(amount)s, balance_cents, 0,
           %(at)s
    FROM u
), a AS (
    INSERT INTO activity (at, actor, admin_id, client_id, ip, action, detail)
    SELECT %(at)s, %(actor)s, %(actor_admin)s, id, %(ip)s, 'addcredit', %(detail)s FROM u
)
SELECT balance_cents FROM u
"""


BATCH = """
SELECT op, balance, outcome FROM creditbook_apply_credits(
    %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::bigint[], %s::text[], %s::text[], %s::bigint)
"""
REFUSALS: dict[str, type[errors.CreditError]] = {
    "notfound": errors.ClientIdNotFound,
    "insufficient": errors.InsufficientCredit,
    "limit": errors.BalanceLimitExceeded,
}


class CreditBatcher(Collector[CreditOp]):
    """Group commit on PostgreSQL: concurrent credits become one function call (one round trip,
    one transaction, one update per touched client)."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__()
        self.store = store

    def _process(self, batch: list[tuple[CreditOp, Future[Any]]]) -> None:
        if len(batch) == 1:
            self._alone(*batch[0])
            return
        ops = [op for op, _ in batch]
        columns = (
            [o.client_id for o in ops],
            [o.amount_cents for o in ops],
            [o.admin_id for o in ops],
            [o.date for o in ops],
            [o.description for o in ops],
            [o.at for o in ops],
            [o.actor.name for o in ops],
            [o.actor.admin_id for o in ops],
            [o.actor.ip for o in ops],
            [credit_detail(o) for o in ops],
            MAX_BALANCE_CENTS,
        )
        try:
            with self.store.pool.connection() as conn:
                rows = conn.execute(BATCH, columns).fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("batch of %d failed (%s): retrying each credit alone", len(batch), exc)
            for op, future in batch:
                self._alone(op, future)
            return
        self.batches += 1
        self.units += len(batch)
        for index, balance, outcome in rows:
            future = batch[index - 1][1]
            if outcome == "ok":
                future.set_result(int(balance))
            else:
                future.set_exception(REFUSALS[outcome]())

    def _alone(self, op: CreditOp, future: Future[Any]) -> None:
        settle(future, lambda: self.store._credit_statement(op))


@lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """Rewrite ``:name`` placeholders of a constant statement to psycopg's ``%(name)s``."""
    return _PLACEHOLDER.sub(r"%(\1)s", sql)


class PostgresStore(SqlStore):
    """Store protocol on PostgreSQL."""

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
        self._on_loop = LoopCommitter(self._batcher.process) if self._batcher else None
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
        """Stop the writer and the listener, and close the pool."""
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
        settle(future, lambda: self._credit_statement(op))
        return future

    def submit_credits(self, ops: Sequence[CreditOp]) -> list[Waitable[int | Replay]]:
        """Apply many balance changes in one call of the batch function (one round trip)."""
        if self._batcher is None:
            return super().submit_credits(ops)
        units: list[tuple[CreditOp, Future[Any]]] = [(op, Future()) for op in ops]
        if units:
            self._batcher.process(units)
        return [future for _, future in units]

    def _credit_statement(self, op: CreditOp) -> int:
        with self._read() as cur:
            row = cur.execute(
                CREDIT_CTE,
                {
                    "amount": op.amount_cents,
                    "client_id": op.client_id,
                    "max": MAX_BALANCE_CENTS,
                    "admin_id": op.admin_id,
                    "date": op.date,
                    "description": op.description,
                    "at": op.at,
                    "actor": op.actor.name,
                    "actor_admin": op.actor.admin_id,
                    "ip": op.actor.ip,
                    "detail": credit_detail(op),
                },
            ).fetchone()
            if row is None:
                self._refuse_credit(cur, op)
        return int(row[0])

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
        return applied
