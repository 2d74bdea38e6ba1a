"""Idempotent retries: idempotencykey or Idempotency-Key on AddCredit and AddClient."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import creditbook
from creditbook.http import App
from helpers import ACTOR, Seed, asgi

REUSED = "Idempotency key already used with different parameters"


def credit(app: App, s: Seed, headers: dict[str, str] | None = None, **params: Any) -> Any:
    data = {
        "identifier": s.identifier,
        "secret": s.secret,
        "action": "AddCredit",
        "clientid": str(s.client_id),
        "amount": "5",
        "description": "retry",
        **params,
    }
    return asgi(app, data=data, headers=headers)


def balance(book: creditbook.Creditbook, s: Seed) -> int:
    return book.ledger.get_client(str(s.client_id)).balance_cents


def test_same_key_same_parameters_applies_once(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """A retry returns the original response, says so in a header, and applies nothing."""
    first = credit(app, seeded, idempotencykey="k1")
    assert first.json() == {"result": "success", "newbalance": "5.00"}
    assert "idempotent-replayed" not in first.headers
    credit(app, seeded, amount="1")
    again = credit(app, seeded, idempotencykey="k1", responsetype="xml")
    assert b"<newbalance>5.00</newbalance>" in again.body
    assert again.headers["idempotent-replayed"] == "true"
    assert balance(book, seeded) == 600
    assert book.ledger.store.count_credits(seeded.client_id) == 2


def test_header_form(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """The Idempotency-Key header works like the parameter."""
    for _ in range(3):
        response = credit(app, seeded, headers={"Idempotency-Key": "hdr"})
        assert response.json()["newbalance"] == "5.00"
    assert balance(book, seeded) == 500


def test_same_key_other_parameters_is_refused(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """Reusing a key for a different request is a clear error and changes nothing."""
    credit(app, seeded, idempotencykey="k2")
    assert credit(app, seeded, idempotencykey="k2", amount="6").json() == {
        "result": "error",
        "message": REUSED,
    }
    assert balance(book, seeded) == 500


def test_replayed_errors(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """A request that failed replays its failure, even once it would now succeed."""
    first = credit(app, seeded, idempotencykey="k3", type="remove")
    assert first.json()["message"] == "Amount exceeds customer credit balance"
    credit(app, seeded, amount="50")
    again = credit(app, seeded, idempotencykey="k3", type="remove")
    assert again.json()["message"] == "Amount exceeds customer credit balance"
    assert again.headers["idempotent-replayed"] == "true"
    assert balance(book, seeded) == 5000


def test_keys_are_scoped_to_the_credential(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """Two credentials may use the same key independently."""
    ident, secret = book.ledger.add_credential("alice", actor=ACTOR)
    credit(app, seeded, idempotencykey="shared")
    other = asgi(
        app,
        data={
            "identifier": ident,
            "secret": secret,
            "action": "AddCredit",
            "clientid": str(seeded.client_id),
            "amount": "5",
            "description": "retry",
            "idempotencykey": "shared",
        },
    )
    assert other.json()["newbalance"] == "10.00"


def test_keys_expire(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """Keys are kept idempotency_hours (24 by default); after that a key is new again."""
    credit(app, seeded, idempotencykey="old")
    now = app.api.policy.clock()
    app.api.policy.clock = lambda: now + 24 * 3600 + 5
    assert credit(app, seeded, idempotencykey="old").json()["newbalance"] == "10.00"


def test_add_client_is_idempotent(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """AddClient with a key creates one client and returns its id on every retry."""
    data = {
        "identifier": seeded.identifier,
        "secret": seeded.secret,
        "action": "AddClient",
        "firstname": "I",
        "lastname": "D",
        "email": "idem@example.com",
        "idempotencykey": "c1",
    }
    ids = {asgi(app, data=data).json()["clientid"] for _ in range(3)}
    assert len(ids) == 1
    assert book.local_api("GetClients", {})["totalresults"] == 2


def test_local_api_idempotency(book: creditbook.Creditbook, seeded: Seed) -> None:
    """local_api honours idempotencykey too, scoped to the admin username."""
    params = {
        "clientid": seeded.client_id,
        "amount": "2",
        "description": "x",
        "idempotencykey": "L",
    }
    first = book.local_api("AddCredit", params, "alice")
    second = book.local_api("AddCredit", params, "alice")
    assert first == {"result": "success", "newbalance": "2.00"}
    assert second == {"result": "success", "newbalance": "2.00", "replayed": True}
    assert book.local_api("AddCredit", {**params, "amount": "3"}, "alice")["message"] == REUSED
    assert book.local_api("AddCredit", params)["newbalance"] == "4.00"


@pytest.mark.parametrize("threads", [16])
def test_concurrent_duplicates_apply_once(
    book: creditbook.Creditbook, seeded: Seed, database: str, threads: int
) -> None:
    """Many threads (each with its own connection) racing one key apply it exactly once."""
    books = [creditbook.open(database) for _ in range(4)]
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def go(n: int) -> None:
        barrier.wait()
        result = books[n % 4].local_api(
            "AddCredit",
            {
                "clientid": seeded.client_id,
                "amount": "7",
                "description": "race",
                "idempotencykey": "race",
            },
            "alice",
        )
        with lock:
            results.append(result)

    workers = [threading.Thread(target=go, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for b in books:
        b.close()
    assert {r["newbalance"] for r in results} == {"7.00"}
    assert sum(1 for r in results if "replayed" not in r) == 1
    assert balance(book, seeded) == 700
