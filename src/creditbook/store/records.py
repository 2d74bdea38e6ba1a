"""The records a store reads and writes: balance changes, idempotency keys and replays, chain
entries, seals, balances as of a day and pages of clients."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar, Union

from ..model import Actor, Client

T = TypeVar("T")
#: A write's future: ``asyncio`` when the caller awaits it on its event loop, else
#: ``concurrent.futures`` (a caller that blocks in a thread).
Waitable = Union[Future[T], "asyncio.Future[T]"]


@dataclass(frozen=True, slots=True)
class CreditOp:
    """One balance change, already validated: the store applies it atomically or refuses it.

    ``amount_cents`` is signed (negative removes). The store refuses with ``ClientIdNotFound``,
    ``InsufficientCredit`` or ``BalanceLimitExceeded`` and then changes nothing.

    Attributes:
        kind: ``grant``, ``removal``, ``expiry`` or ``restore`` ("": by the sign, a grant or a
            removal: ``kind_of``).
        category, expires: a grant's.
        grant_seq: an expiry's grant, or the grant a reversal of a grant takes back (what
            remains of it, whatever ``amount_cents`` says).
        restore_of: the removal (its number within the client) whose allocations a restore
            gives back.
        today: the day the change is made, in the configured zone (grants past their expiry
            day cannot be spent); the entry's date when empty.
        spent: the allocations, filled in by the store as it applies a spending change.
    """

    client_id: int
    amount_cents: int
    date: str
    description: str
    admin_id: int
    actor: Actor
    at: str
    kind: str = ""
    category: str = "paid"
    expires: str = ""
    grant_seq: int = 0
    restore_of: int = 0
    today: str = ""
    spent: tuple[tuple[int, int], ...] = ()

    @property
    def kind_of(self) -> str:
        """The entry's kind: the one given, else a grant or a removal by the sign."""
        return self.kind or ("grant" if self.amount_cents > 0 else "removal")

    @property
    def plain(self) -> bool:
        """Whether this adds paid credit that never expires (AddCredit's common case)."""
        return self.kind_of == "grant" and self.category == "paid" and not self.expires

    @property
    def grant_fields(self) -> tuple[str, str, str]:
        """The entry's kind, category and expiry date as stored (a grant's or an expiry's
        own; a removal's and a restore's category and date are their allocations')."""
        kind = self.kind_of
        if kind in ("grant", "expiry"):
            return kind, self.category, self.expires
        return kind, "", ""


@dataclass(frozen=True, slots=True)
class NewClient:
    """A client to create; ``details`` holds optional address and phone fields as JSON text,
    ``search_key`` and ``sort_key`` its folded search text and name (``clients.client_keys``)."""

    firstname: str
    lastname: str
    companyname: str
    email: str
    currency_code: str
    status: str
    details: str
    actor: Actor
    at: str
    search_key: str = ""
    sort_key: str = ""


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An idempotency key scoped to a caller, with the fingerprint of the request it names."""

    scope: str
    key: str
    fingerprint: str
    now: float
    keep_seconds: float


@dataclass(frozen=True, slots=True)
class Replay:
    """An outcome recorded under an idempotency key.

    ``replayed`` is false for the first request's own failure, recorded so retries repeat it.
    """

    outcome: dict[str, object] = field(default_factory=dict)
    replayed: bool = True


class ChainHead(NamedTuple):
    """A client's stored figures, which ``verify`` checks against its entries."""

    client_id: int
    balance_cents: int
    entries: int
    head_hash: str


class ChainEntry(NamedTuple):
    """What an entry's hash covers, with the hashes it stores (for ``verify``).

    A named tuple rather than a dataclass: ``verify`` reads ten million of them.
    """

    id: int
    client_id: int
    seq: int
    date: str
    amount_cents: int
    admin_id: int
    relid: int
    created_at: str
    actor: str
    description: str
    prev_hash: str
    hash: str
    balance_cents: int
    kind: str
    category: str
    expires: str
    remaining: int


class Allocation(NamedTuple):
    """What a spending entry took from a grant (negative: what a restore gave back)."""

    client_id: int
    seq: int
    grant_seq: int
    amount: int


@dataclass(frozen=True, slots=True)
class Seal:
    """A recorded seal: when it was taken, what it covered, and its digest."""

    id: int
    at: str
    clients: int
    entries: int
    digest: str


@dataclass(frozen=True, slots=True)
class Balance:
    """A client's balance at the end of a day (``balances --asof``)."""

    client_id: int
    firstname: str
    lastname: str
    companyname: str
    email: str
    currency_code: str
    balance_cents: int


@dataclass(frozen=True, slots=True)
class ClientPage:
    """One page of clients and the total that matched."""

    total: int
    clients: list[Client]
