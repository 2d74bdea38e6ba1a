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
from creditbook.store import console_sql as CS
from creditbook.store import queries as Q
from creditbook.store import reads
from helpers import ACTOR, Seed, asgi, query_plan

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


def test_both_sides_of_the_date_index_agree(
    book: creditbook.Creditbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """balances --asof reads either side of the date index, a client's asof figures its own
    entries or the walk of the later ones; all give the count and sum of the entries dated up
    to the day, removals and backdated entries included, clients without any."""
    history: dict[int, list[tuple[str, int]]] = {}
    for n in range(4):
        client = book.ledger.add_client(
            firstname="B", lastname=str(n), email=f"sides{n}@example.com", actor=ACTOR
        ).client_id
        history[client] = []
        for k, day in enumerate(DAYS[n : n + 6] if n < 3 else []):
            cents = 1000 * (k + 1)
            book.ledger.add_credit(
                clientid=str(client),
                amount=str(cents // 100),
                description="in",
                date=day.isoformat(),
                actor=ACTOR,
            )
            history[client].append((day.isoformat(), cents))
        if history[client]:
            day = DAYS[n + 2].isoformat()
            book.ledger.add_credit(
                clientid=str(client),
                amount="5",
                type="remove",
                description="out",
                date=day,
                actor=ACTOR,
            )
            history[client].append((day, -500))
    store: Any = book.store
    for day in [dt.date(2025, 12, 31), *DAYS[:10], dt.date(2026, 12, 31)]:
        until = day.isoformat()
        expected = {c: sum(v for d, v in h if d <= until) for c, h in history.items()}
        chosen = {b.client_id: b.balance_cents for b in book.ledger.balances_asof(until)}
        assert {c: chosen[c] for c in history} == expected, until
        for later in (True, False):
            with monkeypatch.context() as m:
                m.setattr(store, "_later_side_shorter", lambda stream, until, v=later: v)
                got = {b.client_id: b.balance_cents for b in book.ledger.balances_asof(until)}
            assert got == chosen, (later, until)
        counts = {c: sum(1 for d, _ in h if d <= until) for c, h in history.items()}
        for walk in (True, False):
            with monkeypatch.context() as m:
                m.setattr(store, "_walk_after", lambda cur, client_id, until, v=walk: v)
                got = {c: store.credits_until(c, until) for c in history}
            assert got == {c: (counts[c], expected[c]) for c in history}, (walk, until)
        with monkeypatch.context() as m:  # every client large enough to weigh the walk
            m.setattr(reads, "_OWN_ENTRIES", 0)
            got = {c: store.credits_until(c, until) for c in history}
        assert got == {c: (counts[c], expected[c]) for c in history}, until


def test_asof_reads_use_indexes(sqlite_database: str) -> None:
    """SQLite: a client's asof sum reads its own entries; every client's, one side of the date
    index (no scan of the entries)."""
    book = creditbook.open(sqlite_database)
    try:
        store: Any = book.store
        plans = {
            q: query_plan(store, q, client_id=1, until="2026-01-31", skip=0)
            for q in (Q.CREDIT_TOTAL_UNTIL, Q.CREDIT_NTH_UNTIL, Q.CREDIT_TOTAL_UNTIL_WALK)
        }
        for q in (Q.ASOF_SUMS_LATER, Q.ASOF_SUMS_UNTIL, Q.ENTRY_ID_RANGE, Q.ENTRY_DATE_AT):
            plans[q] = query_plan(store, q, until="2026-01-31", at=1)
        assert "credits_by_client_seq" in plans[Q.CREDIT_TOTAL_UNTIL], plans
        assert "credits_by_client_seq" in plans[Q.CREDIT_NTH_UNTIL], plans
        assert "COVERING INDEX credits_by_date" in plans[Q.CREDIT_TOTAL_UNTIL_WALK], plans
        for q in (Q.ASOF_SUMS_LATER, Q.ASOF_SUMS_UNTIL):
            assert plans[q].startswith("SEARCH credits USING COVERING INDEX credits_by_date"), plans
        assert "SCAN credits" not in plans[Q.ENTRY_ID_RANGE] + plans[Q.ENTRY_DATE_AT], plans
    finally:
        book.close()


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
    assert "Total USD: 10.00 owed to 1 client" in out
    assert "Total EUR: 7.25 owed to 1 client" in out
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


def test_both_walks_of_a_date_filtered_history_agree(book: creditbook.Creditbook) -> None:
    """The console's date-filtered history reads the client's entries or walks the date index
    (by the client's share of the ledger); both give the same pages, newest date first."""
    clients = [
        book.ledger.add_client(
            firstname="W", lastname=str(n), email=f"walk{n}@example.com", actor=ACTOR
        ).client_id
        for n in range(4)
    ]
    for i in range(61):  # three clients of 20 entries, backdated out of order; one of 1
        book.ledger.add_credit(
            clientid=str(clients[i % 3 if i < 60 else 3]),
            amount="1",
            description=f"e{i}",
            date=(DAYS[0] + dt.timedelta(days=i * 7 % 40)).isoformat(),
            actor=ACTOR,
        )
    store: Any = book.store
    with store._read() as cur:
        shares = [store._run(cur, CS.CLIENT_SHARE, client_id=c).fetchone() for c in clients]
    last = max(e.id for c in clients for e in book.ledger.get_credits(str(c))[2])
    assert [(int(n), int(m)) for n, m in shares] == [(20, last)] * 3 + [(1, last)]

    def page(query: str, client: int, span: tuple[str, str], key: tuple[str, int]) -> list[int]:
        with store._read() as cur:
            rows = store._run(
                cur,
                query,
                client_id=client,
                date_from=span[0],
                date_to=span[1],
                k_date=key[0],
                k_id=key[1],
                limit=4,
            ).fetchall()
        return [int(r[0]) for r in rows]

    for client in clients:
        for span in (("2026-01-01", "2026-12-31"), ("2026-01-10", "2026-01-25")):
            key, seen = ("9999-99-99", 2**62), []
            while True:
                own = page(CS.HISTORY_DATES, client, span, key)
                assert own == page(CS.HISTORY_DATES_WALK, client, span, key), (client, span)
                chosen = store.history_dates(client, span[0], span[1], key, 4)
                assert [h.entry.id for h in chosen] == own
                if not own:
                    break
                seen += own
                key = (chosen[-1].entry.date, chosen[-1].entry.id)
            expected = sorted(
                (
                    e
                    for e in book.ledger.get_credits(str(client))[2]
                    if span[0] <= e.date <= span[1]
                ),
                key=lambda e: (e.date, e.id),
                reverse=True,
            )
            assert seen == [e.id for e in expected]
