"""Importing a WHMCS installation from a real MariaDB: ids kept, history whole, quirks reported,
balances reconciled, re-runs idempotent and incremental, collisions refused."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

import creditbook
from creditbook.cli import main
from creditbook.importer.model import GRANT_NOTE
from creditbook.store.transfer import row_counts
from helpers import ACTOR
from whmcs_fixture import build, run

_names = itertools.count()


@pytest.fixture
def source(mariadb: Any) -> str:
    """A fresh WHMCS-shaped database; its mysql:// URL."""
    name = f"whmcs{next(_names)}"
    build(mariadb.port, name)
    return mariadb.url(name)


def import_json(database: str, url: str, *extra: str, capsys: Any) -> dict[str, Any]:
    status = main(["import", "whmcs-db", url, "--database", database, "--json", *extra])
    out = capsys.readouterr().out
    report: dict[str, Any] = json.loads(out)
    assert status == (0 if report["verified"] else 1)
    return report


def snapshot(database: str) -> dict[str, Any]:
    with creditbook.open(database) as book:
        store = book.store
        clients = {
            int(c["id"]): (c["credit"], c["currency_code"], c["email"], c["status"])
            for c in (
                book.local_api("GetClientsDetails", {"clientid": cid})
                for cid in range(1, 12)
                if book.local_api("GetClientsDetails", {"clientid": cid})["result"] == "success"
            )
        }
        credits = {
            cid: [
                (e["id"], e["date"], e["amount"], e["balance"], e["relid"], e["adminid"])
                for e in book.local_api("GetCredits", {"clientid": cid})["credits"]["credit"]
            ]
            for cid in range(1, 12)
            if book.local_api("GetCredits", {"clientid": cid}).get("totalresults")
        }
        return {"clients": clients, "credits": credits, "rows": row_counts(store)}  # type: ignore[arg-type]


def kinds(report: dict[str, Any]) -> set[tuple[str, int]]:
    return {(w["kind"], w["id"]) for w in report["warnings"]}


def test_import_keeps_ids_and_history_and_reconciles_on_the_balance(
    database: str, source: str, capsys: Any
) -> None:
    report = import_json(database, source, capsys=capsys)
    assert report["verified"] and not report["dry_run"]
    assert report["clients"] == {"in_source": 9, "imported": 9, "already_imported": 0}
    assert report["credits"]["in_source"] == 12 and report["credits"]["imported"] == 10
    assert report["skipped"] == [
        {"table": "tblcredit", "id": 8, "reason": "its client 999 does not exist in the source"},
        {"table": "tblcredit", "id": 12, "reason": "its amount is NULL"},
    ]
    assert {(d["client_id"], d["balance"], d["log"]) for d in report["differences"]} == {
        (2, "30.00", "10.00"),
        (3, "5.00", "10.00"),
        (9, "0.00", "-4.00"),
    }
    assert report["adjustments"] == 3  # clients 2, 3 and 9 (whose log alone ends at -4.00)
    assert report["category"] == {"name": "paid", "expires": None, "note": GRANT_NOTE}
    assert {
        ("zero-date", 4),  # the client's creation date
        ("zero-date", 5),  # the credit row's date
        ("missing-currency", 5),
        ("duplicate-email", 6),
        ("characters", 10),
        ("username", 3),
    } <= kinds(report)
    assert report["totals"]["USD"] == {
        "source_balance": "28.00",
        "source_log": "29.00",
        "imported": "28.00",
    }
    assert report["totals"]["EUR"] == {
        "source_balance": "42.50",
        "source_log": "22.50",
        "imported": "42.50",
    }
    state = snapshot(database)
    assert state["clients"][1] == ("15.00", "USD", "ann@example.com", "Active")
    assert state["clients"][2][0] == "30.00" and state["clients"][3][0] == "5.00"
    assert state["clients"][5][1] == "USD"  # the default currency, reported
    assert state["clients"][6][2] == "ANN@example.com"  # a duplicate e-mail still comes over
    assert state["clients"][7][1] == "EUR"
    assert state["credits"][1] == [
        ("1", "2020-01-05", "20.00", "20.00", "0", "1"),
        ("3", "2020-01-06", "-5.00", "15.00", "123", "1"),
    ]
    adjustment = state["credits"][2][-1]
    assert int(adjustment[0]) >= 2**32 and adjustment[2] == "20.00" and adjustment[3] == "30.00"
    assert state["credits"][4][0][1] == "1970-01-01"  # zero dates all round: fell back
    assert state["credits"][9] == [("11", "2022-09-11", "-4.00", "-4.00", "9", "0"),
                                   (state["credits"][9][1][0], state["credits"][9][1][1],
                                    "4.00", "0.00", "0", "0")]  # fmt: skip
    with creditbook.open(database) as book:
        # Imported credit is paid and never expires; its removals took the oldest first.
        grants = book.ledger.open_grants(1)
        assert [(g.category, g.expires, g.remaining_cents) for g in grants] == [("paid", "", 1500)]
        assert book.ledger.open_grants(9) == []
        text = book.local_api("GetCredits", {"clientid": 7})["credits"]["credit"][0]["description"]
        assert text == "Gutschrift für Rückerstattung €"
        client = book.local_api("GetClientsDetails", {"clientid": 7})
        assert client["companyname"] == "Müller & Söhne GmbH"
        odd = book.local_api("GetCredits", {"clientid": 8})["credits"]["credit"][0]
        assert odd["description"] == "Control\ufffdcharacter"
        admins = {a.id: a for a in book.ledger.list_admins()}
        assert set(admins) == {1, 2, 3} and all(a.disabled for a in admins.values())
        assert admins[3].username == "bad_name_"
        # New rows continue after the imported ids.
        new = book.ledger.add_client(
            firstname="N", lastname="Ew", email="new@example.com", actor=ACTOR
        )
        assert new.client_id == 10
    assert main(["verify", "--database", database]) == 0  # chains and balances hold
    capsys.readouterr()


def test_reconcile_on_the_log(database: str, source: str, capsys: Any) -> None:
    report = import_json(database, source, "--reconcile", "log", capsys=capsys)
    assert report["verified"] and report["reconcile"] == "log"
    state = snapshot(database)
    assert state["clients"][2][0] == "10.00" and state["clients"][3][0] == "10.00"
    assert state["clients"][9][0] == "0.00"  # -4.00 cannot be a balance: reported
    assert ("balance-out-of-range", 9) in kinds(report)


def test_dry_run_then_rerun_change_nothing_and_new_rows_arrive(
    database: str, source: str, mariadb: Any, capsys: Any
) -> None:
    empty = snapshot(database)
    dry = import_json(database, source, "--dry-run", capsys=capsys)
    assert dry["dry_run"] and dry["verified"] and dry["clients"]["imported"] == 9
    assert snapshot(database) == empty
    first = import_json(database, source, capsys=capsys)
    assert {k: first[k] for k in ("clients", "credits", "differences", "totals")} == {
        k: dry[k] for k in ("clients", "credits", "differences", "totals")
    }
    after = snapshot(database)
    again = import_json(database, source, capsys=capsys)
    assert again["clients"] == {"in_source": 9, "imported": 0, "already_imported": 9}
    assert again["credits"]["imported"] == 0 and again["adjustments"] == 0
    assert snapshot(database)["credits"] == after["credits"]
    # WHMCS moves on: a new client, new rows for old clients, a balance change.
    database_name = source.rsplit("/", 1)[1]
    run(
        mariadb.port,
        database_name,
        "INSERT INTO tblclients (id, firstname, lastname, companyname, email, currency, credit,"
        " status, datecreated) VALUES (10, 'Jo', 'Jones', '', 'jo@example.com', 1, 2.00,"
        " 'Active', '2023-01-01')",
        "INSERT INTO tblcredit (id, clientid, admin_id, date, description, amount, relid)"
        " VALUES (13, 10, 0, '2023-01-02', 'New', 2.00, 0),"
        " (14, 1, 1, '2023-01-03', 'More', 1.00, 0)",
        "UPDATE tblclients SET credit = 16.00 WHERE id = 1",
    )
    later = import_json(database, source, capsys=capsys)
    assert later["clients"]["imported"] == 1 and later["credits"]["imported"] == 2
    assert later["adjustments"] == 0 and later["verified"]
    state = snapshot(database)
    assert state["clients"][10][0] == "2.00" and state["clients"][1][0] == "16.00"
    assert state["credits"][1][-1][:4] == ("14", "2023-01-03", "1.00", "16.00")


def test_collisions_are_refused_before_anything_is_written(
    database: str, source: str, capsys: Any
) -> None:
    with creditbook.open(database) as book:
        book.ledger.add_client(firstname="Own", lastname="Client", email="own@x.com", actor=ACTOR)
    before = snapshot(database)
    status = main(["import", "whmcs-db", source, "--database", database])
    err = capsys.readouterr().err
    assert status == 1
    assert "already holds client 1" in err and "refusing to import" in err
    assert snapshot(database) == before


def test_an_old_installation_without_admin_id_and_relid(
    database: str, mariadb: Any, capsys: Any
) -> None:
    name = f"whmcsold{next(_names)}"
    build(mariadb.port, name, old=True)
    report = import_json(database, mariadb.url(name), capsys=capsys)
    assert report["verified"] and report["credits"]["imported"] == 10
    state = snapshot(database)
    assert state["credits"][1] == [
        ("1", "2020-01-05", "20.00", "20.00", "0", "0"),
        ("3", "2020-01-06", "-5.00", "15.00", "0", "0"),
    ]
    with creditbook.open(database) as book:  # latin1 text arrives as text
        text = book.local_api("GetCredits", {"clientid": 7})["credits"]["credit"][0]["description"]
        assert text == "Gutschrift für Rückerstattung EUR"


def test_a_bad_source_url_is_one_clear_line(database: str, capsys: Any) -> None:
    assert main(["import", "whmcs-db", "postgres://x/y", "--database", database]) == 1
    assert "mysql://user:password@host:port/database" in capsys.readouterr().err
    assert (
        main(["import", "whmcs-db", "mysql://root@127.0.0.1:1/none", "--database", database]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read the WHMCS database") and "Traceback" not in err


def test_sigkill_mid_import_then_rerun_equals_one_clean_run(
    sqlite_database: str, mariadb: Any, tmp_path: Any, capsys: Any
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from whmcs_fixture import connect

    name = f"whmcsbig{next(_names)}"
    build(mariadb.port, name)
    conn = connect(mariadb.port, name)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO tblclients (id, firstname, lastname, companyname, email, currency,"
            " credit, status, datecreated) VALUES (%s, 'Big', %s, '', %s, 1, %s, 'Active',"
            " '2024-01-01')",
            [(100 + i, str(i), f"big{i}@example.com", f"{i % 7}.00") for i in range(6000)],
        )
        cur.executemany(
            "INSERT INTO tblcredit (id, clientid, admin_id, date, description, amount, relid)"
            " VALUES (%s, %s, 0, '2024-02-01', 'bulk', %s, 0)",
            [(1000 + n, 100 + n // 10, "1.00" if n % 3 else "-0.50") for n in range(60_000)],
        )
    conn.commit()
    conn.close()
    url = mariadb.url(name)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "creditbook",
            "import",
            "whmcs-db",
            url,
            "--database",
            sqlite_database,
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    path = sqlite_database.removeprefix("sqlite:///")
    deadline = time.monotonic() + 60
    import sqlite3

    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(path) as db:
                if db.execute("SELECT COUNT(*) FROM imported").fetchone()[0] >= 1000:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the import ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(path) as db:
        partial = db.execute("SELECT COUNT(*) FROM imported WHERE kind = 'client'").fetchone()[0]
    assert 0 < partial < 6009
    assert main(["verify", "--database", sqlite_database]) == 0  # consistent when killed
    capsys.readouterr()
    resumed = import_json(sqlite_database, url, capsys=capsys)
    assert resumed["verified"] and resumed["clients"]["already_imported"] == partial
    clean = f"sqlite:///{tmp_path}/clean.db"
    import_json(clean, url, capsys=capsys)

    def content(database: str) -> list[Any]:
        with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
            return db.execute(
                "SELECT c.id, c.balance_cents, c.entries, e.id, e.seq, e.amount_cents,"
                " e.balance_cents, e.date, e.description FROM clients c"
                " JOIN credits e ON e.client_id = c.id WHERE e.id < 4294967296"
                " ORDER BY e.id"
            ).fetchall()

    assert content(sqlite_database) == content(clean)
    assert main(["verify", "--database", sqlite_database]) == 0
    capsys.readouterr()


def test_imported_history_emits_no_webhook_events(
    sqlite_database: str, source: str, capsys: Any
) -> None:
    import os

    from creditbook.webhooks import add_endpoint

    with creditbook.open(sqlite_database) as book:
        add_endpoint(
            book.store, os.urandom(32), "http://127.0.0.1:9/", None, "", ACTOR, book.ledger.now()
        )
    assert import_json(sqlite_database, source, capsys=capsys)["verified"]
    with creditbook.open(sqlite_database) as book:
        assert book.store.webhook_backlog()[:2] == (0, 0)
        book.local_api("AddCredit", {"clientid": 1, "amount": "1.00", "description": "live"})
        assert book.store.webhook_backlog()[0] == 1  # changes after the import do


def test_imported_admins_get_a_password_then_log_in(
    sqlite_database: str, source: str, capsys: Any, monkeypatch: Any
) -> None:
    import io

    from creditbook import security

    import_json(sqlite_database, source, capsys=capsys)
    with creditbook.open(sqlite_database) as book:
        stored = book.store.get_admin(1).password_hash  # type: ignore[union-attr]
        assert not security.verify_md5_password(security.md5_hex("whmcs-hash"), stored)
    monkeypatch.setattr("sys.stdin", io.StringIO("new secret\n"))
    args = ["admin", "password", "admin", "--password-stdin", "--database", sqlite_database]
    assert main(args) == 0
    assert main(["admin", "enable", "admin", "--database", sqlite_database]) == 0
    capsys.readouterr()
    with creditbook.open(sqlite_database) as book:
        admin = book.store.get_admin(1)
        assert admin is not None and not admin.disabled
        assert security.verify_md5_password(security.md5_hex("new secret"), admin.password_hash)
        activity = [a.action for a in book.ledger.activity(limit=5)]
        assert "adminpassword" in activity
