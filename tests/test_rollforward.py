"""The month-end roll-forward on both stores: its identity under random histories (grants,
spending, reversals, expiry, back-dated entries) against a brute-force computation from the
entries; month boundaries in a zone far from UTC; empty periods; late entries; the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import creditbook
from creditbook import errors, expiry, rollforward
from creditbook.cli import main
from creditbook.ledger import Ledger
from creditbook.staff import Staff
from helpers import ACTOR

_emails = itertools.count()
START = dt.date(2026, 3, 1)


def brute_force(book: creditbook.Creditbook, first: str, last: str) -> dict[Any, dict[str, int]]:
    """Per (currency, category): opening, moves per column, closing and clients, from every
    entry of every client read through the API (nothing shared with the report's SQL)."""
    ledger = book.ledger
    out: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    before = (dt.date.fromisoformat(first) - dt.timedelta(days=1)).isoformat()
    for client in _all_clients(book):
        _, _, entries = ledger.get_credits(str(client.id), 0, None)
        entries = list(ledger.with_allocations(client.id, entries))
        category_of = {e.id: (e.category or "paid") for e in entries if e.is_grant}
        closing: dict[str, int] = defaultdict(int)
        for e in entries:
            if e.spent:
                effects = [(category_of[g], -cents) for g, cents in e.spent]
            else:
                effects = [
                    ((e.category or "paid") if e.kind == "grant" else "paid", e.amount_cents)
                ]
            for category, cents in effects:
                key = (client.currency_code, category)
                if e.date <= before:
                    out[key]["opening"] += cents
                if e.date <= last:
                    closing[category] += cents
                    out[key]["closing"] += cents
                if first <= e.date <= last:
                    if e.description.startswith("Reversal of entry #"):
                        out[key]["reversed"] += cents
                    elif e.kind == "expiry":
                        out[key]["expired"] -= cents
                    elif cents > 0:
                        out[key]["added"] += cents
                    else:
                        out[key]["spent"] -= cents
        for category, cents in closing.items():
            if cents > 0:
                out[(client.currency_code, category)]["clients"] += 1
    return out


def _all_clients(book: creditbook.Creditbook) -> list[Any]:
    found = []
    for balance in book.ledger.balances_asof("9999-12-31"):
        client = book.store.get_client(balance.client_id)
        assert client is not None
        found.append(client)
    return found


def report_rows(report: rollforward.Rollforward) -> dict[Any, dict[str, int]]:
    return {
        (r.currency, r.category): {
            "opening": r.opening, "added": r.added, "spent": r.spent, "reversed": r.reversed,
            "expired": r.expired, "closing": r.closing, "clients": r.clients,
        }
        for r in report.rows
    }  # fmt: skip


ops = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(0, 2), st.integers(1, 900),
                  st.sampled_from(["paid", "promotional", "goodwill"]), st.integers(0, 12),
                  st.integers(0, 20)),
        st.tuples(st.just("remove"), st.integers(0, 2), st.integers(1, 600), st.integers(0, 20)),
        st.tuples(st.just("undo"), st.integers(0, 2), st.integers(0, 30)),
        st.tuples(st.just("days"), st.integers(1, 9)),
        st.tuples(st.just("expire"),),
    ),
    min_size=15,
    max_size=35,
)  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=ops, cut=st.integers(0, 40), span=st.integers(0, 40))
def test_the_identity_holds_and_agrees_with_the_entries(
    book: creditbook.Creditbook, steps: list[Any], cut: int, span: int
) -> None:
    ledger, staff = book.ledger, Staff(book.ledger)
    day = [START]
    ledger.clock = lambda tz: dt.datetime.combine(day[0], dt.time(12)).replace(tzinfo=tz)
    tag = next(_emails)
    currencies = ["USD", "USD", "EUR"]
    ids = [
        ledger.add_client(firstname="p", lastname="q", email=f"r{tag}-{i}@example.com",
                          currency=currencies[i], actor=ACTOR).client_id
        for i in range(3)
    ]  # fmt: skip
    entries: list[int] = []
    for step in steps:
        if step[0] == "days":
            day[0] += dt.timedelta(days=step[1])
        elif step[0] == "expire":
            expiry.run(ledger)
        elif step[0] == "grant":
            _, who, cents, category, days, back = step
            date = (day[0] - dt.timedelta(days=back)).isoformat()
            expires = (day[0] + dt.timedelta(days=days)).isoformat() if days else None
            ledger.add_credit(clientid=str(ids[who]), amount=f"{cents / 100:.2f}", date=date,
                              description="g", category=category, expires=expires,
                              actor=ACTOR)  # fmt: skip
            entries.append(newest(book, ids[who]))
        elif step[0] == "remove":
            _, who, cents, back = step
            date = (day[0] - dt.timedelta(days=back)).isoformat()
            try:
                ledger.add_credit(clientid=str(ids[who]), amount=f"{cents / 100:.2f}", date=date,
                                  description="r", type="remove", actor=ACTOR)  # fmt: skip
            except (errors.InsufficientCredit, errors.ValidationError):
                continue
            entries.append(newest(book, ids[who]))
        elif step[0] == "undo" and entries:
            try:
                staff.reverse_credit(entries[step[2] % len(entries)], reason="u", actor=ACTOR)
            except errors.CreditError:
                continue
    first = (START + dt.timedelta(days=cut)).isoformat()
    last = (START + dt.timedelta(days=cut + span)).isoformat()
    for by_category in (True, False):
        report = rollforward.build(ledger, first, last, by_category=by_category)
        assert all(r.adds_up() for r in report.rows)
        expected = brute_force(book, first, last)
        if not by_category:
            merged: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for (currency, _), figures in expected.items():
                for k, v in figures.items():
                    if k != "clients":
                        merged[(currency, "all")][k] += v
            for balance in ledger.balances_asof(last):
                if balance.balance_cents > 0:
                    merged[(balance.currency_code, "all")]["clients"] += 1
            expected = merged
        got = report_rows(report)
        for key, figures in expected.items():
            assert key in got, key
            for column, cents in figures.items():
                assert got[key][column] == cents, (key, column, got[key], dict(figures))
        for key, figures in got.items():
            if key not in expected:
                assert not any(figures.values()), (key, figures)


def newest(book: creditbook.Creditbook, client: int) -> int:
    _, _, found = book.ledger.get_credits(str(client), book.store.count_credits(client) - 1, 1)
    return next(found).id


def test_columns_empty_periods_refusals_and_late_entries(book: creditbook.Creditbook) -> None:
    ledger, staff = book.ledger, Staff(book.ledger)
    now = [dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)]
    ledger.clock = lambda tz: now[0].astimezone(tz)
    ann = ledger.add_client(firstname="Ann", lastname="A", email="ann@x.io", actor=ACTOR).client_id

    def credit(amount: str, date: str, **more: Any) -> int:
        ledger.add_credit(clientid=str(ann), amount=amount, date=date, description="x",
                          actor=ACTOR, **more)  # fmt: skip
        return newest(book, ann)

    credit("100.00", "2026-10-05")
    promo = credit("30.00", "2026-10-06", category="promotional", expires="2026-11-05")
    removal = credit("20.00", "2026-11-02", type="remove")  # takes 20.00 of the promotional
    now[0] = dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)
    expiry.run(ledger)  # the rest of the promotional, 10.00, expires on 2026-11-05
    staff.reverse_credit(removal, reason="wrong", actor=ACTOR)  # 20.00 back, expired at once
    assert promo
    nov = rollforward.build(ledger, "2026-11-01", "2026-11-30", by_category=True)
    rows = {r.category: r for r in nov.rows}
    assert [r.category for r in nov.rows] == ["paid", "goodwill", "promotional", "refund"]
    p = rows["promotional"]
    assert (p.opening, p.added, p.spent, p.reversed, p.expired, p.closing) == (
        3000, 0, 2000, 2000, 3000, 0)  # fmt: skip
    assert (rows["paid"].opening, rows["paid"].closing, rows["paid"].clients) == (10000, 10000, 1)
    assert rows["goodwill"].as_text()["closing"] == "0.00"
    # A period without entries reports zeros for every currency, explicitly.
    empty = rollforward.build(ledger, "2025-01-01", "2025-01-31")
    assert [r.as_text() for r in empty.rows] == [
        {"currency": "USD", "category": "all", "opening": "0.00", "added": "0.00",
         "spent": "0.00", "reversed": "0.00", "expired": "0.00", "closing": "0.00", "clients": 0}
    ]  # fmt: skip
    gbp = rollforward.build(ledger, "2026-11-01", "2026-11-30", currency="gbp")
    assert [(r.currency, r.closing) for r in gbp.rows] == [("GBP", 0)]
    with pytest.raises(errors.ValidationError, match="Unknown currency XYZ"):
        rollforward.build(ledger, "2026-11-01", "2026-11-30", currency="XYZ")
    with pytest.raises(errors.ValidationError, match="before --from"):
        rollforward.build(ledger, "2026-11-30", "2026-11-01")
    with pytest.raises(errors.ValidationError, match="--from must be a date"):
        rollforward.build(ledger, "2026-13-01", "2026-11-30")
    # A back-dated entry recorded after October was reported (on 10 November) is listed.
    oct_before = rollforward.build(ledger, "2026-10-01", "2026-10-31", late_after="2026-11-10")
    assert oct_before.late_count == 0
    now[0] = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    credit("5.00", "2026-10-20")
    october = rollforward.build(ledger, "2026-10-01", "2026-10-31", late_after="2026-11-10")
    assert october.late_count == 1 and october.late[0]["amount"] == "5.00"
    assert october.late[0]["date"] == "2026-10-20" and october.late_totals == {"USD": 500}
    assert october.late[0]["recorded"].startswith("2026-11-20T09:00:00")
    assert october.rows[0].closing == oct_before.rows[0].closing + 500
    # By default "late" means recorded after the period's last day.
    assert rollforward.build(ledger, "2026-10-01", "2026-10-31").late_count == 3


def test_month_boundaries_follow_the_configured_zone(database: str) -> None:
    with creditbook.open(database) as book:
        ledger = Ledger(book.store, timezone="Pacific/Auckland")
        # 12:00 UTC on 31 October is already 1 November in Auckland (UTC+13).
        ledger.clock = lambda tz: dt.datetime(2026, 10, 31, 12, tzinfo=dt.UTC).astimezone(tz)
        cid = ledger.add_client(firstname="K", lastname="W", email="k@x.nz", actor=ACTOR).client_id
        ledger.add_credit(clientid=str(cid), amount="7.00", description="x", actor=ACTOR)
        october = rollforward.build(ledger, "2026-10-01", "2026-10-31")
        november = rollforward.build(ledger, "2026-11-01", "2026-11-30")
        assert (october.rows[0].closing, november.rows[0].added) == (0, 700)
        # October ended at 11:00 UTC on the 31st in Auckland: the entry, dated in November,
        # is not "late" for October, and the cut-off is that moment.
        assert october.recorded_after == "2026-10-31T11:00:00.000000Z"


def test_the_command_in_three_formats(database: str, capsys: Any) -> None:
    with creditbook.open(database) as book:
        ledger = book.ledger
        cid = ledger.add_client(firstname="C", lastname="L", email="c@x.io", actor=ACTOR).client_id
        ledger.add_credit(clientid=str(cid), amount="12.50", description="x", date="2026-11-03",
                          actor=ACTOR)  # fmt: skip
        ledger.add_credit(clientid=str(cid), amount="2.50", description="x", date="2026-11-04",
                          type="remove", actor=ACTOR)  # fmt: skip
    args = ["report", "rollforward", "--from", "2026-11-01", "--to", "2026-11-30"]
    assert main([*args, "--format", "json", "--database", database]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["from"], data["to"]) == ("2026-11-01", "2026-11-30")
    assert data["rows"] == [
        {"currency": "USD", "category": "all", "opening": "0.00", "added": "12.50",
         "spent": "2.50", "reversed": "0.00", "expired": "0.00", "closing": "10.00",
         "clients": 1}
    ]  # fmt: skip
    assert main([*args, "--format", "csv", "--by", "category", "--database", database]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["category"], r["closing"]) for r in rows][:2] == [
        ("paid", "10.00"),
        ("goodwill", "0.00"),
    ]
    assert main([*args, "--database", database]) == 0
    text = capsys.readouterr().out
    assert "Checked: opening + added - spent + reversed - expired = closing" in text
    assert "USD" in text and "10.00" in text
    assert main(["report", "rollforward", "--from", "2026-11-30", "--to", "2026-11-01",
                 "--database", database]) == 1  # fmt: skip
    assert (
        capsys.readouterr().err.strip() == "error: --to (2026-11-01) is before --from (2026-11-30)"
    )


def test_figures_that_disagree_are_an_error_never_printed(database: str, capsys: Any) -> None:
    """An entry changed behind Creditbook's back: the opening (read from the entries up to the
    day before) plus the period's movements no longer reach the closing (today's balance less
    what is dated after): refused, as ``verify`` would."""
    with creditbook.open(database) as book:
        ledger = book.ledger
        cid = ledger.add_client(firstname="T", lastname="T", email="t@x.io", actor=ACTOR).client_id
        for day in ("2026-09-10", "2026-10-05", "2026-10-06", "2026-11-05"):
            ledger.add_credit(clientid=str(cid), amount="10.00", description="x", date=day,
                              actor=ACTOR)  # fmt: skip
        assert rollforward.build(ledger, "2026-10-01", "2026-10-31").rows[0].closing == 3000
        store: Any = book.store
        with store._write() as cur:
            store._run(cur, "UPDATE credits SET amount_cents = 1500 WHERE date = '2026-10-05'")
        with pytest.raises(rollforward.RollforwardMismatch, match="does not add up"):
            rollforward.build(ledger, "2026-10-01", "2026-10-31")
    args = ["report", "rollforward", "--from", "2026-10-01", "--to", "2026-10-31"]
    assert main([*args, "--database", database]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "does not add up" in captured.err
