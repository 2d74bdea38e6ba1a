"""Journal export (balanced, read back by a CSV reader, every layout, per entry and per day)
and the standing reconciliation with WHMCS (a change on each side after the import)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import creditbook
from creditbook import expiry
from creditbook.cli import main
from creditbook.staff import Staff
from helpers import ACTOR
from whmcs_fixture import build, run

ACCOUNTS = """
[category.paid]
liability = "2400 Customer credit"
added = "1200 Payments clearing"
spent = "1100 Accounts receivable"
expired = "4900 Breakage"
[category.promotional]
liability = "2410 Promotional credit"
added = "6100 Marketing"
spent = "1100 Accounts receivable"
expired = "6100 Marketing"
"""
_names = itertools.count()


def history(database: str) -> dict[str, int]:
    """November: paid and promotional credit added, spent, an expiry, a reversal of each kind,
    a EUR client; an entry in October and one in December outside the period."""
    with creditbook.open(database) as book:
        ledger, staff = book.ledger, Staff(book.ledger)
        now = [dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)]
        ledger.clock = lambda tz: now[0].astimezone(tz)
        usd = ledger.add_client(firstname="U", lastname="S", email="u@x.io", actor=ACTOR).client_id
        eur = ledger.add_client(firstname="E", lastname="U", email="e@x.io", currency="EUR",
                                actor=ACTOR).client_id  # fmt: skip

        def credit(who: int, amount: str, date: str, **more: Any) -> int:
            ledger.add_credit(clientid=str(who), amount=amount, date=date, description="n",
                              actor=ACTOR, **more)  # fmt: skip
            _, _, found = ledger.get_credits(str(who), book.store.count_credits(who) - 1, 1)
            return next(found).id

        credit(usd, "100.00", "2026-10-30")
        promo = credit(usd, "30.00", "2026-11-01", category="promotional", expires="2026-11-05")
        spend = credit(usd, "20.00", "2026-11-02", type="remove")
        grant = credit(usd, "15.00", "2026-11-03")
        credit(eur, "9.99", "2026-11-03")
        now[0] = dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)
        expiry.run(ledger)  # 10.00 promotional expires, dated 2026-11-05
        staff.reverse_credit(spend, reason="wrong", actor=ACTOR)  # back, and expired at once
        staff.reverse_credit(grant, reason="wrong", actor=ACTOR)
        credit(usd, "1.00", "2026-12-01")
        return {"usd": usd, "eur": eur, "promo": promo, "spend": spend, "grant": grant}


def export(database: str, tmp_path: Path, capsys: Any, *extra: str) -> str:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(ACCOUNTS, encoding="utf-8")
    status = main(["export", "journal", "--from", "2026-11-01", "--to", "2026-11-30",
                   "--accounts", str(accounts), *extra, "--database", database])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "balanced" in captured.err
    return str(captured.out)


def test_a_journal_per_entry_balances_and_reads_back(
    database: str, tmp_path: Path, capsys: Any
) -> None:
    ids = history(database)
    rows = list(csv.DictReader(io.StringIO(export(database, tmp_path, capsys))))
    assert list(rows[0]) == ["date", "journal", "account", "debit", "credit", "currency",
                             "description", "reference"]  # fmt: skip
    assert {r["date"] for r in rows} <= {f"2026-11-{d:02d}" for d in range(1, 31)}
    journals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        assert (r["debit"] == "") != (r["credit"] == "")
        journals[(r["journal"], r["currency"])] += Decimal(r["debit"] or 0) - Decimal(
            r["credit"] or 0
        )
    assert journals and not any(journals.values())
    by_ref = defaultdict(list)
    for r in rows:
        by_ref[r["reference"]].append((r["account"], r["debit"], r["credit"]))
    assert by_ref[str(ids["promo"])] == [("6100 Marketing", "30.00", ""),
                                         ("2410 Promotional credit", "", "30.00")]  # fmt: skip
    # 20.00 spent from the promotional grant (the soonest to expire).
    assert by_ref[str(ids["spend"])] == [("2410 Promotional credit", "20.00", ""),
                                         ("1100 Accounts receivable", "", "20.00")]  # fmt: skip
    # A reversal gives the opposite lines of what it reverses.
    reversal_of_spend = [r for r in rows if f"(reverses #{ids['spend']})" in r["description"]]
    assert [(r["account"], r["debit"], r["credit"]) for r in reversal_of_spend] == [
        ("1100 Accounts receivable", "20.00", ""),
        ("2410 Promotional credit", "", "20.00"),
    ]
    reversal_of_grant = [r for r in rows if f"(reverses #{ids['grant']})" in r["description"]]
    assert [(r["account"], r["debit"], r["credit"]) for r in reversal_of_grant] == [
        ("2400 Customer credit", "15.00", ""),
        ("1200 Payments clearing", "", "15.00"),
    ]
    breakage = [r for r in rows if r["account"] == "6100 Marketing" and r["credit"]]
    assert sum(Decimal(r["credit"]) for r in breakage) == Decimal("30.00")  # 10 + 20 expired
    assert {r["currency"] for r in rows} == {"USD", "EUR"}


def test_daily_summaries_and_other_layouts(database: str, tmp_path: Path, capsys: Any) -> None:
    history(database)
    daily = list(csv.DictReader(io.StringIO(export(database, tmp_path, capsys, "--summarize",
                                                   "daily"))))  # fmt: skip
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for r in daily:
        sums[r["journal"]] += Decimal(r["debit"] or 0) - Decimal(r["credit"] or 0)
    assert not any(sums.values())
    assert "CB-2026-11-03-USD-paid" in sums and "CB-2026-11-03-EUR-paid" in sums
    per_entry = list(csv.DictReader(io.StringIO(export(database, tmp_path, capsys))))

    def total(rows: list[dict[str, str]], column: str) -> Decimal:
        return sum((Decimal(r[column] or 0) for r in rows), Decimal(0))

    assert total(daily, "debit") == total(per_entry, "debit") == total(per_entry, "credit")
    xero = list(csv.DictReader(io.StringIO(export(database, tmp_path, capsys, "--layout", "xero",
                                                  "--currency", "USD"))))  # fmt: skip
    assert list(xero[0])[:6] == ["*Narration", "*Date", "Description", "*AccountCode",
                                 "*TaxRate", "*Amount"]  # fmt: skip
    assert sum(Decimal(r["*Amount"]) for r in xero) == 0
    assert {r["*AccountCode"] for r in xero} >= {"2400", "2410", "6100"}
    qb = list(csv.DictReader(io.StringIO(export(database, tmp_path, capsys, "--layout",
                                                "quickbooks"))))  # fmt: skip
    assert total(qb, "Debits") == total(qb, "Credits") == total(per_entry, "debit")


def test_refusals(database: str, tmp_path: Path, capsys: Any) -> None:
    history(database)
    partial = tmp_path / "partial.toml"
    partial.write_text(ACCOUNTS.split("[category.promotional]")[0], encoding="utf-8")
    args = ["export", "journal", "--from", "2026-11-01", "--to", "2026-11-30"]
    assert main([*args, "--accounts", str(partial), "--database", database]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing written before the check
    assert "maps no accounts for promotional" in captured.err
    broken = tmp_path / "broken.toml"
    broken.write_text("[category.paid]\nliability = 'x'\n", encoding="utf-8")
    assert main([*args, "--accounts", str(broken), "--database", database]) == 1
    assert "lacks an account for added, spent, expired" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text(ACCOUNTS, encoding="utf-8")
    assert main([*args, "--accounts", str(good), "--layout", "xero", "--database", database]) == 1
    assert "--currency" in capsys.readouterr().err
    assert main([*args, "--database", database]) == 2
    assert "needs --accounts" in capsys.readouterr().err


@pytest.fixture
def source(mariadb: Any) -> str:
    name = f"recon{next(_names)}"
    build(mariadb.port, name)
    return mariadb.url(name)


def test_reconcile_finds_a_change_on_each_side(
    database: str, source: str, mariadb: Any, capsys: Any
) -> None:
    assert main(["reconcile", "whmcs-db", source, "--database", database]) == 2
    assert "No client was imported" in capsys.readouterr().err
    assert main(["import", "whmcs-db", source, "--database", database, "--json"]) == 0
    capsys.readouterr()
    assert main(["reconcile", "whmcs-db", source, "--database", database, "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["matches"] and clean["compared"] == clean["matched"] == 9
    # WHMCS credits client 1 after the import; Creditbook removes from client 2.
    run(
        mariadb.port,
        source.rsplit("/", 1)[1],
        "INSERT INTO tblcredit (id, clientid, admin_id, date, description, amount, relid)"
        " VALUES (500, 1, 1, '2026-11-20', 'Added in WHMCS', 4.00, 0)",
        "UPDATE tblclients SET credit = credit + 4.00 WHERE id = 1",
    )
    with creditbook.open(database) as book:
        book.ledger.add_credit(clientid="2", amount="3.00", type="remove",
                               description="Spent in Creditbook", actor=ACTOR)  # fmt: skip
    assert main(["reconcile", "whmcs-db", source, "--database", database, "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    diffs = {d["clientid"]: d for d in found["differences"]}
    assert set(diffs) == {1, 2} and found["matched"] == 7
    one, two = diffs[1], diffs[2]
    assert (one["creditbook"], one["whmcs"], one["difference"]) == ("15.00", "19.00", "-4.00")
    assert one["explained"] and [e["id"] for e in one["only_whmcs"]] == [500]
    assert one["only_creditbook"] == []
    assert (two["difference"], two["explained"]) == ("-3.00", True)
    assert [e["description"] for e in two["only_creditbook"]] == ["Spent in Creditbook"]
    assert main(["reconcile", "whmcs-db", source, "--database", database]) == 1
    text = capsys.readouterr().out
    assert "only in WHMCS: #500 2026-11-20 4.00 Added in WHMCS" in text
    assert "9 clients imported" in text or "Compared 9 clients" in text
