"""CSV of exactly what a list shows, every page of it, streamed: the client list, the activity
log and a client's history. Text cells are neutralised against spreadsheet formulas; amounts
stay numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..exports import safe_cell
from ..money import format_cents
from ..store.console import HistoryEntry
from .pages import ReadPages, client_filters, day, key_after
from .session import Staffer
from .web import Web

BATCH = 1000


def csv_response(name: str, header: list[str], rows: Iterable[list[Any]]) -> StreamingResponse:
    """A streamed CSV download (a worker thread writes it: the rows come from the database)."""

    def lines() -> Iterator[bytes]:
        buffer = io.StringIO()
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


def history_rows(entries: Iterable[HistoryEntry]) -> Iterator[list[Any]]:
    """A client's history as CSV rows."""
    for row in entries:
        e = row.entry
        yield [
            e.id,
            e.date,
            safe_cell(e.description),
            format_cents(e.amount_cents),
            format_cents(e.balance_cents),
            safe_cell(row.actor),
            "yes" if row.reversed else "",
        ]


HISTORY_HEADER = ["id", "date", "description", "amount", "balance", "by", "reversed"]


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

    def history(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """A client's history as CSV, as the client page lists it (with its date filter)."""
        client = self.pages.find_client(int(request.path_params["client_id"]))
        q = request.query_params
        date_from, date_to = day(q.get("from")), day(q.get("to"))
        entries = self.web.staff.console.iter_history(client.id, date_from, date_to)
        name = f"client-{client.id}-credits.csv"
        return csv_response(name, HISTORY_HEADER, history_rows(entries))

    def clients(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The client list as CSV: every client it matches, in its order."""
        search, status, sort = client_filters(request.query_params)
        store = self.web.staff.console

        def rows() -> Iterator[list[Any]]:
            key: dict[str, Any] | None = None
            while True:
                _, page = store.client_page(sort, key, BATCH, search, status)
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
        return csv_response("clients.csv", [*header, "balance", "created_at"], rows())

    def activity(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The activity log as CSV: every line the filter matches, newest first."""
        where, _ = self.pages.activity_filters(request.query_params)
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
        return csv_response("activity.csv", header, rows())
