"""The console's changes to credit: the add/remove form, reversals and bulk credit.

Each goes through the ledger's rules (the WHMCS messages) and is one atomic change; the activity
log names the admin (``console:USERNAME``) and the address, like an API change.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import errors
from ..bulk import BulkFile
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
            Route("/bulk/rejected", g("manager")(self.rejected), methods=["POST"]),
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
        return self._page(who, 200, None)

    def _page(
        self, who: Staffer, status: int, bulk: BulkFile | None, csv_text: str = ""
    ) -> Response:
        days = self.web.policy.number("bulk_repeat_days")
        return self.web.render(
            "bulk.html", who, status, bulk=bulk, csv_text=csv_text, repeat_days=days
        )

    def _read(self, form: dict[str, str], who: Staffer) -> BulkFile:
        text = form.get("file:file")
        data = text.encode("latin-1") if text is not None else form.get("csv", "").encode()
        if not data:
            raise Refused(400, "Choose a CSV file to upload")
        name = form.get("file:filename") if text is not None else form.get("name", "")
        again = frozenset(
            int(key[6:]) for key in form if key.startswith("again-") and key[6:].isdigit()
        )
        return self.web.bulk().read(data, actor=who.actor, name=name or "", again=again)

    def preview(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Check every row of an uploaded file; apply nothing."""
        bulk = self._read(form, who)
        csv_text = "" if bulk.error else _as_text(form)
        status = 400 if bulk.error else 200
        return self._page(who, status, bulk, csv_text)

    def apply(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Apply a previewed file's rows, streaming the page as they are applied."""
        bulk = self._read(form, who)
        if bulk.error:
            return self._page(who, 400, bulk)
        head = bytes(self.web.render("bulk_apply.html", who, bulk=bulk).body).decode()
        top, _, bottom = head.partition("<!--rows-->")
        return StreamingResponse(
            self._progress(bulk, top, bottom, who),
            media_type="text/html; charset=utf-8",
            headers={"cache-control": "no-store"},
        )

    def rejected(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The rejected rows of an applied file, as a CSV file to fix and upload again."""
        name = _file_stem(form.get("name", "")) + "-rejected-rows.csv"
        return Response(
            form.get("rejected", ""),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{name}"',
                "cache-control": "no-store",
            },
        )

    def _progress(self, bulk: BulkFile, top: str, bottom: str, who: Staffer) -> Iterator[bytes]:
        """Apply the rows, sending a line per row and a progress line every few rows.

        A plain iterator: Starlette runs it on a worker thread, off the event loop."""
        yield top.encode()
        counts = {"applied": 0, "already": 0, "seen": 0, "refused": 0}
        refused: dict[int, str] = {}
        done = 0
        todo = bulk.valid
        for row, outcome, balance in self.web.bulk().apply(bulk):
            done += 1
            if outcome == "applied":
                shown = f"applied, balance {money(balance)}"
            elif outcome == "already":
                shown = "already applied from this file: skipped"
            elif outcome == "seen" and row.seen is not None:
                shown = f"already applied on {row.seen.at[:10]} from {row.seen.file_name}: skipped"
            else:
                refused[row.number] = outcome
                shown, outcome = outcome, "refused"
            counts[outcome] += 1
            name = row.client.email if row.client else ""
            yield (
                f"<tr><td>{row.number}</td><td>{html.escape(name)}</td>"
                f"<td>{html.escape(shown)}</td></tr>\n"
            ).encode()
            if done % PROGRESS_EVERY == 0:
                yield f'<tr><td colspan="3">{done} of {todo} rows done</td></tr>\n'.encode()
        summary = (
            f'<p id="bulk-summary" role="status">Done: {counts["applied"]} applied, '
            f"{counts['already'] + counts['seen']} already applied before, "
            f"{counts['refused']} refused, {bulk.invalid} invalid rows skipped"
            f"{f', {bulk.seen} left out as applied before' if bulk.seen else ''}.</p>"
        )
        if refused or bulk.invalid:
            rejected = self.web.bulk().rejected_csv(bulk, refused)
            summary += (
                f'<form method="post" action="{PREFIX}/bulk/rejected">'
                f'<input type="hidden" name="csrf" value="{html.escape(who.csrf)}">'
                f'<input type="hidden" name="name" value="{html.escape(bulk.name)}">'
                f'<input type="hidden" name="rejected" value="{html.escape(rejected)}">'
                '<button type="submit" class="secondary">Download the '
                f"{len(refused) + bulk.invalid} rejected rows (CSV) to fix and upload again"
                "</button></form>"
            )
        yield bottom.replace("<!--summary-->", summary).encode()


def _file_stem(name: str) -> str:
    """A file name's stem, safe in a Content-Disposition header."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name.rsplit(".", 1)[0])[:80].strip("-.")
    return stem or "bulk"


def _as_text(form: dict[str, str]) -> str:
    """The uploaded file as text, carried by the preview page to the apply button."""
    text = form.get("file:file")
    if text is None:
        return form.get("csv", "")
    return text.encode("latin-1").decode("utf-8-sig", "replace")
