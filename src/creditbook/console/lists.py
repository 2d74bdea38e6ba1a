"""CSV of exactly what a list shows, every page of it, streamed: the client list, the activity
log and a client's history. Text cells are neutralised against spreadsheet formulas; amounts
stay numbers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..exports import safe_cell
from ..model import Client
from ..money import format_cents
from ..rules import fold
from ..store.grants import GrantStore
from .client_page import Row, day
from .pages import ReadPages, client_filters, key_after
from .session import Staffer
from .web import Web

BATCH = 1000


def csv_response(
    name: str, header: list[str], rows: Iterable[list[Any]], bom: bool = False
) -> StreamingResponse:
    """A streamed CSV download (a worker thread writes it: the rows come from the database);
    ``bom`` starts it with a UTF-8 byte order mark, which spreadsheets read as "UTF-8"."""

    def lines() -> Iterator[bytes]:
        buffer = io.StringIO()
        if bom:
            buffer.write("\ufeff")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        for count, row in enumerate(rows, start=1):
            writer.writerow(row)
            if count % BATCH == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "cache-control": "no-store",
        },
    )


def file_name(stem: str, parts: Iterable[tuple[str, str]]) -> str:
    """A download's name that says its filter: ``client-3-credits-2026-09-01-to-2026-10-31``."""
    words = [stem]
    given = dict(parts)
    if given.get("from") and given.get("to"):
        words.append(f"{given.pop('from')}-to-{given.pop('to')}")
    for key, value in given.items():
        if value:
            words.append(f"{key}-{value}" if key in ("from", "to", "status", "q") else value)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(words)).strip("-.")[:150]
    return f"{safe or stem}.csv"


def history_rows(
    client: Client, rows: Iterable[Row], grants: GrantStore | None = None
) -> Iterator[list[Any]]:
    """A client's history as CSV rows, as the page lists it (balances in date order), with
    each grant's category, expiry and what is left, and what each removal took from which."""
    name = safe_cell(f"{client.firstname} {client.lastname}")
    for chunk in _chunks(rows, 500):
        spending = [
            r.item.seq for r in chunk if r.item.entry.kind in ("removal", "expiry", "restore")
        ]
        moves = (
            grants.allocations(client.id, min(spending), max(spending))
            if spending and grants
            else {}
        )
        for row in chunk:
            yield _history_row(client, name, row, moves.get(row.item.seq, []))


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _history_row(
    client: Client, name: str, row: Row, moves: list[tuple[int, int, int]]
) -> list[Any]:
    item, e = row.item, row.item.entry
    grant = e.is_grant
    return [
        e.id,
        row.recorded,
        e.date,
        safe_cell(e.description),
        format_cents(e.amount_cents),
        client.currency_code,
        format_cents(row.balance_cents),
        safe_cell(item.actor),
        client.id,
        name,
        item.reversed_by or ("yes" if item.reversed else ""),
        item.reverses or "",
        "grant" if grant else (e.kind or "removal"),
        (e.category or "paid") if grant else e.category,
        e.expires,
        format_cents(e.remaining) if grant else "",
        "; ".join(f"#{gid} {format_cents(abs(cents))}" for _, gid, cents in moves),
    ]


HISTORY_HEADER = [
    "id",
    "recorded",
    "date",
    "description",
    "amount",
    "currency",
    "balance",
    "by",
    "client_id",
    "client",
    "reversed_by",
    "reverses",
    "kind",
    "category",
    "expires",
    "remaining",
    "grants",
]


class ListExports:
    """``/admin/clients.csv`` and ``/admin/activity.csv``, with the pages' own filters."""

    def __init__(self, web: Web, pages: ReadPages) -> None:
        self.web = web
        self.pages = pages

    def routes(self) -> list[Route]:
        """The list exports' routes."""
        g = self.web.guard()
        return [
            Route("/clients.csv", g(self.clients)),
            Route("/activity.csv", g(self.activity)),
            Route("/clients/{client_id:int}/export.csv", g(self.history)),
        ]

    def _bom(self, request: Request) -> bool:
        """Whether to start a download with a UTF-8 byte order mark (``bom=1``, or the shared
        setting ``csv_bom``)."""
        asked = request.query_params.get("bom", "")
        if asked:
            return asked in ("1", "yes", "on", "true")
        return self.web.policy.settings.get("csv_bom", "no") == "yes"

    def history(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """A client's history as CSV, as the client page lists it (with its date filter)."""
        view = self.pages.view
        client = view.find_client(int(request.path_params["client_id"]))
        q = request.query_params
        date_from, date_to = day(q.get("from")), day(q.get("to"))
        name = file_name(f"client-{client.id}-credits", [("from", date_from), ("to", date_to)])
        rows = history_rows(
            client, view.rows(client, date_from, date_to), self.web.ledger.store.grants
        )
        return csv_response(name, HISTORY_HEADER, rows, self._bom(request))

    def clients(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The client list as CSV: every client it matches, in its order."""
        search, status, sort = client_filters(request.query_params)
        store = self.web.staff.console

        def rows() -> Iterator[list[Any]]:
            key: dict[str, Any] | None = None
            while True:
                _, page = store.client_page(sort, key, BATCH, fold(search), status)
                for c in page:
                    yield [
                        c.id,
                        safe_cell(c.firstname),
                        safe_cell(c.lastname),
                        safe_cell(c.companyname),
                        safe_cell(c.email),
                        c.status,
                        c.currency_code,
                        format_cents(c.balance_cents),
                        c.created_at,
                    ]
                if len(page) < BATCH:
                    return
                key = key_after(sort, page[-1])

        header = ["id", "firstname", "lastname", "companyname", "email", "status", "currency"]
        name = file_name("clients", [("q", search), ("status", status.lower())])
        return csv_response(name, [*header, "balance", "created_at"], rows(), self._bom(request))

    def activity(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The activity log as CSV: every line the filter matches, newest first."""
        where, filters, _ = self.pages.activity_filters(request.query_params)
        store = self.web.staff.console

        def rows() -> Iterator[list[Any]]:
            before = 2**62
            while True:
                page = store.activity_page(**where, before=before, limit=BATCH)
                for a in page:
                    yield [
                        a.id,
                        a.at,
                        safe_cell(a.actor),
                        a.admin_id,
                        a.client_id,
                        a.ip,
                        a.action,
                        safe_cell(a.detail),
                    ]
                if len(page) < BATCH:
                    return
                before = page[-1].id

        header = ["id", "at", "actor", "admin_id", "client_id", "ip", "action", "detail"]
        name = file_name("activity", sorted(filters.items()))
        return csv_response(name, header, rows(), self._bom(request))
