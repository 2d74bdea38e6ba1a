"""Credit grants' use cases: categories and their expiry periods, what a grant's category and
expiry date are, low-balance thresholds, and the figures by category.

Mixed into ``Ledger`` (as clients and admins are); the expiry run is ``expiry.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import replace

from . import errors, money
from .model import Actor, Client, CreditEntry
from .rules import parse_day, parse_id
from .store import Store
from .store.grants import Category, OpenGrant, Threshold, check_category_name

__all__ = ["Category", "GrantCases", "OpenGrant", "Threshold"]
#: The longest expiry period a category can have (about 100 years).
MAX_DAYS = 36_600


class GrantCases:
    """Categories, grant fields and thresholds (a part of ``Ledger``)."""

    store: Store
    _category_cache: tuple[int, dict[str, int]] | None = None

    def now(self) -> str:  # pragma: no cover - provided by Ledger
        raise NotImplementedError

    def today(self) -> str:  # pragma: no cover - provided by Ledger
        raise NotImplementedError

    # --- categories ----------------------------------------------------------------------------

    def category_periods(self) -> dict[str, int]:
        """Each category's default expiry period in days (0: never), cached until an owner
        changes one (the store's configuration counter)."""
        version = self.store.versions()[0]
        cached = self._category_cache
        if cached is None or cached[0] != version:
            periods = {c.name: c.expires_days for c in self.store.grants.categories()}
            self._category_cache = cached = (version, periods)
        return cached[1]

    def categories(self) -> list[Category]:
        """Every category with its default expiry period, built-in ones first."""
        return self.store.grants.categories()

    def set_category(
        self, name: str, expires_days: str | int, *, actor: Actor, confirm_paid: bool = False
    ) -> Category:
        """Add a category or set its default expiry period in days (0: never). Paid credit is
        the client's money: making it expire needs ``confirm_paid``."""
        clean = check_category_name(name)
        days = _days(expires_days)
        if clean == "paid" and days and not confirm_paid:
            raise errors.PaidExpiryUnconfirmed()
        self.store.grants.set_category(clean, days, actor, self.now())
        self._category_cache = None
        builtin = clean in ("paid", "promotional", "goodwill", "refund")
        return Category(clean, days, builtin)

    def remove_category(self, name: str, *, actor: Actor) -> None:
        """Remove a category of the owner's that no entry uses."""
        clean = check_category_name(name)
        if clean not in self.category_periods():
            raise errors.UnknownCategory()
        if not self.store.grants.remove_category(clean, actor, self.now()):
            raise errors.ValidationError(
                f"Category {clean} is built in or used by entries: it stays"
            )
        self._category_cache = None

    def grant_fields(
        self, kind: str, date: str, category: str | None, expires: str | None
    ) -> tuple[str, str]:
        """The category and expiry date of added credit (``kind`` ``add``): the ones given,
        checked, else the category's default period from the entry's date."""
        if kind != "add":
            if category or expires:
                raise errors.ValidationError("Category and expiry apply to added credit only")
            return "paid", ""
        name = (category or "paid").strip().lower()
        periods = self.category_periods()
        if name not in periods:
            raise errors.UnknownCategory(
                f"Unknown credit category {name[:32]!r}: use {', '.join(periods)}"
            )
        if expires:
            day = parse_day(expires)
            if day is None or day <= date:
                raise errors.InvalidExpiry()
            return name, day
        days = periods[name]
        if not days:
            return name, ""
        return name, (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()

    # --- low-balance thresholds ----------------------------------------------------------------

    def thresholds(self) -> list[Threshold]:
        """Every low-balance threshold: currency defaults and clients' own."""
        return self.store.grants.thresholds()

    def set_threshold(
        self, *, currency: str, below: str | None, actor: Actor, clientid: str | None = None
    ) -> Threshold:
        """Set a low-balance threshold for a currency (the default) or one client (overriding
        it): crossing it raises ``balance.low`` and ``balance.recovered``."""
        client, code = self._threshold_target(clientid, currency)
        try:
            cents = money.parse_cents((below or "").strip())
        except ValueError:
            cents = -1
        if cents < 0:
            raise errors.ValidationError("Give the threshold as an amount: ### or ###.##")
        self.store.grants.set_threshold(client.id if client else 0, code, cents, actor, self.now())
        name = "" if client is None else _name(client)
        return Threshold(client.id if client else 0, code, cents, name)

    def remove_threshold(self, *, currency: str, actor: Actor, clientid: str | None = None) -> None:
        """Remove a currency's default threshold or a client's own."""
        client, code = self._threshold_target(clientid, currency)
        if not self.store.grants.set_threshold(
            client.id if client else 0, code, None, actor, self.now()
        ):
            raise errors.NotFound("No such alert")

    def _threshold_target(self, clientid: str | None, currency: str) -> tuple[Client | None, str]:
        code = (currency or "").strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise errors.ValidationError("Give the currency as a three-letter code")
        if not clientid:
            return None, code
        number = parse_id(clientid)
        client = None if number is None else self.store.get_client(number)
        if client is None:
            raise errors.ClientNotFound()
        if client.currency_code != code:
            raise errors.ValidationError(
                f"Client {client.id} keeps its balance in {client.currency_code}, not {code}"
            )
        return client, code

    # --- figures -------------------------------------------------------------------------------

    def open_grants(self, client_id: int, limit: int = 100) -> list[OpenGrant]:
        """A client's grants with something left, in the order they are spent."""
        return self.store.grants.open_grants(client_id, limit)

    def client_categories(self, client: Client) -> dict[str, int]:
        """A client's balance per category, in cents (paid first)."""
        return self.store.grants.client_categories(client.id, client.balance_cents)

    def with_allocations(
        self, client_id: int, entries: Iterable[CreditEntry], batch: int = 200
    ) -> Iterator[CreditEntry]:
        """The entries of a client with what each removal, expiry and restore moved (``spent``:
        grant entry ids and cents), read a batch at a time."""
        chunk: list[CreditEntry] = []
        for entry in entries:
            chunk.append(entry)
            if len(chunk) == batch:
                yield from self._allocated(client_id, chunk)
                chunk = []
        if chunk:
            yield from self._allocated(client_id, chunk)

    def _allocated(self, client_id: int, chunk: list[CreditEntry]) -> list[CreditEntry]:
        if all(e.kind in ("", "grant") for e in chunk):
            return chunk
        found = self.store.grants.allocations(client_id, chunk[0].seq, chunk[-1].seq)
        return [
            replace(e, spent=tuple((g, a) for _, g, a in found[e.seq])) if e.seq in found else e
            for e in chunk
        ]

    def next_expiry(self, client_id: int) -> tuple[str, int] | None:
        """A client's next expiry date and the amount expiring then, in cents."""
        return self.store.grants.next_expiry(client_id)


def _days(value: str | int) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) > MAX_DAYS:
        raise errors.ValidationError(f"Give the expiry period in days, 0 (never) to {MAX_DAYS}")
    return int(text)


def _name(client: Client) -> str:
    return client.companyname or f"{client.firstname} {client.lastname}".strip()
