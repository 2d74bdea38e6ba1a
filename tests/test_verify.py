"""creditbook verify: recompute balances and running balances; non-zero exit on drift."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest

import creditbook
from creditbook import audit
from creditbook.audit import verify
from creditbook.cli import main
from helpers import ACTOR, Seed


def tamper(book: creditbook.Creditbook, sql: str) -> None:
    with book.store._write() as cur:  # type: ignore[attr-defined]
        cur.execute(sql)


def test_clean_ledger(
    book: creditbook.Creditbook, seeded: Seed, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ledger written through the API verifies clean, with a progress bar on request."""
    for amount in ("5", "2.5"):
        book.ledger.add_credit(
            clientid=str(seeded.client_id), amount=amount, description="x", actor=ACTOR
        )
    progress = io.StringIO()
    report = verify(book.store, progress=progress)
    assert report.ok and report.entries == 2 and report.clients == 1
    assert "100.0%" in progress.getvalue()
    assert main(["verify", "--database", database]) == 0
    assert "no drift" in capsys.readouterr().out


def test_balance_drift_is_reported(
    book: creditbook.Creditbook, seeded: Seed, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A balance that differs from its entries is drift: exit code 1 and a clear line."""
    book.ledger.add_credit(clientid=str(seeded.client_id), amount="5", description="x", actor=ACTOR)
    tamper(book, "UPDATE clients SET balance_cents = balance_cents + 1")
    assert main(["verify", "--database", database]) == 1
    out = capsys.readouterr().out
    assert f"client {seeded.client_id}: balance 5.01 but entries sum to 5.00" in out


def test_running_balance_drift_is_reported(
    book: creditbook.Creditbook, seeded: Seed, database: str
) -> None:
    """An entry whose running balance is wrong is reported even when totals agree."""
    for amount in ("5", "1"):
        book.ledger.add_credit(
            clientid=str(seeded.client_id), amount=amount, description="x", actor=ACTOR
        )
    tamper(book, "UPDATE credits SET balance_cents = 0 WHERE amount_cents = 500")
    report = verify(book.store)
    assert report.problems == [
        f"client {seeded.client_id}: 1 entries carry a wrong running balance or sequence number"
    ]
    assert main(["verify", "--json", "--database", database]) == 1


def test_entry_counter_drift_is_reported(book: creditbook.Creditbook, seeded: Seed) -> None:
    """A client whose entry counter disagrees with its entries is reported."""
    book.ledger.add_credit(clientid=str(seeded.client_id), amount="5", description="x", actor=ACTOR)
    tamper(book, "UPDATE clients SET entries = 7")
    assert verify(book.store).problems == [
        f"client {seeded.client_id}: 1 entries but the client counts 7"
    ]


def test_a_credit_written_during_verify_is_no_false_alarm(
    book: creditbook.Creditbook, seeded: Seed, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client's figures and its entries are read from one snapshot: a credit that lands
    between the two reads (a running service) is in neither, so nothing looks rewritten."""
    book.ledger.add_credit(clientid=str(seeded.client_id), amount="5", description="x", actor=ACTOR)
    original = book.store._snapshot  # type: ignore[attr-defined]
    other = creditbook.open(database)
    queries: list[str] = []

    @contextmanager
    def snapshot() -> Iterator[Callable[..., Iterator[Any]]]:
        with original() as stream:

            def interleaved(sql: str, **params: Any) -> Iterator[Any]:
                queries.append(sql)
                if len(queries) == 2:  # the figures are read; the entries are next
                    other.ledger.add_credit(
                        clientid=str(seeded.client_id), amount="1", description="y", actor=ACTOR
                    )
                return stream(sql, **params)

            yield interleaved

    monkeypatch.setattr(book.store, "_snapshot", snapshot)
    try:
        report = verify(book.store)
    finally:
        other.close()
    assert len(queries) == 3  # the figures, the entries, the allocations
    assert report.ok, report.problems
    assert report.entries == 1
    monkeypatch.undo()
    assert verify(book.store).entries == 2


def test_entries_of_a_deleted_client_are_reported(
    book: creditbook.Creditbook, seeded: Seed, database: str
) -> None:
    """Removing a client row (constraints switched off) leaves entries that belong to no one."""
    book.ledger.add_credit(clientid=str(seeded.client_id), amount="5", description="x", actor=ACTOR)
    if database.startswith("sqlite"):
        with closing(sqlite3.connect(database.removeprefix("sqlite:///"))) as raw, raw:
            raw.execute("DELETE FROM clients")  # the only client; a new connection checks no keys
    else:
        tamper(book, "SET LOCAL session_replication_role = replica; DELETE FROM clients")
    assert verify(book.store).problems == [
        f"client {seeded.client_id}: 1 entries but no such client"
    ]


def test_verify_in_processes_finds_what_one_process_does(
    book: creditbook.Creditbook,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With jobs, ranges of clients are checked in other processes: the same counts, the same
    problems in the same order, and the CLI's exit code."""
    monkeypatch.setattr(audit, "CHUNK", 2)  # five clients: three ranges
    pools: list[int] = []
    in_processes = audit._in_processes

    def counted(url: str, ranges: list[tuple[int, int]], jobs: int) -> Any:
        pools.append(jobs)
        return in_processes(url, ranges, jobs)

    monkeypatch.setattr(audit, "_in_processes", counted)
    ids = [
        book.ledger.add_client(
            firstname="P", lastname=str(i), email=f"p{i}@example.com", actor=ACTOR
        ).client_id
        for i in range(5)
    ]
    for cid in ids:
        for amount in ("5", "2.5"):
            book.ledger.add_credit(clientid=str(cid), amount=amount, description="x", actor=ACTOR)
    clean = verify(book.store, jobs=2)
    assert clean.ok and (clean.clients, clean.entries) == (5, 10)
    tamper(book, f"UPDATE clients SET balance_cents = 1 WHERE id IN ({ids[1]}, {ids[4]})")  # noqa: S608
    tamper(book, f"UPDATE credits SET description = 'y' WHERE client_id = {ids[3]}")  # noqa: S608
    one, two = verify(book.store), verify(book.store, progress=io.StringIO(), jobs=2)
    assert two.problems == one.problems and len(one.problems) == 3
    assert (two.clients, two.entries) == (one.clients, one.entries)
    assert main(["verify", "--jobs", "2", "--database", database]) == 1
    assert f"client {ids[4]}: balance 0.01 but entries sum to 7.50" in capsys.readouterr().out
    assert pools == [2, 2, 2]
