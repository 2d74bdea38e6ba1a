"""Spending grants: removals, reversals and expiry, one client at a time under its row lock.

A plain grant (paid credit that never expires) is one guarded UPDATE (``SqlStore``); a change
that spends or gives back grants comes here. The client's row is locked first (every change to
a grant's ``remaining`` holds it), the change is planned from reads alone, and only when it is
accepted is anything written: a refusal writes nothing, as group commit requires
(``batch.py``). The order credit is spent in: the grant a reversal names; then grants with an
expiry date, soonest first; then grants that never expire, oldest first (``open_from`` is
where that scan starts). A grant past its expiry day is never spent: the change first expires
it (an entry of its own, as the expiry run would write).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import errors
from ..model import Actor
from ..money import MAX_BALANCE_CENTS, format_cents
from .protocol import CreditOp
from .sql import Cursor, alert_for, credit_hash

if TYPE_CHECKING:
    from .sql import SqlBase

#: The actor that writes expiry entries.
EXPIRY_ACTOR = Actor("system:expiry")
CLIENT_STATE = """
UPDATE clients SET entries = entries WHERE id = :client_id
RETURNING balance_cents, entries, head_hash, last_date, status, open_from, low_below
"""
CLIENT_SPENT = """
UPDATE clients SET balance_cents = :balance, entries = :entries, last_date = :last_date,
                   open_from = :open_from
WHERE id = :client_id
"""
_GRANT = "SELECT id, seq, remaining, category, expires, date, amount_cents, kind FROM credits"
#: A client's grants past their expiry day with something left, in expiry order.
DUE_OF_CLIENT = f"""
{_GRANT} WHERE client_id = :client_id AND expires <> '' AND remaining > 0 AND expires < :today
ORDER BY expires, seq
"""  # noqa: S608
#: A client's grants with an expiry date that can still be spent, soonest first.
EXPIRING_OF_CLIENT = f"""
{_GRANT} WHERE client_id = :client_id AND expires <> '' AND remaining > 0 AND expires >= :today
ORDER BY expires, seq
"""  # noqa: S608
#: A client's grants that never expire with something left, oldest first, from a number on.
LASTING_OF_CLIENT = f"""
{_GRANT} WHERE client_id = :client_id AND seq >= :start AND expires = '' AND remaining > 0
ORDER BY seq
"""  # noqa: S608
GRANT_OF_CLIENT = f"{_GRANT} WHERE client_id = :client_id AND seq = :seq"  # noqa: S608
ALLOCATIONS_OF = """
SELECT a.grant_seq, a.amount FROM allocations a
WHERE a.client_id = :client_id AND a.seq = :seq ORDER BY a.grant_seq
"""
REMAINING_SET = """
UPDATE credits SET remaining = :remaining WHERE client_id = :client_id AND seq = :seq
"""
ALLOCATION_INSERT = """
INSERT INTO allocations (client_id, seq, grant_seq, amount, category, date)
VALUES (:client_id, :seq, :grant_seq, :amount, :category, :date)
"""


@dataclass(slots=True)
class Grant:
    """A grant as read under its client's lock."""

    id: int
    seq: int
    remaining: int
    category: str
    expires: str
    date: str
    amount: int
    kind: str

    @classmethod
    def of(cls, row: Any) -> Grant:
        """A grant from a ``_GRANT`` row (a legacy entry counts as paid credit)."""
        return cls(int(row[0]), int(row[1]), int(row[2]), row[3] or "paid", row[4], row[5],
                   int(row[6]), row[7])  # fmt: skip


@dataclass(slots=True)
class Client:
    """A client's figures under its row lock, moved along as entries are planned."""

    id: int
    balance: int
    entries: int
    head: str
    last_date: str
    status: str
    open_from: int
    low_below: int


#: ``lowest(client_id, date, balance, extra)``: the lowest end-of-day balance from a day on and
#: that day, with ``extra`` (date, cents) changes not written yet (``SqlStore._lowest_from``).
Lowest = Callable[[int, str, int, list[tuple[str, int]]], tuple[str, int]]


class Spender:
    """Plans and writes one spending change for one client, in the current transaction."""

    def __init__(self, store: SqlBase, cur: Cursor, lowest: Lowest) -> None:
        self.store = store
        self.cur = cur
        self.lowest = lowest
        self.remaining: list[dict[str, Any]] = []
        self.allocations: list[dict[str, Any]] = []

    def _rows(self, sql: str, **params: Any) -> Iterator[Grant]:
        rows = self.store._run(self.cur, sql, **params)
        while batch := rows.fetchmany(64):
            yield from map(Grant.of, batch)

    def lock(self, client_id: int) -> Client:
        """Write the transaction's pending entries, then lock and read the client."""
        self.store._flush(self.cur)
        row = self.store._run(self.cur, CLIENT_STATE, client_id=client_id).fetchone()
        if row is None:
            raise errors.ClientIdNotFound()
        return Client(client_id, int(row[0]), int(row[1]), row[2], row[3], row[4], int(row[5]),
                      int(row[6]))  # fmt: skip

    def apply(self, op: CreditOp, key: str = "") -> int:
        """Apply a removal (``grant_seq``: a reversal of that grant) or a restore; return the
        balance after it."""
        client = self.lock(op.client_id)
        today = op.today or op.date
        due = list(self._rows(DUE_OF_CLIENT, client_id=client.id, today=today))
        if op.kind_of == "restore":
            return self._restore(client, op, key, due, today)
        if op.grant_seq:
            op = self._reversal_of_grant(client, op, due)
        need = -op.amount_cents
        if client.balance - sum(g.remaining for g in due) < need:
            raise errors.InsufficientCredit()
        if op.date < max(client.last_date, max((g.expires for g in due), default="")):
            extra = [(g.expires, -g.remaining) for g in due]
            day, low = self.lowest(client.id, op.date, client.balance, extra)
            if low + op.amount_cents < 0:
                raise errors.BackdatedOverdraw(op.date, day, format_cents(low))
        taken = self._take(client, need, op.grant_seq, today)
        for grant in due:
            self._expire(client, grant, op.at)
        return self._write(client, op, key, [(g, amount) for g, amount in taken])

    def _reversal_of_grant(self, client: Client, op: CreditOp, due: list[Grant]) -> CreditOp:
        """A reversal of a grant takes back what remains of it (nothing: refused)."""
        row = self.store._run(
            self.cur, GRANT_OF_CLIENT, client_id=client.id, seq=op.grant_seq
        ).fetchone()
        grant = None if row is None else Grant.of(row)
        if grant is None or grant.remaining <= 0 or any(g.seq == grant.seq for g in due):
            raise errors.NothingToTakeBack()
        return dataclasses.replace(op, amount_cents=-grant.remaining)

    def _take(self, client: Client, need: int, first: int, today: str) -> list[tuple[Grant, int]]:
        """Choose what a removal of ``need`` cents takes from which grants, in spending order,
        and update ``remaining`` and ``open_from`` (nothing is refused from here on)."""
        taken: list[tuple[Grant, int]] = []
        sources: list[Iterator[Grant]] = []
        if first:
            sources.append(self._rows(GRANT_OF_CLIENT, client_id=client.id, seq=first))
        sources.append(self._rows(EXPIRING_OF_CLIENT, client_id=client.id, today=today))
        if client.open_from:
            start = client.open_from
            sources.append(self._rows(LASTING_OF_CLIENT, client_id=client.id, start=start))
        left = need
        for source in sources:
            for grant in source:
                if left == 0:
                    break
                if any(g.seq == grant.seq for g, _ in taken):
                    continue
                amount = min(left, grant.remaining)
                taken.append((grant, amount))
                left -= amount
            if left == 0:
                break
        if left:  # the balance covered it, so the grants must have: a broken ledger
            raise errors.StoreError(f"client {client.id}: grants do not cover the balance")
        lasting_emptied = False
        for grant, amount in taken:
            grant.remaining -= amount
            self.remaining.append(
                {"client_id": client.id, "seq": grant.seq, "remaining": grant.remaining}
            )
            lasting_emptied |= not grant.expires and grant.remaining == 0
        if lasting_emptied:
            self._write_remaining()
            row = self.store._run(
                self.cur, NEXT_LASTING, client_id=client.id, start=client.open_from
            ).fetchone()
            client.open_from = 0 if row[0] is None else int(row[0])
        return taken

    def _restore(self, client: Client, op: CreditOp, key: str, due: list[Grant], today: str) -> int:
        """Give a removal's allocations back to their grants, with their expiry dates; those
        already past it expire again at once."""
        given = [
            (int(r[0]), int(r[1]))
            for r in self.store._run(
                self.cur, ALLOCATIONS_OF, client_id=client.id, seq=op.restore_of
            )
        ]
        total = sum(amount for _, amount in given)
        if not given or total <= 0:
            raise errors.NothingToTakeBack()
        if client.status == "Closed":  # giving credit back adds credit
            raise errors.ClientClosed()
        if client.balance + total > MAX_BALANCE_CENTS:
            raise errors.BalanceLimitExceeded()
        op = dataclasses.replace(op, amount_cents=total)
        back: list[tuple[Grant, int]] = []
        for seq, amount in given:
            row = self.store._run(self.cur, GRANT_OF_CLIENT, client_id=client.id, seq=seq)
            grant = Grant.of(row.fetchone())
            grant.remaining += amount
            self.remaining.append(
                {"client_id": client.id, "seq": seq, "remaining": grant.remaining}
            )
            if not grant.expires and (client.open_from == 0 or seq < client.open_from):
                client.open_from = seq
            back.append((grant, -amount))
        balance = self._write(client, op, key, back)
        due_now = {g.seq: g for g in due}
        for grant, _ in back:
            if grant.expires and grant.expires < today:
                due_now[grant.seq] = grant
        for grant in sorted(due_now.values(), key=lambda g: (g.expires, g.seq)):
            balance = self._expire(client, grant, op.at)
        self._finish(client)
        return balance

    def expire(self, client: Client, grants: list[Grant], at: str) -> None:
        """Expire what remains of these grants of a locked client (the expiry run)."""
        for grant in grants:
            self._expire(client, grant, at)

    def _expire(self, client: Client, grant: Grant, at: str) -> int:
        amount = grant.remaining
        grant.remaining = 0
        self.remaining.append({"client_id": client.id, "seq": grant.seq, "remaining": 0})
        op = CreditOp(
            client.id,
            -amount,
            grant.expires,
            f"Expired: {grant.category} credit of {grant.date} (entry #{grant.id})",
            0,
            EXPIRY_ACTOR,
            at,
            kind="expiry",
            category=grant.category,
            expires=grant.expires,
        )
        return self._write(client, op, "", [(grant, amount)], finish=False)

    def _write(
        self,
        client: Client,
        op: CreditOp,
        key: str,
        moves: list[tuple[Grant, int]],
        finish: bool = True,
    ) -> int:
        """Queue the entry (written at commit with the transaction's others), its allocations
        and its low-balance event; move the client's figures on."""
        # The hash covers the allocations in grant order, the order ``verify`` reads them in.
        op = dataclasses.replace(op, spent=tuple(sorted((g.seq, amount) for g, amount in moves)))
        before, client.balance = client.balance, client.balance + op.amount_cents
        client.entries += 1
        client.last_date = max(client.last_date, op.date)
        digest = credit_hash(op, client.entries, client.head)
        alert, data = alert_for(before, client.balance, client.low_below)
        self.store._deferred().append(
            (op, client.entries, client.balance, client.head, digest, key, alert, data)
        )
        self.store._heads()[client.id] = digest
        client.head = digest
        for grant, amount in moves:
            self.allocations.append(
                {"client_id": client.id, "seq": client.entries, "grant_seq": grant.seq,
                 "amount": amount, "category": grant.category, "date": op.date}
            )  # fmt: skip
        if finish:
            self._finish(client)
        return client.balance

    def _write_remaining(self) -> None:
        if self.remaining:
            self.store._run_many(self.cur, REMAINING_SET, self.remaining)
            self.remaining.clear()

    def _finish(self, client: Client) -> None:
        """Write the grants' new remaining amounts, the allocations and the client's row."""
        self._write_remaining()
        if self.allocations:
            self.store._run_many(self.cur, ALLOCATION_INSERT, self.allocations)
            self.allocations.clear()
        self.store._run(
            self.cur,
            CLIENT_SPENT,
            client_id=client.id,
            balance=client.balance,
            entries=client.entries,
            last_date=client.last_date,
            open_from=client.open_from,
        )

    def finish_many(self, clients: list[Client]) -> None:
        """Write what the expiry run did to these clients: one statement each for the grants,
        the allocations and the clients."""
        self._write_remaining()
        if self.allocations:
            self.store._run_many(self.cur, ALLOCATION_INSERT, self.allocations)
            self.allocations.clear()
        rows = [
            {"client_id": c.id, "balance": c.balance, "entries": c.entries,
             "last_date": c.last_date, "open_from": c.open_from}
            for c in clients
        ]  # fmt: skip
        if rows:
            self.store._run_many(self.cur, CLIENT_SPENT, rows)


#: The lowest number of a grant that never expires with something left, from a number on.
NEXT_LASTING = """
SELECT MIN(seq) FROM credits
WHERE client_id = :client_id AND seq >= :start AND expires = '' AND remaining > 0
"""
