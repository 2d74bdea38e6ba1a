"""Tamper evidence: hash chains, verify naming the first broken entry, seals, the backfill."""

from __future__ import annotations

import json
from typing import Any

import pytest

import creditbook
from creditbook import chain
from creditbook.audit import verify, verify_seal
from creditbook.cli import main
from helpers import ACTOR, Seed


def credit(book: creditbook.Creditbook, client_id: int, amount: str, text: str, **kw: Any) -> None:
    book.ledger.add_credit(
        clientid=str(client_id), amount=amount, description=text, actor=ACTOR, **kw
    )


def sql(book: creditbook.Creditbook, statement: str, **params: Any) -> None:
    """Run a statement as someone with write access to the database would."""
    store: Any = book.store
    with store._write() as cur:
        store._run(cur, statement, **params)


@pytest.fixture
def ledger(book: creditbook.Creditbook, seeded: Seed) -> tuple[creditbook.Creditbook, int]:
    """A client with eight entries (adds and removes), and a second client with two."""
    cid = seeded.client_id
    for i, (amount, kind) in enumerate(
        [("100", "add"), ("20", "remove"), ("5.55", "add"), ("1", "remove")] * 2
    ):
        credit(book, cid, amount, f"entry {i} <&> ü", type=kind)
    other = book.ledger.add_client(
        firstname="O", lastname="T", email="other@example.com", actor=ACTOR
    ).client_id
    credit(book, other, "7", "x")
    credit(book, other, "3", "y", type="remove")
    return book, cid


def entries(book: creditbook.Creditbook, client_id: int) -> list[Any]:
    return list(book.store.chain_entries(client_id, client_id))


def test_every_entry_carries_its_chain_hash(ledger: tuple[creditbook.Creditbook, int]) -> None:
    """Stored hashes equal chain.entry_hash over each entry and its predecessor (PostgreSQL
    computes them in SQL, SQLite in Python: both agree); a clean ledger verifies."""
    book, cid = ledger
    prev = chain.GENESIS
    rows = entries(book, cid)
    assert len(rows) == 8
    spent = book.store.grants.allocations(cid, 1, 8)
    for e in rows:
        assert e.prev_hash == prev
        moves = [(g, a) for g, _, a in spent.get(e.seq, [])]
        grant = chain.grant_text(e.kind, e.category, e.expires, moves)
        assert (e.kind, bool(grant)) == (
            ("grant", False) if e.amount_cents > 0 else ("removal", True)
        )
        assert e.hash == chain.entry_hash(
            e.client_id,
            e.seq,
            e.date,
            e.amount_cents,
            e.admin_id,
            e.relid,
            e.created_at,
            e.actor,
            e.description,
            prev,
            grant,
        )
        assert e.actor == "test"
        prev = e.hash
    with book.store.ledger_slice(cid, cid) as (heads, _, _):
        assert [h.head_hash for h in heads] == [prev]
    assert verify(book.store).ok


def test_batched_credits_chain_in_order(book: creditbook.Creditbook, seeded: Seed) -> None:
    """Credits committed together (many for one client in one batch) still form one chain."""
    results = book.credit_many(
        [{"clientid": seeded.client_id, "amount": "1", "description": str(i)} for i in range(50)]
    )
    assert {r["result"] for r in results} == {"success"}
    assert verify(book.store).ok


def _fix_balances(book: creditbook.Creditbook, client_id: int, from_seq: int, delta: int) -> None:
    sql(
        book,
        "UPDATE credits SET balance_cents = balance_cents + :delta "
        "WHERE client_id = :client_id AND seq >= :seq",
        delta=delta,
        client_id=client_id,
        seq=from_seq,
    )
    sql(
        book,
        "UPDATE clients SET balance_cents = balance_cents + :delta WHERE id = :client_id",
        delta=delta,
        client_id=client_id,
    )


def _named(book: creditbook.Creditbook, entry_id: int) -> list[str]:
    report = verify(book.store)
    assert not report.ok
    # The balances were "fixed up": only the chain (and the grants' allocations and remaining
    # amounts, which were not) can tell.
    chain_problems = [p for p in report.problems if "hash chain" in p]
    assert not any("balance" in p for p in report.problems if "hash chain" not in p)
    assert f"entry {entry_id} " in chain_problems[0]
    return chain_problems


def test_tampered_amount_is_named(ledger: tuple[creditbook.Creditbook, int]) -> None:
    """An old entry's amount changed, balances fixed up to match: verify names the entry."""
    book, cid = ledger
    target = entries(book, cid)[2]
    sql(book, "UPDATE credits SET amount_cents = amount_cents + 1000 WHERE id = :id", id=target.id)
    _fix_balances(book, cid, target.seq, 1000)
    _named(book, target.id)


def test_tampered_description_is_named(ledger: tuple[creditbook.Creditbook, int]) -> None:
    """An old entry's description changed: verify names the entry."""
    book, cid = ledger
    target = entries(book, cid)[1]
    sql(book, "UPDATE credits SET description = 'refund' WHERE id = :id", id=target.id)
    _named(book, target.id)


def test_deleted_entry_is_named(ledger: tuple[creditbook.Creditbook, int]) -> None:
    """An entry deleted, sequence numbers, counts and balances fixed up: its successor is named."""
    book, cid = ledger
    rows = entries(book, cid)
    gone, successor = rows[3], rows[4]
    sql(book, "DELETE FROM credits WHERE id = :id", id=gone.id)
    # Renumbered in two steps so that no row ever collides with another's number.
    for statement in (
        "UPDATE credits SET seq = -seq WHERE client_id = :c AND seq > :s",
        "UPDATE credits SET seq = -seq - 1 WHERE client_id = :c AND seq < 0",
    ):
        sql(book, statement, c=cid, s=gone.seq)
    sql(book, "UPDATE clients SET entries = entries - 1 WHERE id = :c", c=cid)
    _fix_balances(book, cid, gone.seq, -gone.amount_cents)
    _named(book, successor.id)


def test_reordered_entries_are_named(ledger: tuple[creditbook.Creditbook, int]) -> None:
    """Two entries swapped in order (sequence numbers and running balances fixed): named."""
    book, cid = ledger
    rows = entries(book, cid)
    a, b = rows[1], rows[2]
    before = list(book.store.iter_credits(cid, 0, None))
    sql(book, "UPDATE credits SET seq = -1 WHERE id = :id", id=a.id)
    sql(book, "UPDATE credits SET seq = :s WHERE id = :id", s=a.seq, id=b.id)
    sql(book, "UPDATE credits SET seq = :s WHERE id = :id", s=b.seq, id=a.id)
    running = before[0].balance_cents + b.amount_cents
    sql(book, "UPDATE credits SET balance_cents = :v WHERE id = :id", v=running, id=b.id)
    after_both = before[2].balance_cents
    sql(book, "UPDATE credits SET balance_cents = :v WHERE id = :id", v=after_both, id=a.id)
    problems = _named(book, b.id)
    assert len(problems) == 1  # the other client is intact


def test_removed_last_entry_is_caught_by_the_head(
    ledger: tuple[creditbook.Creditbook, int],
) -> None:
    """The newest entry deleted and everything fixed up but the client's head: reported."""
    book, cid = ledger
    last = entries(book, cid)[-1]
    sql(book, "DELETE FROM credits WHERE id = :id", id=last.id)
    sql(book, "UPDATE clients SET entries = entries - 1 WHERE id = :c", c=cid)
    _fix_balances(book, cid, last.seq, -last.amount_cents)
    report = verify(book.store)
    assert report.problems[-1] == (
        f"client {cid}: hash chain broken after its last entry: the stored head does not match "
        "(entries were removed or rewritten)"
    )
    # The removal's allocations are left behind, and the grant it took from was not fixed up.
    assert all("allocation" in p or "grant #" in p for p in report.problems[:-1])


def test_seal_holds_after_new_entries_and_breaks_on_a_rewrite(
    ledger: tuple[creditbook.Creditbook, int],
    database: str,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A seal verifies, still verifies after new entries, and fails once a sealed entry is
    rewritten, even when the attacker recomputes the whole chain to hide it."""
    book, cid = ledger
    capsys.readouterr()
    assert main(["seal", "--json", "--database", database]) == 0
    sealed = json.loads(capsys.readouterr().out)
    assert sealed["entries"] == 10 and sealed["clients"] == 2
    seal_file = tmp_path / "seal.json"
    seal_file.write_text(json.dumps(sealed))
    assert verify_seal(book.store, sealed["digest"]) == []
    credit(book, cid, "9", "after the seal")
    assert main(["verify", "--seal", str(seal_file), "--database", database]) == 0
    # Rewrite a sealed entry and recompute every hash after it, as a careful forger would.
    target = entries(book, cid)[1]
    sql(book, "UPDATE credits SET description = 'forged' WHERE id = :id", id=target.id)
    store: Any = book.store
    store.backfill_chain()
    assert verify(book.store).ok  # the chain alone cannot tell...
    problems = verify_seal(book.store, sealed["digest"])
    assert problems and f"client {cid}: entry #" in problems[0]  # ...the seal can
    capsys.readouterr()
    assert main(["verify", "--seal", sealed["digest"], "--database", database]) == 1
    assert "has changed since" in capsys.readouterr().out
    assert verify_seal(book.store, "0" * 64) == [
        f"no seal with digest {'0' * 64} is recorded in this store"
    ]


def test_altered_seal_record_is_caught(ledger: tuple[creditbook.Creditbook, int]) -> None:
    """Rewriting the stored seal heads too does not help: they no longer give the digest."""
    book, cid = ledger
    seal, _ = book.store.seal(book.ledger.now())
    target = entries(book, cid)[-1]
    sql(book, "UPDATE credits SET description = 'forged' WHERE id = :id", id=target.id)
    store: Any = book.store
    store.backfill_chain()
    new_head = entries(book, cid)[-1].hash
    sql(
        book,
        "UPDATE seal_heads SET hash = :h WHERE seal_id = :s AND client_id = :c",
        h=new_head,
        s=seal.id,
        c=cid,
    )
    assert verify_seal(book.store, seal.digest)[0].startswith("the heads recorded for the seal")


def test_backfill_computes_missing_chains(ledger: tuple[creditbook.Creditbook, int]) -> None:
    """Entries without hashes (a ledger from before the chain) get them from the backfill."""
    book, _ = ledger
    sql(book, "UPDATE credits SET prev_hash = '', hash = ''")
    sql(book, "UPDATE clients SET head_hash = ''")
    assert not verify(book.store).ok
    store: Any = book.store
    assert store.backfill_chain() == 10
    assert verify(book.store).ok
    assert store.backfill_chain() == 10  # again: the same hashes
    assert verify(book.store).ok


def test_verify_progress_bar(
    ledger: tuple[creditbook.Creditbook, int], database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify --progress draws a bar on stderr and reports intact chains."""
    capsys.readouterr()
    assert main(["verify", "--progress", "--database", database]) == 0
    out, err = capsys.readouterr()
    assert "verify [" in err and "every chain intact" in out
