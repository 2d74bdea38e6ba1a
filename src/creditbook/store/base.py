"""The SQL implementation of the Store protocol shared by the SQLite and PostgreSQL stores.

``SqlStore`` adds the ledger's own writes (credits and clients, once per idempotency key) to the
shared reads (``reads.py``) and access-control writes (``admin.py``), over the connections and
transactions that a subclass supplies (``sql.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any

from .. import errors
from ..money import MAX_BALANCE_CENTS
from . import queries as Q
from .admin import AdminWrites
from .batch import Stats, commit_units
from .protocol import CreditOp, IdempotencyKey, NewClient, Replay, Waitable
from .reads import SqlReads
from .sql import Cursor, T, Work, dump_json

__all__ = ["SqlStore"]


class SqlStore(AdminWrites, SqlReads):
    """Store protocol over a DB-API connection; subclasses own connections and transactions."""

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

    def _apply_credit(self, cur: Cursor, op: CreditOp) -> int:
        row = self._run(
            cur,
            Q.CREDIT_UPDATE,
            amount=op.amount_cents,
            client_id=op.client_id,
            max=MAX_BALANCE_CENTS,
        ).fetchone()
        if row is None:
            self._refuse_credit(cur, op)
        balance = int(row[0])
        # The entry and activity rows are written by the transaction just before it commits,
        # with one executemany each for the whole batch (see ``SqlBase._write_deferred``).
        self._deferred().append((op, int(row[1]), balance))
        return balance

    def _refuse_credit(self, cur: Cursor, op: CreditOp) -> None:
        row = self._run(cur, Q.CLIENT_BALANCE, client_id=op.client_id).fetchone()
        if row is None:
            raise errors.ClientIdNotFound()
        if op.amount_cents < 0:
            raise errors.InsufficientCredit()
        raise errors.BalanceLimitExceeded()

    def submit_credit(
        self, op: CreditOp, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start a balance change; the future holds the new balance once it is durable.

        ``inline``: the caller will block on the future (see ``Collector.submit``).
        """
        return self._submit_op(partial(self._apply_credit, op=op), idem, inline)

    def submit_credits(self, ops: Sequence[CreditOp]) -> list[Waitable[int | Replay]]:
        """Apply many balance changes in one transaction, in order; one future each, settled."""
        units: list[tuple[Work[Any], Future[Any]]] = [
            (partial(self._apply_credit, op=op), Future()) for op in ops
        ]
        if units:
            commit_units(self._write, units, Stats())
        return [future for _, future in units]

    def apply_credit(self, op: CreditOp, idem: IdempotencyKey | None = None) -> int | Replay:
        """Apply a balance change with its entry and activity line; return the new balance."""
        return self.submit_credit(op, idem, inline=True).result()

    def _add_client(self, cur: Cursor, op: NewClient) -> int:
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
        ).fetchone()
        client_id = int(row[0])
        self._activity(cur, op.actor, op.at, "addclient", f"Created client {op.email}", client_id)
        return client_id

    def submit_client(
        self, op: NewClient, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start creating a client; the future holds its id once it is durable.

        A concurrent AddClient that took the address first (the unique index refuses this
        insert after the check passed) is reported as the duplicate it is.
        """
        future = self._submit_op(partial(self._add_client, op=op), idem, inline)
        return _unique_means(future, errors.DuplicateEmail)

    def add_client(self, op: NewClient, idem: IdempotencyKey | None = None) -> int | Replay:
        """Create a client; return its id."""
        return self.submit_client(op, idem, inline=True).result()


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
