"""Data out and store to store: export (CSV, JSON lines, filters, formula safety, round trip),
copy SQLite -> PostgreSQL, the Credits Reviewer CSV and the WHMCS-API import."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import creditbook
from creditbook.cli import main
from creditbook.importer.sources import parse_amount
from helpers import ACTOR, Server, seed


def fill(book: creditbook.Creditbook) -> list[int]:
    """Three clients with a few entries, one with hostile text."""
    ids = [
        book.ledger.add_client(
            firstname=name, lastname="Client", email=f"{name}@example.com", actor=ACTOR
        ).client_id
        for name in ("ann", "bob", "=cmd")
    ]
    for i, cid in enumerate(ids):
        for n, amount in enumerate(("10.00", "2.50", "1.25")):
            book.local_api(
                "AddCredit",
                {
                    "clientid": cid,
                    "amount": amount,
                    "description": "=HYPERLINK(1)" if (i, n) == (2, 0) else f"entry {n}",
                    "date": f"2026-0{n + 1}-15",
                    **({"type": "remove"} if n == 2 else {}),
                },
            )
    return ids


def export(database: str, capsys: Any, *args: str) -> str:
    assert main(["export", *args, "--database", database]) == 0
    return str(capsys.readouterr().out)


def test_export_csv_jsonl_filters_and_formula_safety(database: str, capsys: Any) -> None:
    with creditbook.open(database) as book:
        ann, bob, hostile = fill(book)
    rows = list(csv.DictReader(io.StringIO(export(database, capsys, "credits"))))
    assert len(rows) == 9
    assert [r["amount"] for r in rows[:3]] == ["10.00", "2.50", "-1.25"]  # numbers stay numbers
    assert rows[0]["balance"] == "10.00" and rows[2]["balance"] == "11.25"
    assert rows[6]["description"] == "'=HYPERLINK(1)"  # neutralised
    assert all(len(r["hash"]) == 64 for r in rows)
    clients = list(csv.DictReader(io.StringIO(export(database, capsys, "clients"))))
    assert [c["firstname"] for c in clients] == ["ann", "bob", "'=cmd"]
    assert clients[0]["balance"] == "11.25" and clients[0]["currency"] == "USD"
    one = export(database, capsys, "credits", "--client", str(bob), "--from", "2026-02-01",
                 "--to", "2026-03-15", "--format", "jsonl")  # fmt: skip
    lines = [json.loads(line) for line in one.splitlines()]
    assert [(x["client_id"], x["date"], x["amount"]) for x in lines] == [
        (bob, "2026-02-15", "2.50"),
        (bob, "2026-03-15", "-1.25"),
    ]
    activity = list(csv.DictReader(io.StringIO(export(database, capsys, "activity", "--client",
                                                      str(ann)))))  # fmt: skip
    assert activity and all(a["client_id"] == str(ann) for a in activity)
    assert main(["export", "credits", "--from", "2026-13-01", "--database", database]) == 1
    assert "--from must be a date" in capsys.readouterr().err


def test_export_to_a_file_then_import_it_into_a_fresh_store(
    database: str, tmp_path: Any, capsys: Any
) -> None:
    with creditbook.open(database) as book:
        fill(book)
        balances = {c.id: c.balance_cents for c in book.ledger.list_clients(0, 10).clients}
    clients_csv, credits_csv = str(tmp_path / "clients.csv"), str(tmp_path / "credits.csv")
    assert main(["export", "clients", "--output", clients_csv, "--database", database]) == 0
    assert main(["export", "credits", "--output", credits_csv, "--database", database]) == 0
    capsys.readouterr()
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    assert main(["import", "csv", clients_csv, credits_csv, "--database", fresh, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] and report["credits"]["imported"] == 9
    with creditbook.open(fresh) as book:
        again = {c.id: c.balance_cents for c in book.ledger.list_clients(0, 10).clients}
        assert book.local_api("GetClientsDetails", {"clientid": 3})["firstname"] == "=cmd"
    assert again == balances


def test_copy_sqlite_to_postgresql_verified(
    sqlite_database: str, postgres: Any, capsys: Any
) -> None:
    from conftest import new_pg_database

    with creditbook.open(sqlite_database) as book:
        s = seed(book)
        fill(book)
        book.local_api("AddCredit", {"clientid": s.client_id, "amount": "3.00",
                                     "description": "kept", "idempotencykey": "k1"})  # fmt: skip
    target = new_pg_database(postgres)
    assert main(["copy", sqlite_database, target, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["rows"]["credits"] == 10 and result["rows"]["admins"] == 1
    with creditbook.open(target) as book:
        reply = book.local_api("GetCredits", {"clientid": s.client_id})
        assert reply["credits"]["credit"][-1]["description"] == "kept"
        assert book.ledger.credential(s.identifier) is not None  # hashes came over
        new = book.ledger.add_client(firstname="n", lastname="n", email="n@x.com", actor=ACTOR)
        assert new.client_id == 5  # the sequences continue after the copied ids
    assert main(["copy", sqlite_database, target]) == 1  # not empty any more
    assert "not empty" in capsys.readouterr().err


def test_credits_reviewer_csv(database: str, tmp_path: Any, capsys: Any) -> None:
    with creditbook.open(database) as book:
        ann = book.ledger.add_client(
            firstname="Ann", lastname="Able", email="ann@example.com", actor=ACTOR
        ).client_id
        bob = book.ledger.add_client(
            firstname="Bob", lastname="Bell", email="bob@example.com", actor=ACTOR
        ).client_id
        book.ledger.add_admin(
            "jsmith", "pw-0123456789", firstname="John", lastname="Smith", actor=ACTOR
        )
    path = tmp_path / "credits.csv"
    path.write_text(
        "Credit ID,Client ID,Client Name,Date,Description,Amount,Admin User\n"
        f"501,{ann},Ann Able,05/01/2020,Goodwill,$20.00,John Smith\n"
        f"502,{ann},Ann Able,06/01/2020,Applied to invoice,-$5.00,\n"
        f"502,{ann},Ann Able,06/01/2020,Applied to invoice,-$5.00,\n"
        f"506,{bob},Bob Bell,06/01/2020,Would go negative,-$1.00,\n"
        "503,999,Gone,07/01/2020,Nobody,$1.00,\n"
        f"504,{ann},Ann Able,not a date,Bad,$1.00,\n",
        encoding="utf-8",
    )
    args = ["import", "credits-csv", str(path), "--date-format", "%d/%m/%Y", "--database", database]
    assert main([*args, "--json"]) == 1  # bad rows: nothing is imported
    refused = json.loads(capsys.readouterr().out)
    assert refused["imported"] is False and [p["id"] for p in refused["bad_rows"]] == [7]
    args.append("--skip-bad-rows")
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["credits"]["imported"] == 2 and report["verified"]
    reasons = {s["id"]: s["reason"] for s in report["skipped"]}
    assert "not in this store" in reasons[503] and "does not match" in reasons[7]  # line 7
    assert "from 0.00 to -1.00, below zero" in reasons[506]
    with creditbook.open(database) as book:
        log = book.local_api("GetCredits", {"clientid": ann})["credits"]["credit"]
        assert [(e["id"], e["date"], e["amount"], e["balance"], e["adminid"]) for e in log] == [
            ("501", "2020-01-05", "20.00", "20.00", "1"),
            ("502", "2020-01-06", "-5.00", "15.00", "0"),
        ]
    assert main([*args, "--json"]) == 0  # again: nothing new
    assert json.loads(capsys.readouterr().out)["credits"]["imported"] == 0


def test_parse_displayed_amounts() -> None:
    assert parse_amount("$1,234.56") == 123456
    assert parse_amount("-£5.00") == -500
    assert parse_amount("1.234,56 EUR") == 123456
    assert parse_amount("12") == 1200


def test_import_through_the_api_of_a_running_creditbook(
    sqlite_database: str, tmp_path: Any, capsys: Any
) -> None:
    with creditbook.open(sqlite_database) as book:
        s = seed(book)
        ids = fill(book)
        balances = {c.id: c.balance_cents for c in book.ledger.list_clients(0, 10).clients}
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    with Server(sqlite_database) as server:
        status = main(["import", "whmcs-api", server.url, f"--identifier={s.identifier}",
                       f"--secret={s.secret}", "--database", fresh, "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    assert report["verified"], report
    assert report["clients"]["imported"] == 4 and report["credits"]["imported"] == 9
    assert s.secret not in json.dumps(report)
    with creditbook.open(fresh) as book:
        again = {c.id: c.balance_cents for c in book.ledger.list_clients(0, 10).clients}
        log = book.local_api("GetCredits", {"clientid": ids[0]})["credits"]["credit"]
    assert again == balances and [e["amount"] for e in log] == ["10.00", "2.50", "-1.25"]


def test_a_parallel_export_writes_the_same_bytes(database: str, monkeypatch: Any) -> None:
    from creditbook import exports

    with creditbook.open(database) as book:
        fill(book)
        fill_more = [
            {"clientid": 1, "amount": f"{n % 9 + 1}.00", "description": f"bulk {n}"}
            for n in range(300)
        ]
        book.credit_many(fill_more)
        serial, parallel = io.StringIO(), io.StringIO()
        rows = exports.export(book.store, "credits", serial)  # type: ignore[arg-type]
        monkeypatch.setattr(exports, "PARALLEL_FROM", 10)
        again = exports.export(book.store, "credits", parallel, workers=2)  # type: ignore[arg-type]
    assert rows == again == 309
    assert parallel.getvalue() == serial.getvalue()
