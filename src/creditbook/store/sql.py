"""The core of the SQL stores: statements and transactions over the connections a store supplies.

A store supplies connections (``_read``/``_write``, which report driver errors as
``StoreError``) and the dialect of its placeholders (``_q``). Reads (``reads.py``), access-control
writes (``admin.py``) and the ledger's writes (``base.py``) are built on these few methods.
"""

from __future__ import annotations

import abc
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from typing import Any, TypeVar

from ..chain import entry_hash, grant_text
from ..model import Actor
from ..money import format_cents
from . import queries as Q
from .batch import transact_into
from .protocol import CreditOp, Waitable

Cursor = Any
Row = tuple[Any, ...]
T = TypeVar("T")
Work = Callable[[Cursor], T]
Stream = Callable[..., Iterator[Row]]


#: The migration that adds the hash chain: entries older than it get their hashes computed.
CHAIN_MIGRATION = 8
#: The migration that adds clients' folded search text and sort key, computed in Python.
CLIENT_KEYS_MIGRATION = 15
#: A credit applied in the current transaction whose rows are still to be written: the
#: operation, its sequence number, the balance after it, its predecessor's hash, its hash, the
#: idempotency key it was made under ("" for none), and the low-balance event it raises with its
#: data ("" and "" for none; ``alert_for``).
Deferred = tuple[CreditOp, int, int, str, str, str, str, str]
#: The webhook event of each kind of entry.
EVENT_OF_KIND = {
    "grant": "credit.added",
    "removal": "credit.removed",
    "expiry": "credit.expired",
    "restore": "credit.added",
}


class SqlBase(abc.ABC):
    """Statements and transactions over a DB-API connection; subclasses own the connections.

    A subclass's ``_write`` calls ``_begin_deferred`` when a transaction starts and
    ``_write_deferred`` just before it commits.
    """

    url: str
    #: Whether a statement can lock the rows it reads (``FOR UPDATE``): PostgreSQL; SQLite's
    #: writer holds the whole database.
    LOCKS_ROWS = False
    #: Whether whole-ledger report sums are best left to the database (PostgreSQL's parallel
    #: hash aggregates) rather than streamed and merged client by client (SQLite).
    AGGREGATES_IN_DATABASE = False

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (one consistent snapshot for the block)."""

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor inside one write transaction: commit on success, roll back on error."""

    @abc.abstractmethod
    def _q(self, sql: str) -> str:
        """Return ``sql`` in the driver's placeholder style."""

    @abc.abstractmethod
    def _apply_credit(self, cur: Cursor, op: CreditOp, key: str = "") -> int:
        """Apply one balance change in the current transaction, refusing before any write
        (``SqlStore``; the console's claimed credits build on it)."""

    def _run(self, cur: Cursor, sql: str, **params: Any) -> Cursor:
        return cur.execute(self._q(sql), params)

    def _stream(self, sql: str, **params: Any) -> Iterator[Row]:
        """Yield the rows of a query without holding them all in memory."""
        with self._read() as cur:
            yield from self._run(cur, sql, **params)

    def _batches(self, sql: str, size: int = 5000, **params: Any) -> Iterator[list[Row]]:
        """Yield a query's rows a batch at a time (constant memory, no per-row generator)."""
        with self._read() as cur:
            rows = self._run(cur, sql, **params)
            while batch := rows.fetchmany(size):
                yield batch

    def _run_many(self, cur: Cursor, sql: str, rows: list[dict[str, Any]]) -> None:
        cur.executemany(self._q(sql), rows)

    @contextmanager
    def _snapshot(self, work_mem_mb: int = 0) -> Iterator[Stream]:
        """Yield a function that streams queries, all from one consistent snapshot
        (``work_mem_mb``: PostgreSQL's memory per sort or hash for a large report)."""
        with self._read() as cur:
            cur.execute("BEGIN")  # SQLite: the first read fixes the snapshot until COMMIT
            try:
                yield lambda sql, **params: iter(self._run(cur, sql, **params))
            finally:
                cur.execute("COMMIT")

    def _after_copy(self, cur: Cursor) -> None:  # noqa: B027 a hook; SQLite needs nothing
        """Bring the store's own counters past copied rows (PostgreSQL's id sequences)."""

    def _transaction(self) -> Any:
        local = self.__dict__.get("_tx")
        if local is None:
            local = self.__dict__.setdefault("_tx", threading.local())
        if not hasattr(local, "rows"):
            local.rows, local.heads = [], {}
        return local

    def _deferred(self) -> list[Deferred]:
        """The current thread's transaction's credits whose rows are not written yet."""
        rows: list[Deferred] = self._transaction().rows
        return rows

    def _heads(self) -> dict[int, str]:
        """The chain heads the current thread's transaction moved, by client (not yet stored)."""
        heads: dict[int, str] = self._transaction().heads
        return heads

    def _begin_deferred(self) -> None:
        """Forget what a failed transaction of this thread left."""
        self._deferred().clear()
        self._heads().clear()

    def _write_deferred(self, cur: Cursor) -> None:
        """Write the entry and activity rows of the transaction's credits (before it commits)."""
        rows = self._deferred()
        if not rows:
            return
        ids = self._activity_ids(cur, len(rows))
        self._run_many(
            cur,
            Q.ACTIVITY_ENTRY_INSERT,
            [
                {
                    "id": line,
                    "at": op.at,
                    "actor": op.actor.name,
                    "admin_id": op.actor.admin_id,
                    "client_id": op.client_id,
                    "ip": op.actor.ip,
                    "detail": credit_detail(op),
                }
                for line, (op, *_) in zip(ids, rows, strict=True)
            ],
        )
        self._run_many(
            cur,
            Q.CREDIT_INSERT,
            [
                {
                    "client_id": op.client_id,
                    "seq": seq,
                    "admin_id": op.admin_id,
                    "date": op.date,
                    "description": op.description,
                    "amount": op.amount_cents,
                    "balance": balance,
                    "at": op.at,
                    "actor": op.actor.name,
                    "prev_hash": prev,
                    "hash": digest,
                    "activity_id": line,
                    "kind": (fields := entry_fields(op))[0],
                    "category": fields[1],
                    "expires": fields[2],
                    "remaining": op.amount_cents if fields[0] == "grant" else 0,
                }
                for line, (op, seq, balance, prev, digest, *_) in zip(ids, rows, strict=True)
            ],
        )
        heads = self._heads()
        self._run_many(cur, Q.CLIENT_HEAD, [{"client_id": c, "hash": h} for c, h in heads.items()])
        if self._listened(cur):
            events = []
            for op, seq, _, _, _, key, alert, alert_data in rows:
                events.append(event_row(EVENT_OF_KIND[entry_fields(op)[0]], op, seq, key))
                if alert:
                    events.append(event_row(alert, op, seq, key, alert_data))
            self._run_many(cur, Q.EVENT_INSERT, events)
        rows.clear()
        heads.clear()

    def _flush(self, cur: Cursor) -> None:
        """Write the transaction's pending entries now (before a change that reads them)."""
        if self._deferred():
            self._write_deferred(cur)

    def _activity_ids(self, cur: Cursor, count: int) -> list[int]:
        """Ids for ``count`` new activity lines, ascending (SQLite: after the last, as the
        writer holds the one write lock; PostgreSQL overrides this with its sequence)."""
        last = int(self._run(cur, Q.ACTIVITY_LAST_ID).fetchone()[0])
        return list(range(last + 1, last + 1 + count))

    def _listened(self, cur: Cursor) -> bool:
        """Whether any webhook endpoint is enabled: only then are outbox rows written.

        Read inside the writing transaction, so an endpoint hears every change committed after
        it was added."""
        return self._run(cur, Q.ANY_ENDPOINT).fetchone() is not None

    def _bump(self, cur: Cursor, counter: str) -> None:
        """Bump an invalidation counter (``Q.CONFIG_BUMP`` or ``Q.FAILURE_BUMP``)."""
        self._run(cur, counter)

    def _activity(
        self, cur: Cursor, actor: Actor, at: str, action: str, detail: str, client_id: int = 0
    ) -> None:
        self._run(
            cur,
            Q.ACTIVITY_INSERT,
            at=at,
            actor=actor.name,
            admin_id=actor.admin_id,
            client_id=client_id,
            ip=actor.ip,
            action=action,
            detail=detail,
        )

    def _submit(self, work: Work[T], inline: bool = False) -> Waitable[T]:
        """Run ``work(cur)`` in one write transaction; stores that batch writes override this."""
        future: Future[T] = Future()
        transact_into(future, self._write, work)
        return future

    def _transact(self, work: Work[T]) -> T:
        """Run ``work(cur)`` in one write transaction and return its value."""
        return self._submit(work, inline=True).result()


def credit_hash(op: CreditOp, seq: int, prev: str) -> str:
    """The chain hash of the entry a balance change writes as its client's ``seq``-th."""
    kind, category, expires = entry_fields(op)
    plain = kind == "grant" and category == "paid" and not expires
    return entry_hash(
        op.client_id,
        seq,
        op.date,
        op.amount_cents,
        op.admin_id,
        0,
        op.at,
        op.actor.name,
        op.description,
        prev,
        "" if plain else grant_text(kind, category, expires, op.spent),
    )


_VERBS = {"expiry": "Expired", "restore": "Gave back"}


def entry_fields(op: CreditOp) -> tuple[str, str, str]:
    """An entry's kind, category and expiry date as stored (``CreditOp.grant_fields``, without
    its property calls: this runs for every entry written)."""
    kind = op.kind
    if not kind or kind == "grant":
        if op.amount_cents > 0:
            return "grant", op.category, op.expires
        return "removal", "", ""
    if kind == "expiry":
        return kind, op.category, op.expires
    return kind, "", ""


def credit_detail(op: CreditOp) -> str:
    """Describe a balance change for the activity log."""
    verb = _VERBS.get(op.kind) or ("Added" if op.amount_cents > 0 else "Removed")
    return f"{verb} credit {format_cents(abs(op.amount_cents))}: {op.description[:200]}"


def alert_for(before: int, after: int, below: int) -> tuple[str, str]:
    """The low-balance event a change from ``before`` to ``after`` raises under a threshold
    (``below`` cents; -1: none) and its data: ``balance.depleted`` when it reaches exactly
    zero from above, ``balance.low`` when it falls below the threshold from at or above it,
    ``balance.recovered`` when it comes back to at or above it; ("", "") for none."""
    if below < 0:
        return "", ""
    if after == 0 < before:
        kind = "balance.depleted"
    elif before >= below > after:
        kind = "balance.low"
    elif before < below <= after:
        kind = "balance.recovered"
    else:
        return "", ""
    data = {"threshold": format_cents(below), "previous_balance": format_cents(before)}
    return kind, dump_json(data)


def event_row(kind: str, op: CreditOp, seq: int, key: str, data: str = "") -> dict[str, Any]:
    """An outbox row for an entry's event (its data is read from the entry when delivered)."""
    return {
        "uid": event_uid(),
        "type": kind,
        "client_id": op.client_id,
        "seq": seq,
        "idem_key": key,
        "data": data,
        "at": op.at,
    }


def event_uid() -> str:
    """A new event id: unique across stores, backups and restores (so receivers can trust it)."""
    return "evt_" + os.urandom(16).hex()


def migrations(dialect: str) -> list[tuple[int, str]]:
    """Return the numbered migration scripts of a dialect, in order."""
    folder = resources.files("creditbook.store") / "migrations" / dialect
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), item.read_text(encoding="utf-8")))
    return sorted(found)


def dump_json(value: object) -> str:
    """Serialise a small value for storage."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
