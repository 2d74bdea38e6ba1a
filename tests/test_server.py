"""Real server processes: concurrency, racing removals and an unmodified third-party client."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Iterator

import pytest

import creditbook
from helpers import ACTOR, Seed, Server, hammer, seed

pytestmark = pytest.mark.slow


@pytest.fixture
def servers(database: str, book: creditbook.Creditbook) -> Iterator[list[Server]]:
    """SQLite: one ``serve --workers 2``. PostgreSQL: two separate processes of 2 workers."""
    count = 1 if database.startswith("sqlite") else 2
    started = [Server(database, "--workers", "2").start() for _ in range(count)]
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def auth(s: Seed) -> dict[str, str]:
    return {"identifier": s.identifier, "secret": s.secret}


def test_concurrent_mixed_credits_on_one_client(
    servers: list[Server], book: creditbook.Creditbook
) -> None:
    """4,000 adds and removes from 32 connections: balance == acked sum == entry sum."""
    s = seed(book)
    start = 1_000_000
    book.ledger.add_credit(
        clientid=str(s.client_id), amount="10000.00", description="float", actor=ACTOR
    )
    rng = random.Random(7)
    plan = [(rng.choice(["add", "remove"]), rng.randint(1, 999)) for _ in range(4000)]
    began = time.perf_counter()
    result = hammer(
        [sv.api for sv in servers], auth(s), s.client_id, len(plan), 32, plan.__getitem__
    )
    elapsed = time.perf_counter() - began
    client = book.ledger.get_client(str(s.client_id))
    total, _, entries = book.ledger.get_credits(str(s.client_id))
    entry_sum = sum(e.amount_cents for e in entries)
    assert result.failures == [] and result.refused == []
    assert len(result.acked) == 4000 and total == 4001
    assert client.balance_cents == start + sum(result.acked) == entry_sum
    assert min(result.balances) >= 0
    print(
        f"\n{len(plan)} requests, 32 connections, {len(servers)} process(es): "
        f"{len(plan) / elapsed:.0f} req/s, final balance {client.balance_cents} cents"
    )


def test_racing_removals_never_overdraw(servers: list[Server], book: creditbook.Creditbook) -> None:
    """500 concurrent removals of 1.00 from a balance of 100.00: exactly 100 succeed."""
    s = seed(book)
    book.ledger.add_credit(clientid=str(s.client_id), amount="100", description="x", actor=ACTOR)
    result = hammer(
        [sv.api for sv in servers], auth(s), s.client_id, 500, 32, lambda i: ("remove", 100)
    )
    assert result.failures == []
    assert len(result.acked) == 100
    assert set(result.refused) == {"Amount exceeds customer credit balance"}
    assert book.ledger.get_client(str(s.client_id)).balance_cents == 0
    assert sorted(result.balances) == list(range(0, 10_000, 100))


def test_whmcspy_performs_addcredit_unmodified(
    servers: list[Server], book: creditbook.Creditbook
) -> None:
    """The PyPI client whmcspy adds credit and reads the history through a real server."""
    import whmcspy

    s = seed(book)
    api = whmcspy.WHMCS(servers[0].api, s.identifier, s.secret)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = api.call(
            "AddCredit", clientid=s.client_id, description="via whmcspy", amount="12.34"
        )
        assert result == {"result": "success", "newbalance": "12.34"}
        credits = api.call("GetCredits", clientid=s.client_id)
    assert credits["credits"]["credit"][0]["description"] == "via whmcspy"
    with pytest.raises(whmcspy.Error, match="Amount exceeds customer credit balance"):
        api.call("AddCredit", clientid=s.client_id, description="x", amount="100", type="remove")
