"""The console's changes to credit: the add/remove form, reversals and bulk credit.

Each goes through the ledger's rules (the WHMCS messages) and is one atomic change; the activity
log names the admin (``console:USERNAME``) and the address, like an API change.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import errors
from ..staff import BulkFile
from .pages import ReadPages
from .session import Staffer
from .web import PREFIX, Refused, Web, money

PROGRESS_EVERY = 50


class ChangePages:
    """Credit form, reversal and bulk credit (``manager`` access and up)."""

    def __init__(self, web: Web, pages: ReadPages) -> None:
        self.web = web
        self.pages = pages

    def routes(self) -> list[Route]:
        """The routes that change credit."""
        g = self.web.guard
        return [
            Route("/clients/{client_id:int}/credit", g("manager")(self.credit), methods=["POST"]),
            Route("/entries/{entry_id:int}/reverse", g("manager")(self.reverse), methods=["POST"]),
            Route("/bulk", g("manager")(self.bulk)),
            Route(
                "/bulk/preview",
                g("manager", upload=True)(self.preview),
                methods=["POST"],
            ),
            Route("/bulk/apply", g("manager", upload=True)(self.apply), methods=["POST"]),
        ]

    def credit(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The add/remove credit form."""
        client_id = int(request.path_params["client_id"])
        kind = form.get("type", "add")
        try:
            self.web.ledger.add_credit(
                clientid=str(client_id),
                amount=form.get("amount", "").strip(),
                description=form.get("description", "").strip(),
                type=kind,
                date=form.get("date", "").strip() or None,
                actor=who.actor,
            )
        except errors.CreditError as exc:
            status = 400 if isinstance(exc, errors.ValidationError) else 409
            return self.pages.client_page(
                request, who, client_id, status=status, error=exc.message, values=form
            )
        return RedirectResponse(f"{PREFIX}/clients/{client_id}?done=credit", 303)

    def reverse(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Reverse an entry."""
        entry_id = int(request.path_params["entry_id"])
        try:
            original = self.web.staff.entry(entry_id).entry
        except errors.EntryNotFound as exc:
            raise Refused(404, exc.message) from None
        try:
            self.web.staff.reverse_credit(entry_id, actor=who.actor)
        except errors.CreditError as exc:
            return self.pages.client_page(
                request, who, original.client_id, status=409, error=exc.message
            )
        return RedirectResponse(f"{PREFIX}/clients/{original.client_id}?done=reversed", 303)

    def bulk(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The bulk credit upload form."""
        return self.web.render("bulk.html", who, bulk=None)

    def _read(self, form: dict[str, str], who: Staffer) -> BulkFile:
        text = form.get("file:file")
        data = text.encode("latin-1") if text is not None else form.get("csv", "").encode()
        if not data:
            raise Refused(400, "Choose a CSV file to upload")
        return self.web.staff.read_bulk(data, actor=who.actor)

    def preview(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Check every row of an uploaded file; apply nothing."""
        bulk = self._read(form, who)
        csv_text = "" if bulk.error else _as_text(form)
        status = 400 if bulk.error else 200
        return self.web.render("bulk.html", who, status, bulk=bulk, csv_text=csv_text)

    def apply(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Apply a previewed file's valid rows, streaming the page as they are applied."""
        bulk = self._read(form, who)
        if bulk.error:
            return self.web.render("bulk.html", who, 400, bulk=bulk, csv_text="")
        head = bytes(self.web.render("bulk_apply.html", who, bulk=bulk).body).decode()
        top, _, bottom = head.partition("<!--rows-->")
        return StreamingResponse(
            self._progress(bulk, top, bottom),
            media_type="text/html; charset=utf-8",
            headers={"cache-control": "no-store"},
        )

    def _progress(self, bulk: BulkFile, top: str, bottom: str) -> Iterator[bytes]:
        """Apply the rows, sending a line per row and a progress line every few rows.

        A plain iterator: Starlette runs it on a worker thread, off the event loop."""
        yield top.encode()
        applied = already = refused = done = 0
        todo = bulk.valid
        for row, outcome, balance in self.web.staff.apply_bulk(bulk):
            done += 1
            if outcome == "applied":
                applied += 1
                shown = f"applied, balance {money(balance)}"
            elif outcome == "already":
                already += 1
                shown = "already applied from this file: skipped"
            else:
                refused += 1
                shown = outcome
            name = row.client.email if row.client else ""
            yield (
                f"<tr><td>{row.number}</td><td>{html.escape(name)}</td>"
                f"<td>{html.escape(shown)}</td></tr>\n"
            ).encode()
            if done % PROGRESS_EVERY == 0:
                yield f'<tr><td colspan="3">{done} of {todo} rows done</td></tr>\n'.encode()
        summary = (
            f'<p id="bulk-summary" role="status">Done: {applied} applied, {already} already '
            f"applied before, {refused} refused, {len(bulk.rows) - todo} invalid rows "
            "skipped.</p>"
        )
        yield bottom.replace("<!--summary-->", summary).encode()


def _as_text(form: dict[str, str]) -> str:
    """The uploaded file as text, carried by the preview page to the apply button."""
    text = form.get("file:file")
    if text is None:
        return form.get("csv", "")
    return text.encode("latin-1").decode("utf-8-sig", "replace")
