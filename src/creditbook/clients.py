"""The client use cases: create, find, list, update and close clients. Owns their validation.

Every transport (the WHMCS API's AddClient/UpdateClient/CloseClient, the console's forms, the
CLI, ``local_api``) calls these, so one set of rules and messages holds everywhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import currencies, errors
from .model import Actor, Client
from .rules import MAX_FIELD, NUL, check_text, client_keys, fold, parse_id
from .store import ClientPage, IdempotencyKey, NewClient, Replay, Store, Waitable

CLIENT_DETAIL_FIELDS = (
    "address1",
    "address2",
    "city",
    "state",
    "postcode",
    "country",
    "phonenumber",
)
#: What ``update_client`` may change (the balance moves only through entries).
EDITABLE = ("firstname", "lastname", "companyname", "email", *CLIENT_DETAIL_FIELDS, "status",
            "currency")  # fmt: skip
STATUSES = ("Active", "Inactive", "Closed")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_LABELS = {
    "firstname": "first name",
    "lastname": "last name",
    "companyname": "company name",
    "email": "email address",
    "phonenumber": "phone number",
}


@dataclass(frozen=True, slots=True)
class ClientResult:
    """The outcome of creating a client: its id and whether it was a replay."""

    client_id: int
    replayed: bool = False


def label(field: str) -> str:
    """A field's name in messages."""
    return _LABELS.get(field, field)


class ClientCases:
    """Client use cases over ``self.store``."""

    store: Store

    def now(self) -> str:
        """The current UTC time as ISO-8601 text (``AccessCases`` gives it to the ledger)."""
        raise NotImplementedError

    def _currency(self, value: str | None) -> str:
        """A currency code the configured list allows (WHMCS clients send id 1 for the
        default currency, USD)."""
        code = "USD" if value in (None, "", "1") else str(value).strip().upper()
        setting = self.store.get_settings().get("currencies", currencies.ISO)
        if code not in currencies.allowed(setting):
            raise errors.CurrencyNotAllowed(code, currencies.describe(setting))
        return code

    def _check_fields(self, fields: dict[str, str]) -> None:
        """Refuse e-mail addresses, countries, statuses and text a client cannot hold."""
        if "email" in fields and (
            not _EMAIL.fullmatch(fields["email"]) or len(fields["email"]) > MAX_FIELD
        ):
            raise errors.InvalidEmail()
        if fields.get("country") and not _COUNTRY.fullmatch(fields["country"]):
            raise errors.ValidationError("The country is a two-letter ISO code, e.g. NO")
        if "status" in fields and fields["status"] not in STATUSES:
            raise errors.ValidationError("The status is Active, Inactive or Closed")
        for field, value in fields.items():
            if len(value) > MAX_FIELD:
                raise errors.FieldTooLong(label(field))
            check_text(value, label(field))

    def start_client(
        self,
        *,
        firstname: str | None,
        lastname: str | None,
        email: str | None,
        companyname: str | None = None,
        currency: str | None = None,
        details: dict[str, str] | None = None,
        status: str | None = None,
        actor: Actor,
        idem: IdempotencyKey | None = None,
        inline: bool = False,
    ) -> Waitable[int | Replay]:
        """Validate a new client (raising at once) and start the write (``Ledger.submit_client``
        gives its result)."""
        if not firstname:
            raise errors.NoFirstName()
        if not lastname:
            raise errors.NoLastName()
        if not email:
            raise errors.NoEmail()
        extra = {k: v for k, v in (details or {}).items() if v}
        fields = {
            "firstname": firstname,
            "lastname": lastname,
            "email": email,
            "companyname": companyname or "",
            "status": status or "Active",
            **extra,
        }
        self._check_fields(fields)
        code = self._currency(currency)
        search, sort = client_keys(firstname, lastname, companyname or "", email)
        op = NewClient(
            firstname,
            lastname,
            companyname or "",
            email,
            code,
            status or "Active",
            json.dumps(extra, sort_keys=True),
            actor,
            self.now(),
            search,
            sort,
        )
        return self.store.submit_client(op, idem, inline=inline)

    def get_client(self, clientid: str | None = None, email: str | None = None) -> Client:
        """Find a client by id or e-mail address."""
        if not clientid and not email:
            raise errors.ClientLookupRequired()
        if clientid:
            client_id = parse_id(clientid)
            client = None if client_id is None else self.store.get_client(client_id)
        else:
            client = None if NUL in (email or "") else self.store.find_client_by_email(email or "")
        if client is None:
            raise errors.ClientNotFound()
        return client

    def list_clients(
        self,
        offset: int = 0,
        limit: int = 25,
        search: str = "",
        status: str = "",
        descending: bool = False,
    ) -> ClientPage:
        """Return a page of clients (the search ignores case and accents)."""
        if NUL in search or NUL in status:  # no stored text holds NUL: nothing can match
            return ClientPage(0, [])
        return self.store.list_clients(
            max(offset, 0), max(limit, 0), fold(search), status, descending
        )

    def update_client(
        self, client: Client, changes: dict[str, str], *, actor: Actor
    ) -> dict[str, tuple[str, str]]:
        """Change a client's fields (only those given); return what changed, old and new."""
        changed, future = self.start_update(client, changes, actor=actor, inline=True)
        if future is not None:
            future.result()
        return changed

    def start_update(
        self, client: Client, changes: dict[str, str], *, actor: Actor, inline: bool = False
    ) -> tuple[dict[str, tuple[str, str]], Waitable[None] | None]:
        """Check a change of a client's fields (raising at once) and start its write; return
        what changes, old and new, and the write's future (None when nothing changes).

        First and last name and e-mail cannot be emptied; the currency can change only while
        the client has no entries (checked again in the write's transaction); the balance is
        never a field: it moves only through entries.
        """
        unknown = [k for k in changes if k not in EDITABLE]
        if unknown:
            raise errors.ValidationError(f"Unknown client field: {', '.join(unknown)}")
        for field, error in (
            ("firstname", errors.NoFirstName),
            ("lastname", errors.NoLastName),
            ("email", errors.NoEmail),
        ):
            if field in changes and not changes[field].strip():
                raise error()
        fields = {k: v.strip() for k, v in changes.items()}
        if "currency" in fields:
            fields["currency"] = self._currency(fields["currency"])
        self._check_fields({k: v for k, v in fields.items() if k != "currency"})
        now = client_fields(client)
        changed = {k: (now[k], v) for k, v in fields.items() if now[k] != v}
        if not changed:
            return {}, None
        after = {**now, **{k: new for k, (_, new) in changed.items()}}
        search, sort = client_keys(
            after["firstname"], after["lastname"], after["companyname"], after["email"]
        )
        row: dict[str, Any] = {
            **{k: after[k] for k in ("firstname", "lastname", "companyname", "email", "status")},
            "currency_code": after["currency"],
            "details": json.dumps(
                {f: after[f] for f in CLIENT_DETAIL_FIELDS if after[f]}, sort_keys=True
            ),
            "search_key": search,
            "sort_key": sort,
        }
        future = self.store.submit_update(client.id, row, changed, actor, self.now(), inline=inline)
        return changed, future


def client_fields(client: Client) -> dict[str, str]:
    """A client's editable fields by name, as ``UpdateClient`` and the console's form take them."""
    return {
        "firstname": client.firstname,
        "lastname": client.lastname,
        "companyname": client.companyname,
        "email": client.email,
        "status": client.status,
        "currency": client.currency_code,
        **{f: client.details.get(f, "") for f in CLIENT_DETAIL_FIELDS},
    }
