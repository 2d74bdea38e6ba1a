"""Immutable domain records shared by the ledger, the stores and the transports."""

from __future__ import annotations

from dataclasses import dataclass

ClientId = int
AdminId = int


@dataclass(frozen=True, slots=True)
class Client:
    """A customer account holding a credit balance.

    Attributes:
        id: database id.
        firstname, lastname, companyname, email: contact details.
        currency_code: ISO code the balance is kept in (default ``USD``).
        status: ``Active``, ``Inactive`` or ``Closed``.
        balance_cents: current credit balance in integer cents.
        created_at: ISO-8601 UTC timestamp.
        details: optional address and phone fields (address1, city, phonenumber, ...).
    """

    id: ClientId
    firstname: str
    lastname: str
    companyname: str
    email: str
    currency_code: str
    status: str
    balance_cents: int
    created_at: str
    details: dict[str, str]


@dataclass(frozen=True, slots=True)
class Admin:
    """An administrator: the person behind API credentials and ledger entries.

    Attributes:
        id: database id.
        username: unique login name.
        password_hash: slow hash of the MD5 form of the password.
        firstname, lastname, email: contact details.
        disabled: a disabled admin cannot authenticate.
        access: console access level: ``viewer``, ``manager`` or ``owner``.
    """

    id: AdminId
    username: str
    password_hash: str
    firstname: str
    lastname: str
    email: str
    disabled: bool
    access: str = "manager"


@dataclass(frozen=True, slots=True)
class Credential:
    """An API credential (identifier and hashed secret) owned by an admin.

    Attributes:
        id: database id.
        identifier: public half, sent as ``identifier`` or ``username``.
        secret_hash: SHA-256 of the secret; the secret itself is never stored.
        admin_id: owning admin.
        description: operator's note.
        created_at, last_used_at: ISO-8601 UTC timestamps.
        roles: names of the API roles it carries; empty means full access.
    """

    id: int
    identifier: str
    secret_hash: str
    admin_id: AdminId
    description: str
    created_at: str
    last_used_at: str | None
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CreditEntry:
    """One line of a client's credit log.

    Attributes:
        id: database id (increasing with time).
        client_id: the client whose balance moved.
        admin_id: the admin responsible, 0 for none.
        date: the credit date, ``YYYY-MM-DD``.
        description: admin notes.
        amount_cents: signed amount (negative for removals).
        balance_cents: the client's balance right after this entry.
        relid: related record id (always 0 for manual credits).
        created_at: ISO-8601 UTC timestamp of the write.
        kind: ``grant`` (added credit), ``removal``, ``expiry``, ``restore`` (a reversal of a
            removal), or "" for entries written before grants.
        category, expires: a grant's category and expiry date ("": never); an expiry's
            category is its grant's.
        remaining: what is left of a grant (0 for other entries).
        seq: the entry's number within its client (1, 2, ...).
        spent: what a removal or an expiry took from which grants, as (grant entry id, cents)
            pairs; negative cents for what a restore gave back. Empty unless read with the
            entry's allocations (``Ledger.with_allocations``).
    """

    id: int
    client_id: ClientId
    admin_id: AdminId
    date: str
    description: str
    amount_cents: int
    balance_cents: int
    relid: int
    created_at: str
    kind: str = ""
    category: str = ""
    expires: str = ""
    remaining: int = 0
    seq: int = 0
    spent: tuple[tuple[int, int], ...] = ()

    @property
    def is_grant(self) -> bool:
        """Whether the entry added credit that can be spent (a grant, or credit added before
        grants existed)."""
        return self.kind == "grant" or (self.kind == "" and self.amount_cents > 0)


@dataclass(frozen=True, slots=True)
class Activity:
    """One activity-log line: who did what to which client, from where, when."""

    id: int
    at: str
    actor: str
    admin_id: AdminId
    client_id: ClientId
    ip: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of API actions (normalised lower-case names)."""

    name: str
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an operation and from where, for the activity log and default admin id."""

    name: str
    admin_id: AdminId = 0
    ip: str = ""
