"""The SQL implementation of the Store protocol shared by the SQLite and PostgreSQL stores.

``SqlStore`` adds the ledger's own writes (credits and clients, once per idempotency key) to the
shared reads (``reads.py``) and access-control writes (``admin.py``), over the connections and
transactions that a subclass supplies (``sql.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import cached_property, partial
from typing import Any

from .. import errors
from ..chain import seal_digest
from ..model import Actor
from ..money import MAX_BALANCE_CENTS
from . import backfill
from . import grant_sql as G
from . import queries as Q
from .admin import AdminWrites
from .approvals import ApprovalStore
from .batch import Stats, commit_units, outcomes
from .bulk import BulkStore
from .console import ConsoleStore
from .exports import ExportReads
from .factors import FactorStore
from .grants import GrantStore
from .imports import ImportStore
from .protocol import CreditOp, IdempotencyKey, NewClient, Replay, Seal, Waitable
from .reads import SqlReads
from .reports import ReportStore
from .spend import Spender
from .sql import Cursor, T, Work, alert_for, credit_hash, dump_json, event_uid
from .webhooks import WebhookStore

__all__ = ["CreditWork", "SqlStore"]
_NONE = ("", "")


class CreditWork:
    """A credit without an idempotency key as a unit of work: ``apply(cur, op)``.

    A batch recognises it by its type, so a store can apply a run of them set-based.
    """

    __slots__ = ("apply", "op")

    def __init__(self, apply: Callable[[Cursor, CreditOp], int], op: CreditOp) -> None:
        self.apply = apply
        self.op = op

    def __call__(self, cur: Cursor) -> int:
        return self.apply(cur, self.op)


class SqlStore(ConsoleStore, WebhookStore, ImportStore, ExportReads, AdminWrites, SqlReads):
    """Store protocol over a DB-API connection; subclasses own connections and transactions.

    New capabilities are parts of their own over the same connections (``store.bulk``, ...),
    rather than more base classes.
    """

    @cached_property
    def bulk(self) -> BulkStore:
        """Bulk credit's claims."""
        return BulkStore(self)

    @cached_property
    def grants(self) -> GrantStore:
        """Credit grants' categories, thresholds, figures and expiry."""
        return GrantStore(self)

    @cached_property
    def approvals(self) -> ApprovalStore:
        """Four-eyes approval's rules and requests."""
        return ApprovalStore(self)

    @cached_property
    def factors(self) -> FactorStore:
        """Two-factor login's secrets and recovery codes."""
        return FactorStore(self)

    @cached_property
    def reports(self) -> ReportStore:
        """The month-end reports' reads."""
        return ReportStore(self)

    # --- idempotency and write submission ------------------------------------------------------

    def _replay(self, cur: Cursor, idem: IdempotencyKey) -> Replay | None:
        """Claim a key, or return the outcome already recorded under it.

        The claim is an insert, so a concurrent duplicate waits on it (PostgreSQL's unique
        index, SQLite's writer lock) and then sees the first request's recorded outcome.
        The one write that may precede a refusal here is forgetting expired keys, which is
        harmless to commit with the rest of a batch (see ``batch.commit_units``).
        """
        self._run(cur, Q.IDEM_FORGET, before=idem.now - idem.keep_seconds)
        claimed = self._run(
            cur,
            Q.IDEM_CLAIM,
            scope=idem.scope,
            key=idem.key,
            fingerprint=idem.fingerprint,
            at=idem.now,
        ).rowcount
        if claimed:
            return None
        row = self._run(cur, Q.IDEM_GET, scope=idem.scope, key=idem.key).fetchone()
        if row[0] != idem.fingerprint:
            raise errors.IdempotencyKeyReused()
        outcome: dict[str, object] = json.loads(row[1])
        return Replay(outcome)

    def _remember(self, cur: Cursor, idem: IdempotencyKey, outcome: dict[str, object]) -> None:
        self._run(cur, Q.IDEM_RECORD, scope=idem.scope, key=idem.key, outcome=dump_json(outcome))

    def _once(self, idem: IdempotencyKey, apply: Work[Any]) -> Work[Any]:
        """Wrap ``apply`` so that it runs once per idempotency key; failures are remembered too."""

        def work(cur: Cursor) -> Any:
            replay = self._replay(cur, idem)
            if replay is not None:
                return replay
            try:
                value = apply(cur)
            except errors.CreditError as exc:
                outcome: dict[str, object] = {"error": exc.message, "status": exc.status}
                self._remember(cur, idem, outcome)
                return Replay(outcome, replayed=False)
            self._remember(cur, idem, {"value": value})
            return value

        return work

    def _submit_op(
        self, work: Work[Any], idem: IdempotencyKey | None, inline: bool
    ) -> Waitable[int | Replay]:
        """Submit an API write, once per idempotency key when one is given."""
        return self._submit(work if idem is None else self._once(idem, work), inline)

    # --- writes --------------------------------------------------------------------------------

    def _apply_credit(self, cur: Cursor, op: CreditOp, key: str = "") -> int:
        if not (op.kind == "grant" or (not op.kind and op.amount_cents > 0)):
            return Spender(self, cur, partial(self._lowest_from, cur)).apply(op, key)
        row = self._run(
            cur,
            Q.GRANT_UPDATE,
            amount=op.amount_cents,
            client_id=op.client_id,
            date=op.date,
            max=MAX_BALANCE_CENTS,
            lasting=0 if op.expires else 1,
        ).fetchone()
        if row is None:
            raise self._grant_refusal(cur, op)
        balance, seq, below = int(row[0]), int(row[1]), int(row[3])
        heads = self._heads()
        prev = heads.get(op.client_id, row[2])
        digest = credit_hash(op, seq, prev)
        heads[op.client_id] = digest
        alert, data = alert_for(balance - op.amount_cents, balance, below) if below >= 0 else _NONE
        # The entry and activity rows (and the new chain heads) are written by the transaction
        # just before it commits, one executemany each for the batch (``_write_deferred``).
        self._deferred().append((op, seq, balance, prev, digest, key, alert, data))
        return balance

    def _grant_refusal(self, cur: Cursor, op: CreditOp) -> errors.CreditError:
        """Why the guarded update refused a grant (it wrote nothing)."""
        row = self._run(cur, Q.CLIENT_LOCK, client_id=op.client_id).fetchone()
        if row is None:
            return errors.ClientIdNotFound()
        if row[2] == "Closed":
            return errors.ClientClosed()
        return errors.BalanceLimitExceeded()

    def _lowest_from(
        self, cur: Cursor, client_id: int, date: str, balance: int,
        extra: Sequence[tuple[str, int]] = (),
    ) -> tuple[str, int]:  # fmt: skip
        """The lowest balance at the end of a day from ``date`` on, and that day, for a client
        whose balance is ``balance`` now (this transaction's unwritten entries included), after
        ``extra`` (date, cents) changes that are not written yet."""
        later: dict[str, int] = {
            str(d): int(amount)
            for d, amount in self._run(cur, Q.DATED_AFTER, client_id=client_id, date=date)
        }
        pending = [(op.date, op.amount_cents) for op, *_ in self._deferred()
                   if op.client_id == client_id]  # fmt: skip
        for when, amount in [*pending, *extra]:
            if when > date:
                later[when] = later.get(when, 0) + amount
        balance += sum(amount for _, amount in extra)
        return lowest_balance(date, balance - sum(later.values()), sorted(later.items()))

    def submit_credit(
        self, op: CreditOp, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start a balance change; the future holds the new balance once it is durable.

        ``inline``: the caller will block on the future (see ``Collector.submit``).
        """
        if idem is None:
            return self._submit_op(CreditWork(self._apply_credit, op), None, inline)
        return self._submit_op(partial(self._apply_credit, op=op, key=idem.key), idem, inline)

    def apply_credits(self, ops: Sequence[CreditOp]) -> list[int | errors.CreditError]:
        """Apply many balance changes in one transaction, in order; each its balance or refusal."""
        units: list[tuple[Work[Any], Future[Any]]] = [
            (partial(self._apply_credit, op=op), Future()) for op in ops
        ]
        if units:
            commit_units(self._write, units, Stats())
        return outcomes([future for _, future in units])

    def apply_credit(self, op: CreditOp, idem: IdempotencyKey | None = None) -> int | Replay:
        """Apply a balance change with its entry and activity line; return the new balance."""
        return self.submit_credit(op, idem, inline=True).result()

    def backfill_chain(self) -> int:
        """Compute the hashes of entries written before the chain existed; return how many
        (``backfill.chain``)."""
        return backfill.chain(self)

    def backfill_client_keys(self) -> int:
        """Fill in the folded search text and sort key of clients written before they existed
        (``backfill.client_keys``); return how many."""
        return backfill.client_keys(self)

    def seal(self, at: str) -> tuple[Seal, list[tuple[int, int, str]]]:
        """Record a seal over every client's chain head now; return it and the heads.

        The heads are read by one statement, a consistent snapshot even while credits arrive.
        """
        heads = [(int(r[0]), int(r[1]), r[2]) for r in self._stream(Q.SEAL_HEADS_NOW)]
        digest = seal_digest(heads)
        entries = sum(count for _, count, _ in heads)
        with self._write() as cur:
            row = self._run(
                cur, Q.SEAL_INSERT, at=at, clients=len(heads), entries=entries, digest=digest
            ).fetchone()
            seal_id = int(row[0])
            self._run_many(
                cur,
                Q.SEAL_HEAD_INSERT,
                [{"seal_id": seal_id, "client_id": c, "seq": n, "hash": h} for c, n, h in heads],
            )
        return Seal(seal_id, at, len(heads), entries, digest), heads

    def _add_client(self, cur: Cursor, op: NewClient, idem_key: str = "") -> int:
        key = op.email.lower()
        # Checked first so the refusal happens before any write (a batch commits the rest).
        if self._run(cur, Q.CLIENT_EMAIL_TAKEN, email_key=key).fetchone() is not None:
            raise errors.DuplicateEmail()
        row = self._run(
            cur,
            Q.CLIENT_INSERT,
            firstname=op.firstname,
            lastname=op.lastname,
            companyname=op.companyname,
            email=op.email,
            email_key=key,
            currency_code=op.currency_code,
            status=op.status,
            details=op.details,
            at=op.at,
            search_key=op.search_key,
            sort_key=op.sort_key,
        ).fetchone()
        client_id = int(row[0])
        self._activity(cur, op.actor, op.at, "addclient", f"Created client {op.email}", client_id)
        if self._listened(cur):
            data = {
                "client_id": client_id,
                "firstname": op.firstname,
                "lastname": op.lastname,
                "companyname": op.companyname,
                "email": op.email,
                "currency": op.currency_code,
                "status": op.status,
                "created_at": op.at,
            }
            self._run(
                cur,
                Q.EVENT_INSERT,
                uid=event_uid(),
                type="client.created",
                client_id=client_id,
                seq=0,
                idem_key=idem_key,
                data=dump_json(data),
                at=op.at,
            )
        return client_id

    def submit_update(
        self,
        client_id: int,
        row: dict[str, Any],
        changed: dict[str, tuple[str, str]],
        actor: Actor,
        at: str,
        *,
        inline: bool = False,
    ) -> Waitable[None]:
        """Start writing a client's new fields with an activity line naming the old and new
        values (``DuplicateEmail``; ``CurrencyLocked`` once the client has entries)."""

        def work(cur: Cursor) -> None:
            locked = self._run(cur, Q.CLIENT_ENTRIES_LOCK, client_id=client_id).fetchone()
            if locked is None:
                raise errors.ClientNotFound()
            if "currency" in changed and int(locked[0]) > 0:
                raise errors.CurrencyLocked()
            key = str(row["email"]).lower()
            other = self._run(cur, Q.CLIENT_EMAIL_TAKEN, email_key=key).fetchone()
            if other is not None and int(other[0]) != client_id:
                raise errors.DuplicateEmail()
            self._run(cur, Q.CLIENT_UPDATE, client_id=client_id, email_key=key, **row)
            if "currency" in changed:  # the new currency's threshold applies
                currency = row["currency_code"]
                self._run(cur, G.THRESHOLDS_REFRESH, client_id=client_id, currency=currency)
            said = "; ".join(f"{field}: {old[:100]!r} -> {new[:100]!r}"
                             for field, (old, new) in changed.items())  # fmt: skip
            self._activity(cur, actor, at, "updateclient", f"Updated client: {said}", client_id)

        return _unique_means(self._submit(work, inline=inline), errors.DuplicateEmail)

    def submit_client(
        self, op: NewClient, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start creating a client; the future holds its id once it is durable.

        A concurrent AddClient that took the address first (the unique index refuses this
        insert after the check passed) is reported as the duplicate it is.
        """
        key = "" if idem is None else idem.key
        future = self._submit_op(partial(self._add_client, op=op, idem_key=key), idem, inline)
        return _unique_means(future, errors.DuplicateEmail)

    def add_client(self, op: NewClient, idem: IdempotencyKey | None = None) -> int | Replay:
        """Create a client; return its id."""
        return self.submit_client(op, idem, inline=True).result()


def lowest_balance(date: str, opening: int, later: list[tuple[str, int]]) -> tuple[str, int]:
    """The lowest of the balances at the end of ``date`` (``opening``) and of each later day
    with entries (their changes in date order), and its day (the earliest of equals)."""
    day, lowest, balance = date, opening, opening
    for when, change in later:
        balance += change
        if balance < lowest:
            day, lowest = when, balance
    return day, lowest


def _unique_means(future: Waitable[T], error: type[errors.CreditError]) -> Waitable[T]:
    """Return a future that reports a lost unique-constraint race as ``error``."""
    mapped: Waitable[T] = (
        future.get_loop().create_future() if isinstance(future, asyncio.Future) else Future()
    )

    def done(settled: Waitable[T]) -> None:
        exc = settled.exception()
        if isinstance(exc, errors.StoreError) and exc.unique:
            mapped.set_exception(error())
        elif exc is not None:
            mapped.set_exception(exc)
        else:
            mapped.set_result(settled.result())

    future.add_done_callback(done)
    return mapped
