"""The PostgreSQL store: psycopg 3 with a connection pool, for many processes on many hosts.

Every AddCredit without an idempotency key is one statement in autocommit: one round trip, one
implicit transaction. Concurrent AddCredits are group-committed into one call of the function
``creditbook_apply_credits`` (migrations 0005 and 0008; on the event loop for the HTTP server,
on a writer thread for blocking callers): the function applies the batch in order, checks
each operation on its own, chains each entry to its client's head and updates each touched
client once. A credit that arrives alone skips the function's setup: ``ONE_CREDIT`` does the
same work as one statement.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import errors
from ..money import MAX_BALANCE_CENTS, format_cents
from . import queries as Q
from .base import SqlStore
from .batch import Collector, outcomes, settle
from .listener import VersionListener
from .loop import OffloadCommitter
from .protocol import CreditOp, IdempotencyKey, Replay, Waitable
from .sql import (
    CHAIN_MIGRATION,
    CLIENT_KEYS_MIGRATION,
    Cursor,
    Row,
    Stream,
    credit_detail,
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
BATCH = """
SELECT op, balance, outcome FROM creditbook_apply_credits(
    %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::bigint[], %s::text[], %s::text[], %s::bigint)
"""
#: One credit alone (an idle service, one connection, a lone ``local_api`` call): the batch
#: function's work as one statement, which costs PostgreSQL and the caller about 230 us less
#: than the function's setup for a batch of one (bench/ANALYSIS.md, seventh pass). Its entry,
#: hash, activity line and event are the function's, character for character; the result row
#: is the client's balance before and after (no row: no such client; no after: refused).
ONE_CREDIT = """
WITH p AS (
    SELECT %s::bigint AS client, %s::bigint AS amount, %s::bigint AS admin, %s::text AS date,
           %s::text AS description, %s::text AS at, %s::text AS actor, %s::bigint AS actor_admin,
           %s::text AS ip, %s::text AS detail, %s::bigint AS max
), c AS MATERIALIZED (
    SELECT c.id, c.balance_cents, c.entries, c.head_hash, c.last_date, c.status
    FROM clients c, p WHERE c.id = p.client FOR UPDATE OF c
), n AS MATERIALIZED (
    SELECT c.id, c.balance_cents + p.amount AS bal, c.entries + 1 AS cnt, c.head_hash AS prev,
           GREATEST(c.last_date, p.date) AS last,
           encode(sha256(convert_to(concat_ws('|', 'creditbook-entry-v1', c.id::text,
               (c.entries + 1)::text, p.date, p.amount::text, p.admin::text, '0', p.at,
               length(p.actor)::text || ':' || p.actor,
               length(p.description)::text || ':' || p.description, c.head_hash), 'UTF8')),
               'hex') AS hash,
           nextval(pg_get_serial_sequence('activity', 'id')) AS act
    FROM c, p WHERE c.balance_cents + p.amount BETWEEN 0 AND p.max
                    AND (p.amount > 0 OR p.date >= c.last_date)
                    AND (p.amount < 0 OR c.status <> 'Closed')
), u AS (
    UPDATE clients SET balance_cents = n.bal, entries = n.cnt, head_hash = n.hash,
                       last_date = n.last
    FROM n WHERE clients.id = n.id
), e AS (
    INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                         balance_cents, relid, created_at, actor, prev_hash, hash, activity_id)
    SELECT n.id, n.cnt, p.admin, p.date, p.description, p.amount, n.bal, 0, p.at, p.actor,
           n.prev, n.hash, n.act
    FROM n, p
), l AS (
    INSERT INTO activity (id, at, actor, admin_id, client_id, ip, action, detail, via_entry)
    SELECT n.act, p.at, p.actor, p.actor_admin, n.id, p.ip, 'addcredit', p.detail, 1 FROM n, p
), v AS (
    INSERT INTO events (uid, type, client_id, seq, at)
    SELECT 'evt_' || replace(gen_random_uuid()::text, '-', ''),
           CASE WHEN p.amount > 0 THEN 'credit.added' ELSE 'credit.removed' END, n.id, n.cnt, p.at
    FROM n, p WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled = 1)
)
SELECT c.balance_cents, n.bal, c.last_date, c.status FROM c LEFT JOIN n ON true
"""
REFUSALS: dict[str, type[errors.CreditError]] = {
    "notfound": errors.ClientIdNotFound,
    "insufficient": errors.InsufficientCredit,
    "limit": errors.BalanceLimitExceeded,
    "closed": errors.ClientClosed,
}


class CreditBatcher(Collector[CreditOp]):
    """Group commit on PostgreSQL: concurrent credits become one function call (one round trip,
    one transaction, one update per touched client)."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__()
        self.store = store

    def _process(self, batch: list[tuple[CreditOp, Future[Any]]]) -> None:
        try:
            rows = self.store._apply_batch([op for op, _ in batch])
        except errors.StoreError as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            log.warning("batch of %d failed (%s): retrying each credit alone", len(batch), exc)
            for unit in batch:
                self._process([unit])
            return
        self.batches += 1
        self.units += len(batch)
        for index, balance, outcome in rows:
            op, future = batch[index - 1]
            if outcome == "ok" and balance is not None:
                future.set_result(int(balance))
            elif outcome.startswith("backdated:"):
                _, day, lowest = outcome.split(":")
                future.set_exception(
                    errors.BackdatedOverdraw(op.date, day, format_cents(int(lowest)))
                )
            elif outcome == "backdated":
                # A lone removal dated before another of the client's entries: every later
                # day is checked in a transaction of its own (rare: removals are dated today).
                settle(
                    future, partial(self.store._transact, partial(self.store._apply_credit, op=op))
                )
            else:
                future.set_exception(REFUSALS[outcome]())


@lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """Rewrite ``:name`` placeholders of a constant statement to psycopg's ``%(name)s``
    (a literal ``%``, as in a ``LIKE`` pattern, is doubled first)."""
    return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


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
    def _snapshot(self) -> Iterator[Stream]:
        """Stream queries from one ``REPEATABLE READ`` snapshot (server-side cursors)."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
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
        """Apply many balance changes in one call of the batch function (one round trip)."""
        if self._batcher is None:
            return super().apply_credits(ops)
        units: list[tuple[CreditOp, Future[Any]]] = [(op, Future()) for op in ops]
        if units:
            self._batcher.process(units)
        return outcomes([future for _, future in units])

    def _apply_batch(self, ops: Sequence[CreditOp]) -> list[tuple[int, int | None, str]]:
        """Apply credits with one call of ``creditbook_apply_credits`` (one statement, one
        transaction; a lone credit with ``ONE_CREDIT``): each is checked alone and chained to
        its client's head."""
        if len(ops) <= 1:
            return [self._apply_one(op) for op in ops]
        columns = zip(*map(_fields, ops), strict=True)
        arrays = [array(column) for array, column in zip(_ARRAYS, columns, strict=True)]
        with self._read() as cur:
            return cur.execute(BATCH, (*arrays, MAX_BALANCE_CENTS)).fetchall()  # type: ignore[no-any-return]

    def _apply_one(self, op: CreditOp) -> tuple[int, int | None, str]:
        """Apply one credit with ``ONE_CREDIT``; the row ``_apply_batch`` gives for it."""
        with self._read() as cur:
            row = cur.execute(ONE_CREDIT, (*_fields(op), MAX_BALANCE_CENTS)).fetchone()
        if row is None:
            return 1, None, "notfound"
        before, after, last, status = row
        if after is not None:
            return 1, int(after), "ok"
        if op.amount_cents > 0 and status == "Closed":
            return 1, None, "closed"
        if before + op.amount_cents < 0:
            return 1, None, "insufficient"
        return 1, None, "backdated" if op.amount_cents < 0 and op.date < last else "limit"

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


def _fields(op: CreditOp) -> tuple[int | str, ...]:
    """A credit's parameters, in the order of ``BATCH``'s arrays and ``ONE_CREDIT``'s values."""
    return (
        op.client_id,
        op.amount_cents,
        op.admin_id,
        op.date,
        op.description,
        op.at,
        op.actor.name,
        op.actor.admin_id,
        op.actor.ip,
        credit_detail(op),
    )


def int_array(values: Sequence[int]) -> str:
    """An array of integers as PostgreSQL's array text (``{1,-2}``), cast by the statement.

    psycopg adapts a list element by element, about 2.3 us each: built here, a batch of 16
    credits cost the caller 224 us of CPU instead of 378 (bench/ANALYSIS.md, eighth pass).
    """
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: Sequence[str]) -> str:
    """An array of text as PostgreSQL's array text: every element double-quoted, with ``\\``
    and ``"`` escaped by a backslash (so commas, braces, spaces and ``NULL`` stay text)."""
    return "{" + ",".join('"' + _escape(v) + '"' for v in values) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


#: How each of ``_fields`` travels in a batch.
_ARRAYS: tuple[Callable[[Any], str], ...] = (
    int_array,
    int_array,
    int_array,
    text_array,
    text_array,
    text_array,
    text_array,
    int_array,
    text_array,
    text_array,
)
