"""Property: any sequence of adds and removes keeps balance == sum of entries == a model."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import creditbook
from creditbook import errors
from helpers import ACTOR

_emails = itertools.count()
amounts = st.one_of(
    st.integers(min_value=1, max_value=10_000).map(lambda c: f"{c // 100}.{c % 100:02d}"),
    st.integers(min_value=1, max_value=500).map(str),
    st.sampled_from(["0.01", "99999999999999.99", "0", "1.001", "-1", "abc"]),
)
operations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2), st.sampled_from(["add", "remove"]), amounts),
    max_size=25,
)


def check(book: creditbook.Creditbook, client_id: int, model: int) -> None:
    """balance == model == sum(entries), and every running balance is right."""
    client = book.ledger.get_client(str(client_id))
    total, _, entries = book.ledger.get_credits(str(client_id))
    running = 0
    for entry in entries:
        running += entry.amount_cents
        assert entry.balance_cents == running
    assert client.balance_cents == model == running


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_random_operations_keep_the_books_balanced(
    book: creditbook.Creditbook, ops: list[tuple[int, str, str]]
) -> None:
    """After every step the ledger agrees with a simple model; refusals change nothing."""
    clients = [
        book.ledger.add_client(
            firstname="p", lastname="q", email=f"prop{next(_emails)}@example.com", actor=ACTOR
        ).client_id
        for _ in range(3)
    ]
    model = dict.fromkeys(clients, 0)
    for index, kind, amount in ops:
        client_id = clients[index]
        before = book.ledger.store.count_credits(client_id)
        try:
            result = book.ledger.add_credit(
                clientid=str(client_id), amount=amount, description="p", type=kind, actor=ACTOR
            )
        except errors.CreditError:
            assert book.ledger.store.count_credits(client_id) == before
        else:
            model[client_id] += (1 if kind == "add" else -1) * int(Decimal(amount) * 100)
            assert result.balance_cents == model[client_id]
            assert 0 <= model[client_id] <= 10**16 - 1
        for cid in clients:
            check(book, cid, model[cid])
