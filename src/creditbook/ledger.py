"""The use cases: credit (clients: ``clients.py``; admins and credentials: ``admins.py``).

Every method takes raw text as a caller sent it (the WHMCS API, the CLI, ``local_api``) so that
all transports share one set of rules and messages, checked in the order the spec gives.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from . import errors, money
from .admins import AccessCases
from .clients import CLIENT_DETAIL_FIELDS, ClientCases, ClientResult
from .deferred import Deferred, recorded
from .grants import GrantCases
from .model import Actor, Client, CreditEntry
from .rules import check_text, parse_day, parse_id, utc_text
from .store import Balance, CreditOp, IdempotencyKey, Replay, Store

__all__ = [
    "CLIENT_DETAIL_FIELDS",
    "CREDIT_FIELDS",
    "ClientResult",
    "CreditResult",
    "Deferred",
    "Ledger",
    "check_text",
    "parse_id",
]
T = TypeVar("T")
U = TypeVar("U")
MAX_DESCRIPTION = 65_535
_ZERO = re.compile(r"0+(\.0*)?")
#: AddCredit's fields, as ``Ledger.credit_op`` takes them.
CREDIT_FIELDS = (
    "clientid",
    "amount",
    "description",
    "type",
    "date",
    "adminid",
    "category",
    "expires",
)


@dataclass(frozen=True, slots=True)
class CreditResult:
    """The outcome of a balance change: the new balance and whether it was a replay."""

    balance_cents: int
    replayed: bool = False


def _credit_result(value: int | Replay) -> CreditResult:
    if isinstance(value, Replay):
        return CreditResult(recorded(value), replayed=True)
    return CreditResult(value)


def _client_result(value: int | Replay) -> ClientResult:
    if isinstance(value, Replay):
        return ClientResult(recorded(value), replayed=True)
    return ClientResult(value)


class Ledger(AccessCases, ClientCases, GrantCases):
    """The service layer: every operation Creditbook offers, over one Store.

    Credit is here; clients come from ``ClientCases`` (``clients.py``), admins, credentials,
    roles and the activity log from ``AccessCases`` (``admins.py``), grants' categories and
    thresholds from ``GrantCases`` (``grants.py``).
    """

    def __init__(self, store: Store, *, timezone: str | None = None) -> None:
        self.store = store
        self.tz = ZoneInfo(timezone) if timezone else None
        #: The wall clock that decides today's date and the time changes are recorded at
        #: (tests move it to a later day).
        self.clock: Callable[[Any], dt.datetime] = dt.datetime.now

    def today(self) -> str:
        """Return today's date in the configured timezone (the server's by default)."""
        return self.clock(self.tz).date().isoformat()

    def now(self) -> str:
        """Return the current UTC time as ISO-8601 text, by the ledger's clock."""
        return utc_text(self.clock(dt.UTC))

    # --- credit --------------------------------------------------------------------------------

    def add_credit(self, **request: Any) -> CreditResult:
        """Add or remove credit, checking the rules of spec section 6 in order."""
        return self.submit_credit(**request, inline=True).result()

    def credit_op(
        self,
        *,
        clientid: str | None,
        amount: str | None,
        description: str | None,
        type: str | None = None,
        date: str | None = None,
        adminid: str | None = None,
        category: str | None = None,
        expires: str | None = None,
        actor: Actor,
        at: str | None = None,
        today: str | None = None,
    ) -> CreditOp:
        """Check rules 1-7 of spec section 6 in order, then the grant extensions (``category``
        and ``expires``, section 7), and return the balance change to apply.

        ``at`` and ``today`` (the write's time and the default date) are given by batch callers,
        whose credits share one commit; others get the current ones.
        """
        kind = (type or "add").lower()
        if kind not in ("add", "remove"):
            raise errors.InvalidType()
        if not amount or (_ZERO.fullmatch(amount) and Decimal(amount) == 0):
            raise errors.NoAmount()
        if not money.is_amount_text(amount):
            raise errors.InvalidAmount()
        cents = _amount_cents(amount)
        day = today or self.today()
        when = self._date(date) if date else day
        if not description:
            raise errors.NoDescription()
        if len(description) > MAX_DESCRIPTION:
            raise errors.DescriptionTooLong()
        check_text(description, "description")
        client_id = parse_id(clientid)
        if client_id is None:
            raise errors.ClientIdNotFound()
        admin_id = actor.admin_id
        if adminid:
            if self.store.get_client(client_id) is None:
                raise errors.ClientIdNotFound()
            admin = self.store.get_admin(parse_id(adminid) or 0)
            if admin is None or admin.disabled:
                raise errors.AdminIdNotFound()
            admin_id = admin.id
        if category or expires or self.category_periods()["paid"]:
            grant_category, grant_expires = self.grant_fields(kind, when, category, expires)
        else:
            grant_category, grant_expires = "paid", ""
        return CreditOp(
            client_id,
            -cents if kind == "remove" else cents,
            when,
            description,
            admin_id,
            actor,
            at or self.now(),
            category=grant_category,
            expires=grant_expires,
            today=day,
        )

    def submit_credit(
        self,
        *,
        actor: Actor,
        idem: IdempotencyKey | None = None,
        inline: bool = False,
        **request: str | None,
    ) -> Deferred[CreditResult]:
        """Validate a credit (rules 1-7 raise at once) and start the write (rules 8-9).

        ``request`` holds AddCredit's fields (``clientid``, ``amount``, ``description``,
        ``type``, ``date``, ``adminid``). ``inline``: the caller will block on the result (a
        thread, not an event loop).
        """
        op = self.credit_op(actor=actor, **request)
        return Deferred(self.store.submit_credit(op, idem, inline=inline), _credit_result)

    def credit_many(
        self, requests: Iterable[Mapping[str, str | None]], *, actor: Actor
    ) -> list[CreditResult | errors.CreditError]:
        """Apply many credits in one durable commit, in order, each checked on its own.

        Each request holds AddCredit's fields; each outcome is its result or its refusal. A
        database failure fails the whole call (``StoreError``) and applies nothing.
        """
        outcomes: list[CreditResult | errors.CreditError] = []
        ops: list[tuple[int, CreditOp]] = []
        at, today = self.now(), self.today()
        for request in requests:
            try:
                fields = {f: request.get(f) for f in CREDIT_FIELDS}
                op = self.credit_op(actor=actor, at=at, today=today, **fields)
            except errors.CreditError as exc:
                outcomes.append(exc)
                continue
            ops.append((len(outcomes), op))
            outcomes.append(CreditResult(0))
        applied = self.store.apply_credits([op for _, op in ops])
        for (index, _), outcome in zip(ops, applied, strict=True):
            if isinstance(outcome, errors.CreditError):
                outcomes[index] = outcome
            else:
                outcomes[index] = CreditResult(outcome)
        return outcomes

    def _date(self, date: str | None) -> str:
        if not date:
            return self.today()
        day = parse_day(date)
        if day is None:
            raise errors.InvalidDate()
        return day

    def get_credits(
        self, clientid: str | None, offset: int = 0, limit: int | None = None
    ) -> tuple[int, int, Iterator[CreditEntry]]:
        """Return a client's entry total, the page size and the page's entries, oldest first.

        Entries are append-only, so the first ``total`` always exist and the page is exact
        even while new entries arrive. ``limit=None`` means every entry.
        """
        client_id = parse_id(clientid)
        if client_id is None or self.store.get_client(client_id) is None:
            raise errors.ClientIdNotFound()
        total = self.store.count_credits(client_id)
        count = max(0, min(total if limit is None else limit, total - offset))
        return total, count, self.store.iter_credits(client_id, offset, count)

    def day(self, text: str | None) -> str:
        """Check a ``YYYY-MM-DD`` day (``asof`` and the like); ``Date Format is not Valid``."""
        if not text:
            raise errors.InvalidDate()
        return self._date(text)

    def get_credits_asof(
        self, clientid: str | None, asof: str, offset: int = 0, limit: int | None = None
    ) -> tuple[int, int, int, Iterator[CreditEntry]]:
        """Return a client's history as it stood at the end of a day (entries dated up to it).

        The result is the entry total, the page size, the balance at the end of that day (the
        sum of those entries) and the page's entries, oldest first.
        """
        day = self.day(asof)
        client_id = parse_id(clientid)
        if client_id is None or self.store.get_client(client_id) is None:
            raise errors.ClientIdNotFound()
        total, balance = self.store.credits_until(client_id, day)
        count = max(0, min(total if limit is None else limit, total - offset))
        entries = self.store.iter_credits_until(client_id, day, offset, count)
        return total, count, balance, entries

    def balance_asof(self, client: Client, asof: str) -> int:
        """Return a client's balance at the end of a day (the sum of entries dated up to it)."""
        return self.store.credits_until(client.id, self.day(asof))[1]

    def balances_asof(self, asof: str) -> Iterator[Balance]:
        """Yield every client's balance at the end of a day, streamed in id order."""
        return self.store.iter_balances_asof(self.day(asof))

    def balances_by_category(self, asof: str) -> Iterator[tuple[Balance, dict[str, int]]]:
        """Yield every client's balance at the end of a day with its split by category."""
        return self.store.grants.iter_balances_by_category(self.day(asof))

    # --- clients -------------------------------------------------------------------------------

    def add_client(self, **request: Any) -> ClientResult:
        """Create a client after checking the fields (spec section 7, AddClient)."""
        return self.submit_client(**request, inline=True).result()

    def submit_client(self, **request: Any) -> Deferred[ClientResult]:
        """Validate a new client (raising at once) and start the write."""
        return Deferred(self.start_client(**request), _client_result)


def _amount_cents(text: str) -> int:
    """Convert wire text to cents, saturating past the balance range (the store refuses it)."""
    whole = text.split(".")[0].lstrip("0")
    if len(whole) > 16:
        return money.MAX_BALANCE_CENTS + 1
    return money.to_cents(money.parse_amount(text))
