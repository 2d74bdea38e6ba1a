"""Credit grants: categories, expiry dates, the order credit is spent in, expiry, reversals,
low-balance alerts, on both stores and through the API, the CLI and the ledger."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

import creditbook
from creditbook import errors, expiry
from creditbook.audit import verify
from creditbook.staff import Staff
from helpers import ACTOR, Seed


def on(book: creditbook.Creditbook, day: str) -> None:
    """Move the ledger's clock to noon of a day (the injectable clock)."""
    book.ledger.clock = lambda tz: dt.datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=tz)


def add(book: creditbook.Creditbook, client: int, amount: str, **kw: Any) -> int:
    kw.setdefault("description", "grant")
    return book.ledger.add_credit(
        clientid=str(client), amount=amount, actor=ACTOR, **kw
    ).balance_cents


def remove(book: creditbook.Creditbook, client: int, amount: str, **kw: Any) -> int:
    return add(book, client, amount, type="remove", **kw)


def grants(book: creditbook.Creditbook, client: int) -> list[tuple[str, str, int]]:
    """(category, expires, remaining) of the open grants, in spending order."""
    return [(g.category, g.expires, g.remaining_cents) for g in book.ledger.open_grants(client)]


def entries(book: creditbook.Creditbook, client: int) -> list[Any]:
    _, _, found = book.ledger.get_credits(str(client))
    return list(book.ledger.with_allocations(client, found))


def new_client(book: creditbook.Creditbook, name: str = "x", currency: str = "USD") -> int:
    return book.ledger.add_client(
        firstname=name, lastname="G", email=f"{name}@grants.example", currency=currency,
        actor=ACTOR,
    ).client_id  # fmt: skip


@pytest.fixture
def client(book: creditbook.Creditbook) -> int:
    on(book, "2026-01-10")
    return new_client(book)


def test_spending_order_soonest_expiry_first_never_last_oldest_first(
    book: creditbook.Creditbook, client: int
) -> None:
    """A removal takes the soonest expiry first, credit that never expires last, the oldest
    first among equals; each removal records what it took from which grant."""
    add(book, client, "10", description="paid A")
    add(book, client, "5", category="promotional", expires="2026-03-01")
    add(book, client, "7", category="goodwill", expires="2026-02-01")
    add(book, client, "3", category="refund", expires="2026-02-01")
    add(book, client, "4", description="paid B")
    assert grants(book, client) == [
        ("goodwill", "2026-02-01", 700),
        ("refund", "2026-02-01", 300),
        ("promotional", "2026-03-01", 500),
        ("paid", "", 1000),
        ("paid", "", 400),
    ]
    assert remove(book, client, "12") == 1700
    assert grants(book, client) == [
        ("promotional", "2026-03-01", 300),
        ("paid", "", 1000),
        ("paid", "", 400),
    ]
    assert remove(book, client, "4") == 1300
    assert grants(book, client) == [("paid", "", 900), ("paid", "", 400)]
    found = entries(book, client)
    ids = [e.id for e in found]
    assert found[5].spent == ((ids[1], 200), (ids[2], 700), (ids[3], 300))  # by grant
    assert found[6].spent == ((ids[0], 100), (ids[1], 300))
    assert verify(book.store).ok


def test_category_defaults_and_refusals(book: creditbook.Creditbook, client: int) -> None:
    """Promotional credit expires 90 days after its date unless given a date; unknown
    categories, dates not after the entry's and grant fields on a removal are refused."""
    add(book, client, "5", category="promotional")
    add(book, client, "5", category="Promotional", date="2026-01-01")
    assert {g[1] for g in grants(book, client)} == {"2026-04-10", "2026-04-01"}
    with pytest.raises(errors.UnknownCategory, match="use paid, goodwill, promotional, refund"):
        add(book, client, "1", category="bonus")
    with pytest.raises(errors.InvalidExpiry):
        add(book, client, "1", expires="2026-01-10")
    with pytest.raises(errors.InvalidExpiry):
        add(book, client, "1", expires="2026-02-30")
    with pytest.raises(errors.ValidationError, match="added credit only"):
        remove(book, client, "1", category="promotional")
    with pytest.raises(errors.PaidExpiryUnconfirmed):
        book.ledger.set_category("paid", "30", actor=ACTOR)
    book.ledger.set_category("referral", "14", actor=ACTOR)
    add(book, client, "2", category="referral")
    assert ("referral", "2026-01-24", 200) in grants(book, client)
    with pytest.raises(errors.ValidationError, match="built in or used"):
        book.ledger.remove_category("referral", actor=ACTOR)
    book.ledger.set_category("paid", "30", actor=ACTOR, confirm_paid=True)
    add(book, client, "1")
    assert ("paid", "2026-02-09", 100) in grants(book, client)
    assert book.ledger.client_categories(book.ledger.get_client(str(client))) == {
        "paid": 100,
        "promotional": 1000,
        "referral": 200,
    }


def test_expiry_runs_once_and_expired_credit_is_never_spent(
    book: creditbook.Creditbook, client: int
) -> None:
    """At the end of its expiry day what remains of a grant expires: one entry by
    system:expiry, dated the expiry date, naming the category and the grant; a second run
    changes nothing; a removal before the run does not spend it (it expires it first)."""
    add(book, client, "10", category="promotional", expires="2026-01-20")
    add(book, client, "4")
    remove(book, client, "3")
    on(book, "2026-01-20")  # the last day it can be spent
    dry = expiry.run(book.ledger, dry_run=True)
    assert (dry.grants, dry.cents) == (0, 0)
    on(book, "2026-01-21")
    dry = expiry.run(book.ledger, dry_run=True)
    assert (dry.grants, dry.clients, dry.cents) == (1, 1, 700)
    assert book.ledger.get_client(str(client)).balance_cents == 1100  # the dry run changed nothing
    with pytest.raises(errors.InsufficientCredit):
        remove(book, client, "5")  # only the 4.00 of paid credit can be spent now
    report = expiry.run(book.ledger)
    assert (report.grants, report.clients, report.cents) == (1, 1, 700)
    assert expiry.run(book.ledger).grants == 0
    last = entries(book, client)[-1]
    assert (last.kind, last.amount_cents, last.date, last.category) == (
        "expiry",
        -700,
        "2026-01-20",
        "promotional",
    )
    assert last.description.startswith("Expired: promotional credit of 2026-01-10 (entry #")
    assert last.spent == ((entries(book, client)[0].id, 700),)
    assert book.ledger.get_client(str(client)).balance_cents == 400
    assert verify(book.store).ok


def test_a_removal_after_the_expiry_day_expires_first(
    book: creditbook.Creditbook, client: int
) -> None:
    """Before the run has caught up, a removal expires the due grant (its own entry) and
    spends only what is still valid."""
    add(book, client, "10", category="promotional", expires="2026-01-15")
    add(book, client, "4")
    on(book, "2026-02-01")
    assert remove(book, client, "1") == 300
    kinds = [(e.kind, e.amount_cents) for e in entries(book, client)]
    assert kinds[-2:] == [("expiry", -1000), ("removal", -100)]
    assert expiry.run(book.ledger).grants == 0
    assert verify(book.store).ok


def test_reversals_give_back_and_take_back(book: creditbook.Creditbook, client: int) -> None:
    """A removal's reversal gives the amounts back to their grants with their expiry dates
    (one already past it expires again at once); a grant's takes back what remains of it;
    expiries and restores are not reversed."""
    staff = Staff(book.ledger)
    add(book, client, "5", category="promotional", expires="2026-01-31")
    add(book, client, "10")
    remove(book, client, "8")  # 5.00 promotional, 3.00 paid
    removal = entries(book, client)[-1].id
    on(book, "2026-02-05")  # the promotional grant is past its day
    assert staff.reverse_credit(removal, reason="mistake", actor=ACTOR) == 1000
    found = entries(book, client)
    assert [(e.kind, e.amount_cents) for e in found[-2:]] == [("restore", 800), ("expiry", -500)]
    assert found[-2].spent == ((found[0].id, -500), (found[1].id, -300))
    assert grants(book, client) == [("paid", "", 1000)]
    with pytest.raises(errors.NotReversible):
        staff.reverse_credit(found[-1].id, reason="x", actor=ACTOR)
    with pytest.raises(errors.NotReversible):
        staff.reverse_credit(found[-2].id, reason="x", actor=ACTOR)
    with pytest.raises(errors.AlreadyReversed):
        staff.reverse_credit(removal, reason="x", actor=ACTOR)
    remove(book, client, "4")
    assert staff.reverse_credit(found[1].id, reason="wrong client", actor=ACTOR) == 0
    assert entries(book, client)[-1].amount_cents == -600  # what remained of the 10.00
    with pytest.raises(errors.AlreadyReversed):
        staff.reverse_credit(found[1].id, reason="x", actor=ACTOR)
    with pytest.raises(errors.NothingToTakeBack):
        staff.reverse_credit(found[0].id, reason="x", actor=ACTOR)  # expired: nothing left
    assert verify(book.store).ok


def events(book: creditbook.Creditbook, client: int) -> list[tuple[str, str]]:
    store: Any = book.store
    with store._read() as cur:
        rows = store._run(
            cur, "SELECT type, data FROM events WHERE client_id = :c ORDER BY id", c=client
        ).fetchall()
    return [(r[0], r[1]) for r in rows if r[0] != "client.created"]


def test_low_balance_alerts_once_per_crossing(book: creditbook.Creditbook, client: int) -> None:
    """balance.low when a change takes the balance from at or above the threshold to below
    it, balance.depleted at exactly zero, balance.recovered back at or above it: one event per
    crossing, expiry included; a client's own threshold overrides its currency's."""
    book.store.add_endpoint("http://127.0.0.1:9/", ("*",), "", ACTOR, "2026-01-01T00:00:00Z")
    book.ledger.set_threshold(currency="USD", below="10", actor=ACTOR)
    other = new_client(book, "other")
    assert book.store.get_client(other) is not None
    add(book, client, "20")  # from 0 (below) to 20: recovered
    remove(book, client, "5")  # 15: nothing
    remove(book, client, "6")  # 9: low
    remove(book, client, "1")  # 8: nothing
    add(book, client, "5", category="promotional", expires="2026-01-31")  # 13: recovered
    on(book, "2026-02-01")
    expiry.run(book.ledger)  # 8: low (expiry counts as a change)
    remove(book, client, "8")  # 0: depleted
    kinds = [t for t, _ in events(book, client) if t.startswith("balance.")]
    assert kinds == ["balance.recovered", "balance.low", "balance.recovered", "balance.low",
                     "balance.depleted"]  # fmt: skip
    data = json.loads(next(d for t, d in events(book, client) if t == "balance.low"))
    assert data == {"threshold": "10.00", "previous_balance": "15.00"}
    book.ledger.set_threshold(clientid=str(other), currency="USD", below="2", actor=ACTOR)
    add(book, other, "3")
    remove(book, other, "2")  # 1.00: below its own 2.00, not the currency's 10.00 crossing
    assert [t for t, _ in events(book, other) if t.startswith("balance.")] == [
        "balance.recovered",
        "balance.low",
    ]
    assert [t.client_id for t in book.ledger.thresholds()] == [0, other]
    with pytest.raises(errors.ValidationError, match="keeps its balance in USD"):
        book.ledger.set_threshold(clientid=str(other), currency="EUR", below="1", actor=ACTOR)
    book.ledger.remove_threshold(clientid=str(other), currency="USD", actor=ACTOR)
    with pytest.raises(errors.NotFound):
        book.ledger.remove_threshold(clientid=str(other), currency="USD", actor=ACTOR)
    console: Any = book.store
    _, below = console.client_page("id", None, 10, "", "below")
    assert {c.id for c in below} == {client, other}


def test_expiring_notices_once_per_grant(book: creditbook.Creditbook, client: int) -> None:
    """credit.expiring announces a grant the configured days before, once."""
    book.store.add_endpoint("http://127.0.0.1:9/", ("*",), "", ACTOR, "2026-01-01T00:00:00Z")
    add(book, client, "5", category="promotional", expires="2026-01-20")
    add(book, client, "5", category="promotional", expires="2026-03-20")
    assert expiry.run(book.ledger, notice_days=7).notices == 0
    on(book, "2026-01-13")
    assert expiry.run(book.ledger, notice_days=7).notices == 1
    assert expiry.run(book.ledger, notice_days=7).notices == 0
    data = json.loads(next(d for t, d in events(book, client) if t == "credit.expiring"))
    assert (data["expires"], data["remaining"], data["category"]) == (
        "2026-01-20",
        "5.00",
        "promotional",
    )


def test_verify_catches_a_tampered_allocation_or_remaining(
    book: creditbook.Creditbook, client: int
) -> None:
    """The entry's hash covers its allocations; each grant's remaining amount is replayed."""
    add(book, client, "5", category="promotional", expires="2026-03-01")
    add(book, client, "5")
    remove(book, client, "6")
    store: Any = book.store
    with store._write() as cur:
        store._run(cur, "UPDATE allocations SET amount = 4 * 100 WHERE amount = 500")
        store._run(cur, "UPDATE allocations SET amount = 2 * 100 WHERE amount = 100")
        store._run(cur, "UPDATE credits SET remaining = 100 WHERE category = 'promotional'")
        store._run(cur, "UPDATE credits SET remaining = 300 WHERE category = 'paid'")
    problems = verify(book.store).problems
    assert any("hash chain broken" in p and "the entry was altered" in p for p in problems)
    with store._write() as cur:
        store._run(cur, "UPDATE allocations SET amount = 5 * 100 WHERE amount = 400")
        store._run(cur, "UPDATE allocations SET amount = 1 * 100 WHERE amount = 200")
    assert verify(book.store).problems == [
        f"client {client}: grant #1 has 1.00 left but its entries leave 0.00",
        f"client {client}: grant #2 has 3.00 left but its entries leave 4.00",
    ]


def test_api_extensions(book: creditbook.Creditbook, seeded: Seed) -> None:
    """AddCredit takes category and expires (the response is WHMCS's); GetCredits and
    GetClientsDetails carry the extensions; refusals are one line in the envelope."""
    call = book.local_api
    cid = seeded.client_id
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    added = call("AddCredit", {"clientid": cid, "amount": "5", "description": "promo",
                               "category": "promotional", "expires": later}, "alice")  # fmt: skip
    assert added == {"result": "success", "newbalance": "5.00"}
    call("AddCredit", {"clientid": cid, "amount": "7", "description": "paid"}, "alice")
    call("AddCredit", {"clientid": cid, "amount": "6", "description": "use", "type": "remove"})
    credits = call("GetCredits", {"clientid": cid})["credits"]["credit"]
    assert (credits[0]["category"], credits[0]["expires"], credits[0]["remaining"]) == (
        "promotional",
        later,
        "0.00",
    )
    assert credits[2]["spent"] == [
        {"id": credits[0]["id"], "amount": "5.00"},
        {"id": credits[1]["id"], "amount": "1.00"},
    ]
    details = call("GetClientsDetails", {"clientid": cid})
    assert (details["credit"], details["credit_paid"]) == ("6.00", "6.00")
    assert details["client"]["next_expiry_date"] == "" and details["next_expiry_amount"] == "0.00"
    call("AddCredit", {"clientid": cid, "amount": "2", "description": "gw",
                       "category": "goodwill", "expires": later})  # fmt: skip
    details = call("GetClientsDetails", {"clientid": cid})
    assert (details["credit_goodwill"], details["next_expiry_date"]) == ("2.00", later)
    assert details["next_expiry_amount"] == "2.00"
    bad = call("AddCredit", {"clientid": cid, "amount": "1", "description": "x",
                             "category": "nope"})  # fmt: skip
    assert bad["result"] == "error" and bad["message"].startswith("Unknown credit category")
    bad = call("AddCredit", {"clientid": cid, "amount": "1", "description": "x",
                             "expires": "2020-01-01"})  # fmt: skip
    assert bad == {
        "result": "error",
        "message": "Expiry date must be a YYYY-MM-DD date after the entry's date",
    }


def test_credit_many_and_bulk_take_category_and_expiry_per_row(
    book: creditbook.Creditbook, client: int
) -> None:
    """credit_many and bulk credit take category and expires per row, in order."""
    from creditbook.bulk import Bulk

    results = book.credit_many(
        [
            {
                "clientid": str(client),
                "amount": "5",
                "description": "a",
                "category": "goodwill",
                "expires": "2026-05-01",
            },
            {"clientid": str(client), "amount": "3", "description": "b"},
            {"clientid": str(client), "amount": "2", "description": "c", "type": "remove"},
            {"clientid": str(client), "amount": "1", "description": "d", "category": "nope"},
        ],  # fmt: skip
        admin_username=None,
    )
    assert [r.get("newbalance") for r in results[:3]] == ["5.00", "8.00", "6.00"]
    assert results[3]["message"].startswith("Unknown credit category")
    assert grants(book, client) == [("goodwill", "2026-05-01", 300), ("paid", "", 300)]
    bulks = Bulk(book.ledger, book.store.bulk)
    bulk = bulks.read(
        f"Client ID,Amount,Description,Category,Expiry date\n"
        f"{client},4.00,promo,promotional,2026-06-01\n{client},1.00,paid,,\n".encode(),
        actor=ACTOR,
    )
    assert [r.error for r in bulk.rows] == ["", ""]
    assert [o for _, o, _ in bulks.apply(bulk)] == ["applied", "applied"]
    assert ("promotional", "2026-06-01", 400) in grants(book, client)
    assert verify(book.store).ok


def test_balances_by_category_as_of_a_day(book: creditbook.Creditbook, client: int) -> None:
    """balances --asof --by category: each balance split by category at the end of a day,
    from either side of the date index; the split adds up to the as-of balance."""
    add(book, client, "10", date="2026-01-01")
    add(book, client, "5", category="promotional", expires="2026-01-25", date="2026-01-02")
    remove(book, client, "7", date="2026-01-10")
    on(book, "2026-02-01")
    expiry.run(book.ledger)
    add(book, client, "2", category="goodwill", date="2026-02-01")
    split = {
        day: dict(
            next(s for b, s in book.ledger.balances_by_category(day) if b.client_id == client)
        )
        for day in ("2026-01-01", "2026-01-05", "2026-01-10", "2026-01-25", "2026-02-01")
    }
    assert split == {
        "2026-01-01": {"paid": 1000},
        "2026-01-05": {"paid": 1000, "promotional": 500},
        "2026-01-10": {"paid": 800},
        "2026-01-25": {"paid": 800},
        "2026-02-01": {"paid": 800, "goodwill": 200},
    }
    for day in split:
        plain = {b.client_id: b.balance_cents for b in book.ledger.balances_asof(day)}
        assert sum(split[day].values()) == plain[client]


def test_migration_makes_old_credit_paid_grants_spent_oldest_first(
    database: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A ledger written before grants: each addition becomes paid credit that never expires,
    with what remains of it as removals took the oldest first (a log that went below zero made
    up first); verify passes; the next removal spends the oldest credit left."""
    from creditbook import chain
    from creditbook.store import postgres, sql, sqlite

    if not database.startswith("sqlite"):  # a blank database, not the migrated template
        import psycopg

        server = request.getfixturevalue("postgres")
        name = f"old_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        database = server.url(name)

    old = [m for m in sql.migrations("sqlite" if database.startswith("sqlite") else "postgres")
           if m[0] < 16]  # fmt: skip
    monkeypatch.setattr(sqlite, "migrations", lambda dialect: old)
    monkeypatch.setattr(postgres, "migrations", lambda dialect: old)
    histories = {1: [1000, -300, 500, -900, 200], 2: [-400, 400, 250]}
    with creditbook.open(database) as book:
        store: Any = book.store
        with store._write() as cur:
            for cid, amounts in histories.items():
                store._run(
                    cur,
                    "INSERT INTO clients (id, firstname, lastname, email, email_key, created_at)"
                    " VALUES (:id, 'O', 'Ld', :e, :e, '2025-01-01T00:00:00Z')",
                    id=cid, e=f"old{cid}@example.com",
                )  # fmt: skip
                head, balance = chain.GENESIS, 0
                for seq, cents in enumerate(amounts, 1):
                    balance += cents
                    at = f"2025-01-0{seq}T00:00:00Z"
                    digest = chain.entry_hash(cid, seq, at[:10], cents, 0, 0, at, "old", "o", head)
                    store._run(
                        cur,
                        "INSERT INTO credits (client_id, seq, admin_id, date, description,"
                        " amount_cents, balance_cents, relid, created_at, actor, prev_hash, hash)"
                        " VALUES (:c, :s, 0, :d, 'o', :a, :b, 0, :at, 'old', :p, :h)",
                        c=cid, s=seq, d=at[:10], a=cents, b=balance, at=at, p=head, h=digest,
                    )  # fmt: skip
                    head = digest
                store._run(
                    cur,
                    "UPDATE clients SET balance_cents = :b, entries = :n, head_hash = :h,"
                    " last_date = '2025-01-05' WHERE id = :c",
                    b=balance, n=len(amounts), h=head, c=cid,
                )  # fmt: skip
    monkeypatch.undo()
    with creditbook.open(database) as book:
        assert grants(book, 1) == [("paid", "", 300), ("paid", "", 200)]
        assert grants(book, 2) == [("paid", "", 250)]
        assert verify(book.store).ok
        on(book, "2026-01-10")
        remove(book, 1, "4")
        assert grants(book, 1) == [("paid", "", 100)]
        assert entries(book, 1)[-1].spent == (
            (entries(book, 1)[2].id, 300),
            (entries(book, 1)[4].id, 100),
        )
        assert verify(book.store).ok


def test_cli_grants_expire_alerts_categories_and_balances(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``credit add --category --expires``, ``expire [--dry-run] [--json]``, ``alert``,
    ``category`` and ``balances --by category`` from the command line."""
    from creditbook.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--database", database])
        out, err = capsys.readouterr()
        return code, out, err

    run("client", "add", "--firstname", "C", "--lastname", "L", "--email", "c@l.example")
    added = run("credit", "add", "1", "10", "--description", "promo", "--category",
                "promotional", "--expires", "2026-01-20", "--date", "2026-01-01")  # fmt: skip
    assert added[1] == "New balance: 10.00\n"
    run("credit", "add", "1", "5", "--description", "paid", "--date", "2026-01-02")
    code, _, err = run("credit", "add", "1", "1", "--description", "x", "--category", "bonus")
    assert code == 1 and err.startswith("error: Unknown credit category 'bonus'")
    code, out, _ = run("expire", "--dry-run", "--today", "2026-01-21")
    assert "1 grant of 1 client would expire (10.00 in all) as of 2026-01-21" in out
    code, out, _ = run("expire", "--today", "2026-01-21", "--json")
    assert json.loads(out)["grants"] == 1 and json.loads(out)["amount"] == "10.00"
    assert json.loads(run("expire", "--today", "2026-01-21", "--json")[1])["grants"] == 0
    _, out, _ = run("credits", "1")
    assert "Expired: promotional credit of 2026-01-01" in out and "from #1 10.00" in out
    assert run("alert", "set", "--currency", "usd", "--below", "7.5")[1] == (
        "Alert set: USD clients below 7.50 USD\n"
    )
    assert run("alert", "set", "--client", "1", "--currency", "USD", "--below", "x")[0] == 1
    assert json.loads(run("alert", "list", "--json")[1]) == [
        {"client": None, "name": "", "currency": "USD", "below": "7.50"}
    ]
    assert run("alert", "remove", "--currency", "USD")[1] == "Alert removed\n"
    assert run("category", "set", "referral", "--expires-days", "30")[0] == 0
    code, _, err = run("category", "set", "paid", "--expires-days", "30")
    assert code == 1 and "confirm" in err
    names = [c["name"] for c in json.loads(run("category", "list", "--json")[1])]
    assert names == ["paid", "goodwill", "promotional", "refund", "referral"]
    _, out, _ = run("balances", "--asof", "2026-01-10", "--by", "category", "--format", "csv")
    assert out.splitlines()[0].endswith("balance,paid,goodwill,promotional,refund,referral")
    assert out.splitlines()[1].endswith("15.00,5.00,0.00,10.00,0.00,0.00")
    _, out, _ = run("balances", "--asof", "2026-01-21", "--by", "category")
    assert "Total USD paid: 5.00" in out and "promotional" not in out.split("Total")[0]
