"""A client's page: details, balance chart, and the history in date order with the balance after
each entry in that order, filtered or not (and the same rows for its CSV export).

One story whatever the view: entries are listed by the date they are dated (then by when they
were recorded), each with both dates, and the running balance is the balance at the end of that
entry in the order shown, so it always adds up down the page and equals the as-of balances the
chart draws. A page's first balance is the client's balance (or its as-of balance at the end of
the filter's last day); a deeper page's comes in the link to it, signed for the session (a
link that does not verify is recomputed from the entries).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from .. import errors
from ..model import Client
from ..rules import parse_day, parse_id
from ..store.console import ConsoleStore, HistoryEntry
from .charts import Chart, balance_points, step_chart
from .session import Staffer
from .web import Refused, Web

PAGE = 50


class Row(NamedTuple):
    """A history row: the entry, the balance after it in date order, when it was recorded."""

    item: HistoryEntry
    balance_cents: int
    recorded: str


def day(text: str | None) -> str:
    """A ``YYYY-MM-DD`` filter value, or "" when not given; a bad one is refused."""
    if not text:
        return ""
    parsed = parse_day(text.strip())
    if parsed is None:
        raise Refused(400, "Dates are written YYYY-MM-DD, e.g. 2026-09-30")
    return parsed


def recorded(at: str, tz: ZoneInfo | None) -> str:
    """When an entry was recorded, to the minute, in the console's zone."""
    moment = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def with_balances(entries: Iterable[HistoryEntry], top: int, tz: ZoneInfo | None) -> Iterator[Row]:
    """Rows newest first from the balance after the first (``top``), each the one before less
    the amount of the entry before it."""
    balance = top
    for item in entries:
        yield Row(item, balance, recorded(item.entry.created_at, tz))
        balance -= item.entry.amount_cents


class DailySeries:
    """Each client's net change per day, cached per process and brought up to date from the
    entries recorded since (a client's entries are numbered: only the newer ones are read, so
    the chart of a long history costs a full read once per process)."""

    def __init__(self, store: ConsoleStore, size: int = 256) -> None:
        self.store = store
        self.size = size
        self._cache: OrderedDict[int, tuple[int, dict[str, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, client_id: int) -> dict[str, int]:
        """The client's net change per day, every day with an entry."""
        with self._lock:
            seen, sums = self._cache.pop(client_id, (0, {}))
        newer, last = self.store.day_sums(client_id, seen)
        merged = dict(sums)
        for date, amount in newer.items():
            merged[date] = merged.get(date, 0) + amount
        with self._lock:
            self._cache[client_id] = (last, merged)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return merged


class ClientView:
    """A client's page and what it shares with its export."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.series = DailySeries(web.staff.console)

    @property
    def store(self) -> ConsoleStore:
        """The console's store part."""
        return self.web.staff.console

    def find_client(self, client_id: int) -> Client:
        """A client by id, or the "Client not found" page."""
        client = self.web.ledger.store.get_client(client_id)
        if client is None:
            raise Refused(404, errors.ClientNotFound.message, title="Client not found")
        return client

    def top_balance(self, client: Client, date_to: str) -> int:
        """The balance after the newest entry a view lists: the client's balance, or its
        balance at the end of the filter's last day (from the cached daily series)."""
        if not date_to:
            return client.balance_cents
        return sum(v for d, v in self.series.get(client.id).items() if d <= date_to)

    def balance_before(self, client_id: int, date: str, entry_id: int) -> int:
        """The balance just before an entry in date order: the days before its date from the
        cached daily series, and that day's entries with lower ids from the database."""
        earlier = sum(v for d, v in self.series.get(client_id).items() if d < date)
        return earlier + self.store.same_day_before(client_id, date, entry_id)

    def _key(self, who: Staffer, client_id: int, date: str, entry_id: int, balance: int) -> str:
        text = f"{client_id}|{date}|{entry_id}|{balance}"
        mac = hmac.new(who.csrf.encode(), text.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{date}_{entry_id}_{balance}_{mac}"

    def _read_key(
        self, who: Staffer, client_id: int, text: str, through: bool
    ) -> tuple[str, int, int]:
        """A page link's (date, id) and the balance it carries: just before that entry, or
        with ``through`` just after it (signed; an unsigned or foreign link's balance is
        recomputed from the entries)."""
        parts = text.split("_")
        date = parse_day(parts[0]) if parts else None
        entry_id = parse_id(parts[1]) if len(parts) > 1 else None
        if date is None or entry_id is None:
            raise Refused(400, "That page link is not valid")
        if len(parts) == 4 and parts[2].lstrip("-").isdigit() and len(parts[2]) < 20:
            balance = int(parts[2])
            if hmac.compare_digest(self._key(who, client_id, date, entry_id, balance), text):
                return date, entry_id, balance
        upto = entry_id + 1 if through else entry_id
        return date, entry_id, self.balance_before(client_id, date, upto)

    def _entries(
        self, who: Staffer, client: Client, date_from: str, date_to: str, q: Any
    ) -> tuple[list[HistoryEntry], int, bool, bool]:
        """The entries a page lists, the balance after its first, and whether there are newer
        and older ones (``before``: the page below a link's entry; ``after``: the page above)."""
        store = self.store
        if q.get("after"):
            date, entry_id, through = self._read_key(who, client.id, q["after"], through=True)
            newer = store.history_newer(client.id, date_from, date_to, (date, entry_id), PAGE + 1)
            if len(newer) > PAGE:
                shown = newer[1:]
                return shown, through + sum(e.entry.amount_cents for e in shown), True, True
        elif q.get("before"):
            date, entry_id, top = self._read_key(who, client.id, q["before"], through=False)
            found = store.history_dates(client.id, date_from, date_to, (date, entry_id), PAGE + 1)
            return found[:PAGE], top, True, len(found) > PAGE
        found = store.history_dates(client.id, date_from, date_to, None, PAGE + 1)
        return found[:PAGE], self.top_balance(client, date_to), False, len(found) > PAGE

    def page(
        self,
        request: Request,
        who: Staffer,
        client: Client,
        *,
        status: int = 200,
        error: str = "",
        field: str = "",
        values: dict[str, str] | None = None,
    ) -> Response:
        """Render a client's page (also after a refused change, with the form's values and the
        field in error)."""
        q = request.query_params
        date_from, date_to = day(q.get("from")), day(q.get("to"))
        entries, top, has_newer, has_older = self._entries(who, client, date_from, date_to, q)
        rows = list(with_balances(entries, top, self.web.ledger.tz))
        older = newer = ""
        if rows and has_older:
            last = rows[-1]
            balance = last.balance_cents - last.item.entry.amount_cents
            older = self._key(who, client.id, last.item.entry.date, last.item.entry.id, balance)
        if rows and has_newer:
            first = rows[0]
            newer = self._key(
                who, client.id, first.item.entry.date, first.item.entry.id, first.balance_cents
            )
        filters = {k: v for k, v in (("from", date_from), ("to", date_to)) if v}
        ledger = self.web.ledger
        own, default = ledger.store.grants.threshold_of(client.id, client.currency_code)
        return self.web.render(
            "client.html",
            who,
            status,
            client=client,
            rows=rows,
            spent=self.spent(client.id, entries),
            categories=ledger.categories(),
            grants=ledger.open_grants(client.id, 50),
            split=ledger.client_categories(client),
            threshold=own,
            default_threshold=default,
            older=older,
            newer=newer,
            filters=filters,
            date_from=date_from,
            date_to=date_to,
            chart=self.chart(client),
            error=error,
            field=field,
            values=values or {},
            today=self.web.ledger.today(),
            token=self.web.form_token(),
            requests=[
                r for r in self.web.approvals.store.of_client(client.id) if r.status == "pending"
            ],
        )

    def spent(
        self, client_id: int, entries: list[HistoryEntry]
    ) -> dict[int, list[tuple[int, int]]]:
        """What the page's removals, expiries and restores moved, by entry number: (grant entry
        id, cents) each."""
        seqs = [h.seq for h in entries if h.entry.kind in ("removal", "expiry", "restore")]
        if not seqs:
            return {}
        found = self.web.ledger.store.grants.allocations(client_id, min(seqs), max(seqs))
        return {seq: [(grant, cents) for _, grant, cents in moves] for seq, moves in found.items()}

    def chart(self, client: Client) -> Chart:
        """The client's balance over its whole history, day by day, to today."""
        points = balance_points(self.series.get(client.id))
        title = f"Balance of {client.firstname} {client.lastname} ({client.currency_code})"
        return step_chart(points, title, client.currency_code, self.web.ledger.today())

    def rows(self, client: Client, date_from: str, date_to: str) -> Iterator[Row]:
        """Every row a view lists, every page, for its export."""
        entries = self.store.iter_history(client.id, date_from, date_to)
        return with_balances(entries, self.top_balance(client, date_to), self.web.ledger.tz)
