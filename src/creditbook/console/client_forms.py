"""Creating and editing clients in the console (managers and owners): the fields Creditbook
keeps, with the API's rules and messages; every change goes to the activity log with its old
and new values (``ClientCases.update_client``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import currencies, errors
from ..clients import CLIENT_DETAIL_FIELDS, EDITABLE, STATUSES, client_fields, label
from ..model import Client
from .pages import ReadPages
from .session import Staffer
from .web import PREFIX, Web, money

#: The form's fields in order, with their labels.
FIELDS = (
    ("firstname", "First name"),
    ("lastname", "Last name"),
    ("companyname", "Company"),
    ("email", "E-mail"),
    ("address1", "Address"),
    ("address2", "Address, second line"),
    ("city", "City"),
    ("state", "State or region"),
    ("postcode", "Postcode"),
    ("country", "Country (two-letter code)"),
    ("phonenumber", "Phone"),
)
#: Which field each refusal is about (marked and focused).
_FIELD_OF = {
    errors.NoFirstName: "firstname",
    errors.NoLastName: "lastname",
    errors.NoEmail: "email",
    errors.InvalidEmail: "email",
    errors.DuplicateEmail: "email",
    errors.CurrencyNotAllowed: "currency",
    errors.CurrencyLocked: "currency",
}


class ClientForms:
    """``/clients/new`` and ``/clients/{id}/edit``."""

    def __init__(self, web: Web, pages: ReadPages) -> None:
        self.web = web
        self.pages = pages

    def routes(self) -> list[Route]:
        """The routes of the client forms."""
        g = self.web.guard("manager")
        return [
            Route("/clients/new", g(self.new), methods=["GET", "POST"]),
            Route("/clients/{client_id:int}/edit", g(self.edit), methods=["GET", "POST"]),
            Route("/clients/{client_id:int}/alert", g(self.alert), methods=["POST"]),
        ]

    def alert(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Set a client's own low-balance threshold, or go back to its currency's."""
        view = self.pages.view
        client = view.find_client(int(request.path_params["client_id"]))
        ledger, code = self.web.ledger, client.currency_code
        try:
            if form.get("do") == "remove":
                ledger.remove_threshold(clientid=str(client.id), currency=code, actor=who.actor)
                said = f"Client {client.id} now has its currency's low-balance alert."
            else:
                found = ledger.set_threshold(
                    clientid=str(client.id), currency=code, below=form.get("below"),
                    actor=who.actor,
                )  # fmt: skip
                said = f"Client {client.id} is alerted below {money(found.below_cents)} {code}."
        except errors.CreditError as exc:
            return view.page(request, who, client, status=400, error=exc.message, field="below")
        self.web.sessions.flash(who, said)
        return RedirectResponse(f"{PREFIX}/clients/{client.id}#alert", 303)

    def _render(
        self,
        who: Staffer,
        client: Client | None,
        values: dict[str, str],
        status: int = 200,
        error: str = "",
        field: str = "",
    ) -> Response:
        setting = self.web.ledger.store.get_settings().get("currencies", currencies.ISO)
        codes = sorted(currencies.allowed(setting))
        return self.web.render(
            "client_form.html",
            who,
            status,
            client=client,
            values=values,
            fields=FIELDS,
            statuses=STATUSES,
            currencies=codes,
            locked=client is not None and self._has_entries(client),
            error=error,
            field=field,
        )

    def _has_entries(self, client: Client) -> bool:
        return bool(self.web.ledger.store.count_credits(client.id))

    def new(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The New client page, and creating the client."""
        if request.method == "GET":
            return self._render(who, None, {"currency": "USD", "status": "Active"})
        values = {k: form.get(k, "").strip() for k in EDITABLE}
        try:
            result = self.web.ledger.add_client(
                firstname=values["firstname"],
                lastname=values["lastname"],
                email=values["email"],
                companyname=values["companyname"],
                currency=values["currency"] or None,
                status=values["status"] or "Active",
                details={f: values[f] for f in CLIENT_DETAIL_FIELDS},
                actor=who.actor,
            )
        except errors.CreditError as exc:
            return self._refused(who, None, values, exc)
        name = f"{values['firstname']} {values['lastname']}"
        self.web.sessions.flash(who, f"Client {result.client_id} created: {name}.")
        return RedirectResponse(f"{PREFIX}/clients/{result.client_id}", 303)

    def edit(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The Edit page of a client, and saving it."""
        client = self.pages.view.find_client(int(request.path_params["client_id"]))
        if request.method == "GET":
            return self._render(who, client, client_fields(client))
        values = {k: form[k] for k in EDITABLE if k in form}
        try:
            changed = self.web.ledger.update_client(client, values, actor=who.actor)
        except errors.CreditError as exc:
            return self._refused(who, client, {**client_fields(client), **values}, exc)
        said = (
            f"Client {client.id} updated: {', '.join(label(f) for f in changed)}."
            if changed
            else "Nothing changed."
        )
        self.web.sessions.flash(who, said)
        return RedirectResponse(f"{PREFIX}/clients/{client.id}", 303)

    def _refused(
        self, who: Staffer, client: Client | None, values: dict[str, str], exc: errors.CreditError
    ) -> Response:
        field = next((f for kind, f in _FIELD_OF.items() if isinstance(exc, kind)), "")
        if not field:
            field = next((f for f, _ in FIELDS if label(f) in exc.message), "")
        status = 400 if isinstance(exc, errors.ValidationError) else 409
        return self._render(who, client, values, status, exc.message, field)
