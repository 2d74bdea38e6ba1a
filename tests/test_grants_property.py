"""Property: random grants (categories, expiry dates), removals, reversals, days passing and
expiry runs agree, after every step and on both stores, with a simple in-memory model: the
balances, what remains of each grant and the order grants are spent in, the expiry amounts and
the low-balance events; nothing is spent after it expired; ``verify`` passes."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import creditbook
from creditbook import errors, expiry
from creditbook.audit import verify
from creditbook.staff import Staff
from helpers import ACTOR

_emails = itertools.count()
START = dt.date(2026, 3, 1)
THRESHOLD = 500


@dataclass
class Grant:
    entry: int
    seq: int
    category: str
    expires: str
    remaining: int


@dataclass
class Account:
    """One client as the model sees it."""

    balance: int = 0
    seq: int = 0
    grants: list[Grant] = field(default_factory=list)
    removals: list[tuple[int, list[tuple[Grant, int]]]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def move(self, cents: int) -> None:
        before, self.balance = self.balance, self.balance + cents
        self.seq += 1
        if self.balance == 0 < before:
            self.alerts.append("balance.depleted")
        elif before >= THRESHOLD > self.balance:
            self.alerts.append("balance.low")
        elif before < THRESHOLD <= self.balance:
            self.alerts.append("balance.recovered")

    def due(self, today: str) -> list[Grant]:
        return sorted(
            (g for g in self.grants if g.expires and g.expires < today and g.remaining),
            key=lambda g: (g.expires, g.seq),
        )

    def expire(self, today: str) -> None:
        for g in self.due(today):
            amount, g.remaining = g.remaining, 0
            self.move(-amount)

    def order(self) -> list[Grant]:
        """Open grants in spending order."""
        open_ = [g for g in self.grants if g.remaining]
        return sorted(open_, key=lambda g: (g.expires == "", g.expires, g.seq))


ops = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(0, 1), st.integers(1, 900),
                  st.sampled_from(["paid", "promotional", "goodwill"]), st.integers(0, 12)),
        st.tuples(st.just("remove"), st.integers(0, 1), st.integers(1, 600)),
        st.tuples(st.just("undo"), st.integers(0, 1), st.integers(0, 30)),
        st.tuples(st.just("void"), st.integers(0, 1), st.integers(0, 30)),
        st.tuples(st.just("days"), st.integers(1, 6)),
        st.tuples(st.just("expire"),),
    ),
    min_size=20,
    max_size=40,
)  # fmt: skip


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=ops)
def test_grants_agree_with_a_model(book: creditbook.Creditbook, steps: list[Any]) -> None:
    ledger, staff = book.ledger, Staff(book.ledger)
    day = [START]
    ledger.clock = lambda tz: dt.datetime.combine(day[0], dt.time(12)).replace(tzinfo=tz)
    tag = next(_emails)
    ids = [
        ledger.add_client(firstname="p", lastname="q", email=f"g{tag}-{i}@example.com",
                          actor=ACTOR).client_id
        for i in range(2)
    ]  # fmt: skip
    for cid in ids:
        ledger.set_threshold(clientid=str(cid), currency="USD", below="5", actor=ACTOR)
    book.store.add_endpoint("http://127.0.0.1:9/", ("*",), "", ACTOR, "2026-01-01T00:00:00Z")
    model = [Account(), Account()]
    undone: set[int] = set()
    for step in steps:
        today = day[0].isoformat()
        if step[0] == "days":
            day[0] += dt.timedelta(days=step[1])
            continue
        if step[0] == "expire":
            expiry.run(ledger)
            for account in model:
                account.expire(today)
            check(book, ids, model)
            continue
        who, account = ids[step[1]], model[step[1]]
        if step[0] == "grant":
            _, _, cents, category, days = step
            expires = (day[0] + dt.timedelta(days=days)).isoformat() if days else ""
            asked = expires
            if category == "promotional" and not days:  # its default period
                expires = (day[0] + dt.timedelta(days=90)).isoformat()
            ledger.add_credit(clientid=str(who), amount=f"{cents / 100:.2f}", description="g",
                              category=category, expires=asked or None, actor=ACTOR)  # fmt: skip
            account.move(cents)
            entry = last_entry(book, who)
            account.grants.append(Grant(entry, account.seq, category, expires, cents))
        elif step[0] == "remove":
            cents = step[2]
            available = account.balance - sum(g.remaining for g in account.due(today))
            try:
                ledger.add_credit(clientid=str(who), amount=f"{cents / 100:.2f}",
                                  description="r", type="remove", actor=ACTOR)  # fmt: skip
            except errors.InsufficientCredit:
                assert cents > available
                continue
            assert cents <= available
            account.expire(today)
            taken = take(account, cents)
            account.move(-cents)
            account.removals.append((last_entry(book, who), taken))
        elif step[0] == "undo" and account.removals:
            entry, taken = account.removals[step[2] % len(account.removals)]
            if entry in undone:
                continue
            staff.reverse_credit(entry, reason="undo", actor=ACTOR)
            undone.add(entry)
            for grant, amount in taken:
                grant.remaining += amount
            account.move(sum(a for _, a in taken))
            account.expire(today)
        elif step[0] == "void" and account.grants:
            grant = account.grants[step[2] % len(account.grants)]
            if grant.entry in undone:
                continue
            due = account.due(today)
            try:
                staff.reverse_credit(grant.entry, reason="void", actor=ACTOR)
            except errors.NothingToTakeBack:
                assert grant.remaining == 0 or grant in due
                continue
            undone.add(grant.entry)
            assert grant.remaining and grant not in due
            account.expire(today)
            amount, grant.remaining = grant.remaining, 0
            account.move(-amount)
            account.removals.append((last_entry(book, who), [(grant, amount)]))
        check(book, ids, model)
    report = verify(book.store)
    assert report.ok, report.problems


def take(account: Account, cents: int) -> list[tuple[Any, int]]:
    taken = []
    for grant in account.order():
        if not cents:
            break
        amount = min(cents, grant.remaining)
        grant.remaining -= amount
        cents -= amount
        taken.append((grant, amount))
    assert cents == 0
    return taken


def last_entry(book: creditbook.Creditbook, client: int) -> int:
    """The id of the client's newest entry."""
    _, _, found = book.ledger.get_credits(str(client), book.store.count_credits(client) - 1, 1)
    return next(found).id


def check(book: creditbook.Creditbook, ids: list[int], model: list[Account]) -> None:
    for cid, account in zip(ids, model, strict=True):
        client = book.store.get_client(cid)
        assert client is not None and client.balance_cents == account.balance
        assert book.store.count_credits(cid) == account.seq
        shown = [(g.seq, g.remaining_cents) for g in book.ledger.open_grants(cid)]
        assert shown == [(g.seq, g.remaining) for g in account.order()]
        store: Any = book.store
        with store._read() as cur:
            kinds = [
                r[0]
                for r in store._run(
                    cur,
                    "SELECT type FROM events WHERE client_id = :c AND type LIKE 'balance.%'"
                    " ORDER BY id",
                    c=cid,
                )
            ]
        assert kinds == account.alerts
