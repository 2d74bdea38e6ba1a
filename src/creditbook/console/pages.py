"""The console's read pages: overview, clients, a client's page (``client_page.py``), an entry,
activity (CSV: ``lists.py``)."""

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
from ..rules import check_text, client_keys, day_after, fold, parse_id
from .charts import step_chart
from .client_page import ClientView, day, recorded
from .session import Staffer
from .web import Refused, Web

PAGE = 50
CLIENTS_PAGE = 25
STATUSES = ("Active", "Inactive", "Closed")
SORTS = {
    "name": "Name A-Z",
    "-name": "Name Z-A",
    "-balance": "Balance, highest first (by currency)",
    "balance": "Balance, lowest first (by currency)",
    "-id": "Newest",
    "id": "Oldest",
}
#: The overview's 90-day chart is recomputed at most this often per process (seconds).
CHART_TTL = 30.0
#: What each kind of activity line is called (credits by their sign, below).
ACTIONS = {
    "addclient": "Client created",
    "updateclient": "Client updated",
    "addadmin": "Admin added",
    "adminaccess": "Admin access changed",
    "disableadmin": "Admin enabled or disabled",
    "adminpassword": "Admin password set",
    "addcredential": "Credential created",
    "revokecredential": "Credential revoked",
    "putrole": "Role saved",
    "setconfig": "Setting changed",
    "allowip": "Address allowed",
    "denyip": "Address removed",
    "unban": "Login bans lifted",
    "import": "Import",
}


def number(text: str | None, default: int = 0) -> int:
    """A non-negative whole number from the query string."""
    value = parse_id(text) if text else None
    return default if value is None else value


def action_label(action: str, detail: str) -> str:
    """An activity line's kind in words: a credit says whether it added, removed or reversed."""
    if action == "addcredit":
        if "Reversal of entry #" in detail:
            return "Reversal"
        return "Credit removed" if detail.startswith("Removed") else "Credit added"
    return ACTIONS.get(action, action)


class ReadPages:
    """Overview, clients, client page and activity."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.view = ClientView(web)
        self._chart: tuple[float, Any] | None = None

    def routes(self) -> list[Route]:
        """The routes of the read pages."""
        g = self.web.guard
        return [
            Route("/", g()(self.overview)),
            Route("/clients", g()(self.clients)),
            Route("/clients/{client_id:int}", g()(self.client)),
            Route("/entries/{entry_id:int}", g()(self.entry)),
            Route("/activity", g()(self.activity)),
        ]

    # --- overview --------------------------------------------------------------------------

    def overview(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The overview: credit owed per currency, its 90-day chart, the last 20 changes."""
        store = self.web.staff.console
        totals = store.totals()
        grants = self.web.ledger.store.grants
        others = grants.totals_by_category()
        split = {
            t.currency: {"paid": t.balance_cents - sum(others.get(t.currency, {}).values()),
                         **others.get(t.currency, {})}
            for t in totals
        }  # fmt: skip
        today = dt.date.fromisoformat(self.web.ledger.today())
        until = (today + dt.timedelta(days=30)).isoformat()
        return self.web.render(
            "overview.html",
            who,
            totals=totals,
            split=split,
            expiring=grants.expiring_between(today.isoformat(), until),
            expiring_until=until,
            recent=store.recent(20),
            charts=self._overview_charts(totals),
        )

    def _overview_charts(self, totals: list[Any]) -> Any:
        """Each currency's total credit at the end of each of the last 90 days, as a step chart
        (a currency with no credit and no change in the window draws none).

        The totals are today's, less the entries dated after each day among those recorded in
        the last 92 days (found by bisecting ids: older history costs nothing).
        """
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
            if not total.balance_cents and not any(moves.values()):
                continue
            later = sum(a for d, a in moves.items() if d > days[-1])
            ends = []
            for d in reversed(days):
                ends.append((d, total.balance_cents - later))
                later += moves.get(d, 0)
            ends.reverse()
            points = [p for i, p in enumerate(ends) if i == 0 or p[1] != ends[i - 1][1]]
            title = f"Total credit owed in {total.currency}, day by day, last 90 days"
            chart = step_chart(points, title, total.currency, days[-1])
            charts.append((total.currency, chart))
        self._chart = (now, charts)
        return charts

    # --- clients ---------------------------------------------------------------------------

    def clients(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The client list: search, status filter, sort order, keyset pages."""
        q = request.query_params
        search, status, sort = client_filters(q)
        key = _client_key(sort, q.get("after", ""))
        total, clients = self.web.staff.console.client_page(
            sort, key, CLIENTS_PAGE + 1, fold(search), status
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

    # --- one client, one entry ----------------------------------------------------------------

    def client(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """A client's page."""
        client = self.view.find_client(int(request.path_params["client_id"]))
        return self.view.page(request, who, client)

    def entry(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """One entry: its dates, amount, who made it, and the reversal it has or reverses."""
        found = self.web.staff.entry(int(request.path_params["entry_id"]))
        client = self.view.find_client(found.entry.client_id)
        when = recorded(found.entry.created_at, self.web.ledger.tz)
        spent = self.view.spent(client.id, [found]).get(found.seq, [])
        return self.web.render(
            "entry.html", who, item=found, client=client, recorded=when, spent=spent
        )

    # --- activity --------------------------------------------------------------------------

    def activity(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The activity log, filtered (a client by id or name) and paged both ways."""
        q = request.query_params
        where, filters, matches = self.activity_filters(q)
        store = self.web.staff.console
        after = number(q.get("after"))
        if after:
            lines = store.activity_newer(**where, after=after, limit=PAGE + 1)
            newer = len(lines) > PAGE
            lines = lines[-PAGE:] if newer else lines
            older = bool(lines)
        else:
            before = number(q.get("before"), 2**62)
            lines = store.activity_page(**where, before=before, limit=PAGE + 1)
            older, newer = len(lines) > PAGE, before != 2**62
            lines = lines[:PAGE]
        names = self._client_names({a.client_id for a in lines if a.client_id})
        credentials = {f"credential:{c.identifier}": c.description
                       for c, _ in self.web.ledger.list_credentials()}  # fmt: skip
        shown = [
            (a, action_label(a.action, a.detail), names.get(a.client_id, ""),
             credentials.get(a.actor) or ("API credential" if a.actor.startswith("credential:")
                                          else a.actor))
            for a in lines
        ]  # fmt: skip
        return self.web.render(
            "activity.html",
            who,
            lines=shown,
            older=lines[-1].id if older and lines else 0,
            newer=lines[0].id if newer and lines else 0,
            filters=filters,
            matches=matches,
        )

    def _client_names(self, ids: set[int]) -> dict[int, str]:
        """The names of the clients a page of lines names (at most a page's worth)."""
        names = {}
        for client_id in ids:
            client = self.web.ledger.store.get_client(client_id)
            if client is not None:
                names[client_id] = f"{client.firstname} {client.lastname}"
        return names

    def activity_filters(
        self, q: Mapping[str, str]
    ) -> tuple[dict[str, Any], dict[str, str], list[Client]]:
        """The activity filters of a query string: for the store, for links, and the clients a
        client name matches when it matches several (or none: then nothing is listed)."""
        text = q.get("client", "")[:100].strip()
        client_id, matches = 0, []
        if text.isascii() and text.isdigit():
            client_id = number(text, -1)
        elif text:
            _, found = self.web.staff.console.client_page("name", None, 6, fold(text), "")
            client_id = found[0].id if len(found) == 1 else -1
            matches = found if len(found) > 1 else []
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
            for k, v in (("client", text), ("admin", admin_name), ("from", date_from),
                         ("to", date_to))
            if v
        }  # fmt: skip
        return where, filters, matches


#: The client list's filter of balances below their low-balance alert (beside the statuses).
BELOW = "below"


def client_filters(q: Mapping[str, str]) -> tuple[str, str, str]:
    """The client list's search, status and sort order from a query string."""
    search = q.get("q", "")[:100].strip()
    status = q.get("status", "")
    sort = q.get("sort", "name")
    known = status in STATUSES or status == BELOW
    return search, status if known else "", sort if sort in SORTS else "name"


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
    if sort in ("name", "-name") and len(parts) == 2:
        if isinstance(parts[0], str) and _storable(parts[0]):
            return {"k_sort": parts[0], "k_id": parts[1]}
    elif sort in ("balance", "-balance") and len(parts) == 3 and _whole(parts[1]):
        if isinstance(parts[0], str) and _storable(parts[0]):
            return {"k_currency": parts[0], "k_balance": parts[1], "k_id": parts[2]}
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
        _, sort_key = client_keys(client.firstname, client.lastname, "", "")
        return {"k_sort": sort_key, "k_id": client.id}
    if sort in ("balance", "-balance"):
        return {
            "k_currency": client.currency_code,
            "k_balance": client.balance_cents,
            "k_id": client.id,
        }
    return {"k_id": client.id}
