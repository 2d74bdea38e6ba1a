"""A credit's activity line is found through its entry; other lines through the client index."""

from __future__ import annotations

import io
import json
from typing import Any

import creditbook
from creditbook.exports import export
from creditbook.model import Activity, Actor
from creditbook.store import queries as Q
from helpers import ACTOR, Seed, query_plan

#: What a ledger written before migration 12 holds: a credit's line indexed by client.
OLD_LINE = """
INSERT INTO activity (at, actor, admin_id, client_id, ip, action, detail)
VALUES (:at, 'old', 0, :client_id, '10.0.0.1', 'addcredit', 'Added credit 1.00: before')
"""


def sql(book: creditbook.Creditbook, statement: str, **params: Any) -> None:
    """Run a statement as an older release would have."""
    store: Any = book.store
    with store._write() as cur:
        store._run(cur, statement, **params)


def history(book: creditbook.Creditbook, seeded: Seed) -> tuple[int, int]:
    """Lines of two clients interleaved: credits, removals, a batch, an old-style line, others."""
    cid = seeded.client_id
    other = book.ledger.add_client(
        firstname="Olga", lastname="Other", email="olga@example.com", actor=ACTOR
    ).client_id
    sql(book, OLD_LINE, at=book.ledger.now(), client_id=cid)
    at_desk = Actor("desk", admin_id=seeded.admin_id, ip="192.0.2.7")
    for i in range(6):
        who = at_desk if i % 2 else ACTOR
        for client in (cid, other):
            book.ledger.add_credit(
                clientid=str(client), amount=f"{i + 1}.00", description=f"c{i}", actor=who
            )
    book.ledger.add_credit(
        clientid=str(cid), amount="2.00", description="back", type="remove", actor=ACTOR
    )
    book.ledger.credit_many(
        [{"clientid": str(c), "amount": "0.50", "description": "many"} for c in (other, cid, cid)],
        actor=ACTOR,
    )
    sql(book, OLD_LINE, at=book.ledger.now(), client_id=cid)
    assert book.local_api("AddCredit", {"clientid": cid, "amount": "-1"})["result"] == "error"
    return cid, other


def everything(book: creditbook.Creditbook) -> list[Activity]:
    """Every line, newest first."""
    return book.ledger.activity(None, 10_000)


def test_a_clients_lines_are_its_lines_of_the_whole_log(
    book: creditbook.Creditbook, seeded: Seed
) -> None:
    """Per client: exactly the whole log's lines of that client, newest first, any limit."""
    cid, other = history(book, seeded)
    for client in (cid, other):
        mine = [a for a in everything(book) if a.client_id == client]
        assert book.ledger.activity(client, 10_000) == mine
        assert book.ledger.activity(client, 3) == mine[:3]
    lines = book.ledger.activity(cid, 100)
    assert [a.action for a in lines].count("addcredit") == 6 + 1 + 2 + 2  # with the old two
    assert lines[0].detail == "Added credit 1.00: before" and lines[-1].action == "addclient"
    assert any(a.ip == "192.0.2.7" and a.admin_id == seeded.admin_id for a in lines)


def test_console_pages_and_exports_of_a_client(book: creditbook.Creditbook, seeded: Seed) -> None:
    """The console's pages (with every filter) and the export give the same lines."""
    cid, _ = history(book, seeded)
    mine = [a for a in everything(book) if a.client_id == cid]
    store: Any = book.store
    for admin_id in (0, seeded.admin_id):
        want = [a for a in mine if not admin_id or a.admin_id == admin_id]
        got: list[Activity] = []
        before = 2**62
        while page := store.activity_page(
            client_id=cid, admin_id=admin_id, at_from="", at_to="9", before=before, limit=4
        ):
            got += page
            before = page[-1].id
        assert got == want
    middle = mine[len(mine) // 2].at
    got = store.activity_page(
        client_id=cid, admin_id=0, at_from=middle, at_to="9", before=2**62, limit=100
    )
    assert got == [a for a in mine if a.at >= middle]
    out = io.StringIO()
    assert export(store, "activity", out, "jsonl", client_id=cid) == len(mine)
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [
        a.id for a in reversed(mine)
    ]


def test_each_entry_records_its_line(book: creditbook.Creditbook, seeded: Seed) -> None:
    """An entry's ``activity_id`` names the line written with it (same client, amount)."""
    cid, _ = history(book, seeded)
    store: Any = book.store
    with store._read() as cur:
        rows = store._run(
            cur,
            "SELECT c.client_id, c.amount_cents, a.client_id, a.detail, a.via_entry "
            "FROM credits c JOIN activity a ON a.id = c.activity_id ORDER BY c.id",
        ).fetchall()
        entries = store._run(cur, "SELECT COUNT(*) FROM credits").fetchone()[0]
    assert len(rows) == entries == 6 * 2 + 1 + 3
    for client, cents, line_client, detail, via_entry in rows:
        assert (client, via_entry) == (line_client, 1)
        assert detail.split(":")[0].endswith(f"{abs(cents) // 100}.{abs(cents) % 100:02d}")


def test_credits_lines_stay_out_of_the_client_index(sqlite_database: str) -> None:
    """SQLite: per-client reads use indexes only; the client index holds no credit's line."""
    book = creditbook.open(sqlite_database)
    try:
        client = book.ledger.add_client(
            firstname="A", lastname="B", email="a@example.com", actor=ACTOR
        ).client_id
        for _ in range(3):
            book.ledger.add_credit(clientid=str(client), amount="1", description="d", actor=ACTOR)
        store: Any = book.store
        with store._read() as cur:
            indexed = store._run(
                cur,
                "SELECT COUNT(*) FROM activity INDEXED BY activity_by_client "
                "WHERE client_id = :c AND via_entry = 0",
                c=client,
            ).fetchone()[0]
        details = query_plan(store, Q.ACTIVITY_LIST_CLIENT, client_id=client, limit=5)
        assert indexed == 1  # the client's creation alone
        assert "SCAN activity" not in details and "SCAN a " not in details, details
        assert "activity_by_client" in details and "credits_by_client_seq" in details, details
    finally:
        book.close()


def test_a_copy_lists_the_same_lines(
    book: creditbook.Creditbook, seeded: Seed, tmp_path: object
) -> None:
    """Backup, restore and copy carry the link from entries to lines: a copy lists the same."""
    from creditbook.backup import copy

    cid, other = history(book, seeded)
    target = f"sqlite:///{tmp_path}/copy.db"
    assert copy(book.store.url, target).ok
    with creditbook.open(target) as copied:
        for client in (cid, other):
            assert copied.ledger.activity(client, 100) == book.ledger.activity(client, 100)
