"""The console's read pages: overview, clients, a client's page, activity (CSV: ``lists.py``)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors
from ..model import Client
from ..rules import check_text, day_after, parse_day, parse_id
from .charts import line_chart
from .session import Staffer
from .web import Refused, Web

PAGE = 50
CLIENTS_PAGE = 25
STATUSES = ("Active", "Inactive", "Closed")
SORTS = {
    "name": "Name A-Z",
    "-name": "Name Z-A",
    "-balance": "Balance, highest first",
    "balance": "Balance, lowest first",
    "-id": "Newest",
    "id": "Oldest",
}
#: The overview's 90-day chart is recomputed at most this often per process (seconds).
CHART_TTL = 30.0


def day(text: str | None) -> str:
    """A ``YYYY-MM-DD`` filter value, or "" when not given; a bad one is refused."""
    if not text:
        return ""
    parsed = parse_day(text)
    if parsed is None:
        raise Refused(400, "Dates are YYYY-MM-DD")
    return parsed


def number(text: str | None, default: int = 0) -> int:
    """A non-negative whole number from the query string."""
    value = parse_id(text) if text else None
    return default if value is None else value


class ReadPages:
    """Overview, clients, client page and activity."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self._chart: tuple[float, Any] | None = None

    def routes(self) -> list[Route]:
        """The routes of the read pages."""
        g = self.web.guard
        return [
            Route("/", g()(self.overview)),
            Route("/clients", g()(self.clients)),
            Route("/clients/{client_id:int}", g()(self.client)),
            Route("/activity", g()(self.activity)),
        ]

    # --- overview --------------------------------------------------------------------------

    def overview(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The overview: credit owed per currency, its 90-day chart, the last 20 changes."""
        store = self.web.staff.console
        totals = store.totals()
        return self.web.render(
            "overview.html",
            who,
            totals=totals,
            recent=store.recent(20),
            charts=self._overview_charts(totals),
        )

    def _overview_charts(self, totals: list[Any]) -> Any:
        now = time.monotonic()
        if self._chart is not None and now - self._chart[0] < CHART_TTL:
            return self._chart[1]
        today = dt.date.fromisoformat(self.web.ledger.today())
        days = [(today - dt.timedelta(days=89 - i)).isoformat() for i in range(90)]
        since = (today - dt.timedelta(days=90)).isoformat()
        created = (dt.datetime.now(dt.UTC) - dt.timedelta(days=92)).isoformat()
        changes: dict[str, dict[str, int]] = {}
        for date, currency, amount in self.web.staff.console.daily_changes(since, created):
            changes.setdefault(currency, {})[date] = amount
        charts = []
        for total in totals:
            moves = changes.get(total.currency, {})
            later = sum(a for d, a in moves.items() if d > days[-1])
            points = []
            for d in reversed(days):
                points.append((d, total.balance_cents - later))
                later += moves.get(d, 0)
            points.reverse()
            title = f"Total credit owed in {total.currency} over the last 90 days"
            charts.append((total.currency, line_chart(points, title, total.currency)))
        self._chart = (now, charts)
        return charts

    # --- clients ---------------------------------------------------------------------------

    def clients(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The client list: search, status filter, sort order, keyset pages."""
        q = request.query_params
        search, status, sort = client_filters(q)
        key = _client_key(sort, q.get("after", ""))
        total, clients = self.web.staff.console.client_page(
            sort, key, CLIENTS_PAGE + 1, search, status
        )
        more = len(clients) > CLIENTS_PAGE
        clients = clients[:CLIENTS_PAGE]
        if total is None and not more and not q.get("after"):
            total = len(clients)  # a search that fits on one page: counted exactly
        after = _key_of(sort, clients[-1]) if more and clients else ""
        return self.web.render(
            "clients.html",
            who,
            clients=clients,
            total=total,
            search=search,
            status=status,
            sort=sort,
            sorts=SORTS,
            statuses=STATUSES,
            after=after,
            paged=bool(q.get("after")),
        )

    # --- one client ------------------------------------------------------------------------

    def find_client(self, client_id: int) -> Client:
        """A client by id, or a 404 page."""
        client = self.web.ledger.store.get_client(client_id)
        if client is None:
            raise Refused(404, errors.ClientNotFound.message)
        return client

    def client(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """A client's page."""
        return self.client_page(request, who, int(request.path_params["client_id"]))

    def client_page(
        self,
        request: Request,
        who: Staffer,
        client_id: int,
        *,
        status: int = 200,
        error: str = "",
        values: dict[str, str] | None = None,
        notice: str = "",
    ) -> Response:
        """Render a client's page (also after a refused change, with the form's values)."""
        client = self.find_client(client_id)
        q = request.query_params
        date_from, date_to = day(q.get("from")), day(q.get("to"))
        store = self.web.staff.console
        older = ""
        if date_from or date_to:
            # A date range walks the date index: newest date first, keyed on (date, id).
            entries = store.history_dates(
                client_id, date_from, date_to, _date_key(q.get("before", "")), PAGE + 1
            )
            if len(entries) > PAGE:
                older = f"{entries[PAGE - 1].entry.date}_{entries[PAGE - 1].entry.id}"
        else:
            entries = store.history(client_id, number(q.get("before"), 2**62), PAGE + 1)
            if len(entries) > PAGE:
                older = str(entries[PAGE - 1].seq)
        entries = entries[:PAGE]
        chart = line_chart(
            store.balance_samples(client_id),
            f"Balance of client {client.id} over time",
            client.currency_code,
        )
        filters = {k: v for k, v in (("from", date_from), ("to", date_to)) if v}
        return self.web.render(
            "client.html",
            who,
            status,
            client=client,
            entries=entries,
            older=older,
            paged=bool(q.get("before")),
            filters=filters,
            date_from=date_from,
            date_to=date_to,
            chart=chart,
            error=error,
            notice=notice or _notice(q.get("done", "")),
            values=values or {},
            today=self.web.ledger.today(),
        )

    # --- activity --------------------------------------------------------------------------

    def activity(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The activity log, filtered and paged."""
        q = request.query_params
        where, filters = self.activity_filters(q)
        before = number(q.get("before"), 2**62)
        lines = self.web.staff.console.activity_page(**where, before=before, limit=PAGE + 1)
        older = lines[PAGE - 1].id if len(lines) > PAGE else 0
        return self.web.render(
            "activity.html",
            who,
            lines=lines[:PAGE],
            older=older,
            paged=before != 2**62,
            filters=filters,
        )

    def activity_filters(self, q: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """The activity filters of a query string: for the store, and for links."""
        client_id = number(q.get("client"))
        admin_name = q.get("admin", "")[:64].strip()
        admin_id = 0
        if admin_name:
            admin = self.web.ledger.find_admin(admin_name)
            admin_id = admin.id if admin is not None else -1
        date_from, date_to = day(q.get("from")), day(q.get("to"))
        at_to = "9999-12-32"
        if date_to:
            at_to = day_after(date_to)
        where = {"client_id": client_id, "admin_id": admin_id, "at_from": date_from, "at_to": at_to}
        filters = {
            k: v
            for k, v in (
                ("client", str(client_id) if client_id else ""),
                ("admin", admin_name),
                ("from", date_from),
                ("to", date_to),
            )
            if v
        }
        return where, filters


def client_filters(q: Mapping[str, str]) -> tuple[str, str, str]:
    """The client list's search, status and sort order from a query string."""
    search = q.get("q", "")[:100].strip()
    status = q.get("status", "")
    sort = q.get("sort", "name")
    return search, status if status in STATUSES else "", sort if sort in SORTS else "name"


def _date_key(text: str) -> tuple[str, int] | None:
    """Decode a date-filtered history's ``before`` key, ``YYYY-MM-DD_ID``."""
    if not text:
        return None
    date, _, entry_id = text.partition("_")
    number = parse_id(entry_id)
    if parse_day(date) is None or number is None:
        raise Refused(400, "That page link is not valid")
    return date, number


def _notice(done: str) -> str:
    return {
        "credit": "Credit saved.",
        "reversed": "Entry reversed.",
    }.get(done, "")


def _client_key(sort: str, text: str) -> dict[str, Any] | None:
    """Decode the ``after`` key of a client page (the last row's sort columns)."""
    if not text:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(text[:1000].encode("ascii")))
    except (ValueError, UnicodeError, RecursionError):
        parts = None
    if not isinstance(parts, list) or not parts or not _whole(parts[-1]):
        raise Refused(400, "That page link is not valid")
    if sort in ("name", "-name") and len(parts) == 3:
        if all(isinstance(p, str) and _storable(p) for p in parts[:2]):
            return {"k_last": parts[0], "k_first": parts[1], "k_id": parts[2]}
    elif sort in ("balance", "-balance") and len(parts) == 2 and _whole(parts[0]):
        return {"k_balance": parts[0], "k_id": parts[1]}
    elif sort in ("id", "-id") and len(parts) == 1:
        return {"k_id": parts[0]}
    raise Refused(400, "That page link is not valid")


def _storable(text: str) -> bool:
    """Text a stored name can be (no NUL, no lone surrogate): anything else matches nothing."""
    try:
        check_text(text, "key")
    except errors.CreditError:
        return False
    return True


def _whole(value: object) -> bool:
    """A whole number a database column can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62


def _key_of(sort: str, client: Client) -> str:
    """Encode a client's sort columns as the next page's ``after`` key."""
    parts = list(key_after(sort, client).values())
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode("ascii")


def key_after(sort: str, client: Client) -> dict[str, Any]:
    """A client's sort columns: the key of the page after it."""
    if sort in ("name", "-name"):
        return {"k_last": client.lastname, "k_first": client.firstname, "k_id": client.id}
    if sort in ("balance", "-balance"):
        return {"k_balance": client.balance_cents, "k_id": client.id}
    return {"k_id": client.id}
