"""The console's changes to credit: the add/remove form, reversals and bulk credit.

Each goes through the ledger's rules (the WHMCS messages) and is one atomic change; the activity
log names the admin (``console:USERNAME``) and the address, like an API change.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import errors
from ..bulk import BulkFile
from ..model import Client
from ..money import parse_amount, to_cents
from ..rules import amount_hint
from ..store.console import HistoryEntry
from ..store.protocol import IdempotencyKey
from .pages import ReadPages
from .session import Staffer
from .web import PREFIX, Refused, Web, money

PROGRESS_EVERY = 50


#: Which field of the credit form each refusal is about (marked and focused on the page).
FIELDS: dict[type[errors.CreditError], str] = {
    errors.InvalidType: "type",
    errors.NoAmount: "amount",
    errors.InvalidAmount: "amount",
    errors.InsufficientCredit: "amount",
    errors.BalanceLimitExceeded: "amount",
    errors.InvalidDate: "date",
    errors.NoDescription: "description",
    errors.DescriptionTooLong: "description",
    errors.InvalidText: "description",
    errors.UnknownCategory: "category",
    errors.InvalidExpiry: "expires",
}


#: Refusals of what was typed (400), as against refusals by the ledger's state (409).
VALIDATION = (
    errors.InvalidType,
    errors.NoAmount,
    errors.InvalidAmount,
    errors.InvalidDate,
    errors.NoDescription,
    errors.DescriptionTooLong,
)


def _is(exc: errors.CreditError, kind: type[errors.CreditError]) -> bool:
    """Whether a refusal is of a kind (a replayed one, recorded under the form's token, is
    known by its message)."""
    return isinstance(exc, kind) or exc.message == kind.message


def field_of(exc: errors.CreditError) -> str:
    """The form field a refusal is about ("" when none)."""
    return next((f for kind, f in FIELDS.items() if _is(exc, kind)), "")


def what_to_do(exc: errors.CreditError, amount: str, available: int, currency: str) -> str:
    """A refusal that says what to do: a decimal comma, the balance an overdraw could use."""
    if _is(exc, errors.InvalidAmount):
        return amount_hint(amount, exc.message)
    if exc.message == errors.InsufficientCredit.message:
        return f"{exc.message}: {money(available)} {currency} is available"
    return exc.message


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
            Route(
                "/entries/{entry_id:int}/reverse",
                g("manager")(self.reverse),
                methods=["GET", "POST"],
            ),
            Route("/bulk", g("manager")(self.bulk)),
            Route(
                "/bulk/preview",
                g("manager", upload=True)(self.preview),
                methods=["POST"],
            ),
            Route("/bulk/apply", g("manager", upload=True)(self.apply), methods=["POST"]),
            Route("/bulk/rejected", g("manager")(self.rejected), methods=["POST"]),
        ]

    def _once(self, who: Staffer, token: str, fields: dict[str, str]) -> IdempotencyKey | None:
        """The form's one-time token as the change's idempotency key (scoped to the admin)."""
        if not token:
            return None
        policy = self.web.policy
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        keep = policy.number("idempotency_hours") * 3600.0
        return IdempotencyKey(
            f"console:{who.admin.username}", token[:100], digest, policy.clock(), keep
        )

    def credit(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The add/remove credit form: applied once however often it is sent; the page it
        returns to says what was done, once."""
        view = self.pages.view
        client = view.find_client(int(request.path_params["client_id"]))
        fields = {
            "client": str(client.id),
            "type": form.get("type", "add"),
            "amount": form.get("amount", "").strip(),
            "description": form.get("description", "").strip(),
            "date": form.get("date", "").strip(),
            "category": form.get("category", "").strip(),
            "expires": form.get("expires", "").strip(),
        }
        adding = fields["type"].lower() != "remove"
        try:
            sent = self._for_approval(who, client, fields, adding)
            if sent:
                self.web.sessions.flash(who, sent)
                return RedirectResponse(f"{PREFIX}/clients/{client.id}", 303)
            result = self.web.ledger.add_credit(
                clientid=str(client.id),
                amount=fields["amount"],
                description=fields["description"],
                type=fields["type"],
                date=fields["date"] or None,
                category=(fields["category"] or None) if adding else None,
                expires=(fields["expires"] or None) if adding else None,
                actor=who.actor,
                idem=self._once(who, form.get("token", ""), fields),
            )
        except errors.CreditError as exc:
            invalid = isinstance(exc, errors.ValidationError) or any(
                _is(exc, kind) for kind in VALIDATION
            )
            status = 400 if invalid else 409
            fresh = view.find_client(client.id)
            said = what_to_do(exc, fields["amount"], fresh.balance_cents, fresh.currency_code)
            return view.page(
                request, who, fresh, status=status, error=said, field=field_of(exc), values=form
            )
        code, name = client.currency_code, f"{client.firstname} {client.lastname}"
        balance = f"{money(result.balance_cents)} {code}"
        if result.replayed:
            said = (
                f"That form was already sent: the change was saved once. The balance is {balance}."
            )
        else:
            cents = money_cents(fields["amount"])
            verb, to = (
                ("Removed", "from") if fields["type"].lower() == "remove" else ("Added", "to")
            )
            said = f"{verb} {money(cents)} {code} {to} {name}: the balance is now {balance}."
        self.web.sessions.flash(who, said)
        return RedirectResponse(f"{PREFIX}/clients/{client.id}", 303)

    def _for_approval(
        self, who: Staffer, client: Client, fields: dict[str, str], adding: bool
    ) -> str:
        """Record the change as a request when a rule says it needs a second person; what to
        say then ("" when it does not)."""
        try:
            cents = money_cents(fields["amount"])
        except (ValueError, ArithmeticError):
            return ""  # the ledger refuses it, saying why
        approvals = self.web.approvals
        if approvals.needed(client.currency_code, cents if adding else -cents) is None:
            return ""
        days = self.web.policy.number("approval_days")
        found = approvals.request_credit(fields, who.actor, days)
        return (
            f"Sent for approval (request #{found.id}): {money(found.amount_cents)} "
            f"{found.currency} is not applied until another manager or owner approves it."
        )

    def reverse(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Reverse an entry: a confirmation first (the entry, the balance after, a required
        reason), then the reversal (once per entry, ever)."""
        view = self.pages.view
        try:
            found = self.web.staff.entry(int(request.path_params["entry_id"]))
        except errors.EntryNotFound as exc:
            raise Refused(404, exc.message, title="Entry not found") from None
        client = view.find_client(found.entry.client_id)
        if request.method == "GET":
            return self._confirm(who, found, client)
        try:
            change = self.web.staff.reversal_cents(found)
            approvals = self.web.approvals
            if change is not None and approvals.needed(client.currency_code, change):
                days = self.web.policy.number("approval_days")
                sent = approvals.request_reversal(
                    found.entry.id, form.get("reason", ""), who.actor, days
                )
                self.web.sessions.flash(
                    who,
                    f"Sent for approval (request #{sent.id}): the reversal of entry "
                    f"#{found.entry.id} waits for another manager or owner.",
                )
                return RedirectResponse(f"{PREFIX}/clients/{client.id}", 303)
            balance = self.web.staff.reverse_credit(
                found.entry.id, reason=form.get("reason", ""), actor=who.actor
            )
        except errors.CreditError as exc:
            said = what_to_do(exc, "", client.balance_cents, client.currency_code)
            if not isinstance(exc, errors.ValidationError):
                said = f"Entry #{found.entry.id} cannot be reversed: {said}"
            status = 400 if isinstance(exc, errors.ValidationError) else 409
            return self._confirm(who, found, client, status, said, form.get("reason", ""))
        after = self.web.staff.entry(found.entry.id)
        by = f" by entry #{after.reversed_by}" if after.reversed_by else ""
        self.web.sessions.flash(
            who,
            f"Entry #{found.entry.id} reversed{by}: the balance is now "
            f"{money(balance)} {client.currency_code}.",
        )
        return RedirectResponse(f"{PREFIX}/clients/{client.id}", 303)

    def _confirm(
        self,
        who: Staffer,
        found: HistoryEntry,
        client: Client,
        status: int = 200,
        error: str = "",
        reason: str = "",
    ) -> Response:
        change = self.web.staff.reversal_cents(found)
        return self.web.render(
            "reverse.html",
            who,
            status,
            item=found,
            client=client,
            change=change,
            after=client.balance_cents + (change or 0),
            error=error,
            reason=reason,
        )

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
        approvals = self.web.approvals
        needed = approvals.bulk_needs(bulk)
        if needed:
            days = self.web.policy.number("approval_days")
            sent = approvals.request_bulk(bulk, _as_text(form), needed, who.actor, days)
            self.web.sessions.flash(
                who,
                f"Sent for approval (request #{sent.id}): the file's rows are not applied until "
                "another manager or owner approves them.",
            )
            return RedirectResponse(f"{PREFIX}/bulk", 303)
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


def money_cents(text: str) -> int:
    """Cents of an amount the ledger accepted (``###`` or ``###.##``)."""
    return to_cents(parse_amount(text))
