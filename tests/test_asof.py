"""Balances as of a date: GetCredits, GetClientsDetails and `creditbook balances --asof`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import creditbook
from creditbook.cli import main
from creditbook.http import App
from helpers import ACTOR, Seed, asgi

_emails = itertools.count()
DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=d) for d in range(0, 120, 7)]


def call(app: App, s: Seed, **params: Any) -> dict[str, Any]:
    data = {"identifier": s.identifier, "secret": s.secret, **params}
    result: dict[str, Any] = asgi(app, data=data).json()
    return result


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    history=st.lists(
        st.tuples(st.sampled_from(DAYS), st.integers(min_value=1, max_value=50_000)),
        min_size=1,
        max_size=25,
    ),
    asof=st.sampled_from([*DAYS, dt.date(2025, 12, 31), dt.date(2026, 12, 31)]),
)
def test_asof_agrees_with_a_brute_force_sum(
    book: creditbook.Creditbook, app: App, seeded: Seed, history: list[Any], asof: dt.date
) -> None:
    """For random backdated histories and days, every asof figure is the sum of the entries
    dated up to that day (the client is fresh for each example)."""
    client = book.ledger.add_client(
        firstname="A", lastname="S", email=f"asof{next(_emails)}@example.com", actor=ACTOR
    ).client_id
    for day, cents in history:
        book.ledger.add_credit(
            clientid=str(client),
            amount=f"{cents // 100}.{cents % 100:02d}",
            description="x",
            date=day.isoformat(),
            actor=ACTOR,
        )
    expected = sum(c for d, c in history if d <= asof)
    wire = f"{expected // 100}.{expected % 100:02d}"
    details = call(app, seeded, action="GetClientsDetails", clientid=client, asof=asof.isoformat())
    assert (details["credit"], details["client"]["credit"], details["asof"]) == (
        wire,
        wire,
        asof.isoformat(),
    )
    got = call(app, seeded, action="GetCredits", clientid=client, asof=asof.isoformat())
    listed = got["credits"]["credit"]
    assert got["balance"] == wire
    assert got["totalresults"] == len(listed) == sum(1 for d, _ in history if d <= asof)
    assert all(e["date"] <= asof.isoformat() for e in listed)
    page = call(
        app,
        seeded,
        action="GetCredits",
        clientid=client,
        asof=asof.isoformat(),
        limitstart=1,
        limitnum=2,
    )
    assert [e["id"] for e in page["credits"]["credit"]] == [e["id"] for e in listed[1:3]]
    rows = {b.client_id: b.balance_cents for b in book.ledger.balances_asof(asof.isoformat())}
    assert rows[client] == expected


def test_asof_errors(app: App, seeded: Seed) -> None:
    """A malformed asof is the usual date error; no asof changes nothing."""
    for bad in ("2026-02-30", "yesterday", "2026-1-1"):
        got = call(app, seeded, action="GetClientsDetails", clientid=seeded.client_id, asof=bad)
        assert got == {"result": "error", "message": "Date Format is not Valid"}
    plain = call(app, seeded, action="GetClientsDetails", clientid=seeded.client_id)
    assert "asof" not in plain


def test_balances_command(
    book: creditbook.Creditbook, seeded: Seed, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """balances --asof: a table with totals per currency, and CSV safe for spreadsheets."""
    other = book.ledger.add_client(
        firstname="=cmd|' /C calc'!A0",
        lastname="X",
        email="eur@example.com",
        currency="EUR",
        actor=ACTOR,
    ).client_id
    for client, amount, day in (
        (seeded.client_id, "10", "2026-01-31"),
        (seeded.client_id, "5", "2026-02-01"),
        (other, "7.25", "2026-01-15"),
    ):
        book.ledger.add_credit(
            clientid=str(client), amount=amount, description="d", date=day, actor=ACTOR
        )
    capsys.readouterr()
    assert main(["balances", "--asof", "2026-01-31", "--database", database]) == 0
    out = capsys.readouterr().out
    assert "Total USD: 10.00 owed to 1 client(s)" in out
    assert "Total EUR: 7.25 owed to 1 client(s)" in out
    assert (
        main(["balances", "--asof", "2026-01-31", "--format", "csv", "--database", database]) == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["clientid"], r["balance"]) for r in rows] == [
        (str(seeded.client_id), "10.00"),
        (str(other), "7.25"),
    ]
    assert rows[1]["firstname"] == "'=cmd|' /C calc'!A0"
    assert main(["balances", "--asof", "2026-13-01", "--database", database]) == 1
