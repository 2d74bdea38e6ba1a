"""The Store protocol: what the ledger needs from a database, and the write operations it sends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import CreditError
from ..model import Activity, Actor, Admin, Client, Credential, CreditEntry, Role

if TYPE_CHECKING:
    from .approvals import ApprovalStore
    from .bulk import BulkStore
    from .factors import FactorStore
    from .grants import GrantStore
    from .reports import ReportStore

from .records import (
    Allocation,
    Balance,
    ChainEntry,
    ChainHead,
    ClientPage,
    CreditOp,
    IdempotencyKey,
    NewClient,
    Replay,
    Seal,
    T,
    Waitable,
)

__all__ = [
    "Allocation",
    "Balance",
    "ChainEntry",
    "ChainHead",
    "ClientPage",
    "CreditOp",
    "IdempotencyKey",
    "NewClient",
    "Replay",
    "Seal",
    "T",
    "Waitable",
    "Store",
]


class Store(Protocol):
    """A database holding the ledger. Every write method is one atomic transaction."""

    url: str

    @property
    def bulk(self) -> BulkStore:
        """Bulk credit's claims (a part of the store)."""

    @property
    def grants(self) -> GrantStore:
        """Credit grants' categories, thresholds, figures and expiry (a part of the store)."""

    @property
    def approvals(self) -> ApprovalStore:
        """Four-eyes approval's rules and requests (a part of the store)."""

    @property
    def factors(self) -> FactorStore:
        """Two-factor login's secrets and recovery codes (a part of the store)."""

    @property
    def reports(self) -> ReportStore:
        """The month-end reports' reads (a part of the store)."""

    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""

    def close(self) -> None:
        """Release connections."""

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers."""

    # writes
    def submit_credit(
        self, op: CreditOp, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start a balance change; the future holds the new balance once it is durable.

        ``inline`` is a hint from callers that will block on the future (not an event loop).
        """

    def apply_credits(self, ops: Sequence[CreditOp]) -> list[int | CreditError]:
        """Apply many balance changes in one durable transaction, in order; each its new
        balance or its refusal (``StoreError`` fails them all and applies nothing)."""

    def submit_client(
        self, op: NewClient, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start creating a client; the future holds its id once it is durable."""

    def apply_credit(self, op: CreditOp, idem: IdempotencyKey | None = None) -> int | Replay:
        """Apply a balance change with its entry and activity line; return the new balance."""

    def add_client(self, op: NewClient, idem: IdempotencyKey | None = None) -> int | Replay:
        """Create a client; return its id."""

    def submit_update(
        self,
        client_id: int,
        row: dict[str, Any],
        changed: dict[str, tuple[str, str]],
        actor: Actor,
        at: str,
        *,
        inline: bool = False,
    ) -> Waitable[None]:
        """Start writing a client's new fields with an activity line naming the old and new
        values (``DuplicateEmail``; ``CurrencyLocked`` once the client has entries)."""

    def add_admin(
        self,
        username: str,
        password_hash: str,
        names: tuple[str, str, str],
        actor: Actor,
        at: str,
        access: str = "manager",
    ) -> int:
        """Create an admin (names are first, last, email); return its id."""

    def set_admin_password(self, admin_id: int, password_hash: str, actor: Actor, at: str) -> None:
        """Replace an admin's password hash."""

    def set_admin_disabled(self, admin_id: int, disabled: bool, actor: Actor, at: str) -> None:
        """Disable or re-enable an admin (``LastOwner``: never the last enabled owner)."""

    def set_admin_access(self, admin_id: int, access: str, actor: Actor, at: str) -> None:
        """Change an admin's console access level (``LastOwner``: never the last owner's)."""

    def add_credential(
        self,
        identifier: str,
        secret_hash: str,
        admin_id: int,
        description: str,
        roles: list[str],
        actor: Actor,
        at: str,
    ) -> int:
        """Create an API credential carrying the named roles; return its id."""

    def revoke_credential(self, identifier: str, actor: Actor, at: str) -> bool:
        """Delete a credential; return whether it existed."""

    def touch_credential(self, credential_id: int, at: str) -> None:
        """Record when a credential was last used."""

    def put_role(self, name: str, actions: list[str], actor: Actor, at: str) -> None:
        """Create or replace a role."""

    def set_setting(self, name: str, value: str | None, actor: Actor, at: str) -> None:
        """Set (or, with None, clear) a setting shared by every server process."""

    def allow_ip(self, entry: str, actor: Actor, at: str) -> bool:
        """Add an allow-list entry; return whether it was new."""

    def deny_ip(self, entry: str, actor: Actor, at: str) -> bool:
        """Remove an allow-list entry; return whether it existed."""

    def record_auth_failure(self, ip: str, now: float, forget_before: float) -> None:
        """Record an authentication failure from an address."""

    def reserve_attempt(
        self, limits: Sequence[tuple[str, int]], now: float, window: float, token: str
    ) -> tuple[float, list[int]]:
        """Count a login attempt under keys before its check; (ban end or 0.0, counts)."""

    def release_attempt(self, token: str) -> None:
        """Take back a reserved attempt (its password was right)."""

    def lift_bans(self, target: str, keys: dict[str, str], actor: Actor, at: str) -> int:
        """Forget the failures counted under a name's or an address's keys."""

    # reads
    def versions(self) -> tuple[int, int]:
        """Return the counters of access-control changes and of authentication failures."""

    def get_client(self, client_id: int) -> Client | None:
        """Return a client by id."""

    def find_client_by_email(self, email: str) -> Client | None:
        """Return a client by e-mail address (case-insensitive)."""

    def list_clients(
        self, offset: int, limit: int, search: str, status: str, descending: bool
    ) -> ClientPage:
        """Return a page of clients ordered by id."""

    def get_admin(self, admin_id: int) -> Admin | None:
        """Return an admin by id."""

    def find_admin(self, username: str) -> Admin | None:
        """Return an admin by username."""

    def list_admins(self) -> list[Admin]:
        """Return every admin."""

    def find_credential(self, identifier: str) -> Credential | None:
        """Return a credential with its roles."""

    def list_credentials(self) -> list[tuple[Credential, str]]:
        """Return every credential with its admin's username."""

    def list_roles(self) -> list[Role]:
        """Return every role."""

    def get_settings(self) -> dict[str, str]:
        """Return every stored setting."""

    def list_ips(self) -> list[str]:
        """Return the IP allow-list entries."""

    def auth_failure_keys(self, since: float) -> list[tuple[str, int, float]]:
        """Every key with failures since a time: how many, and when the last was."""

    def count_auth_failures(self, ip: str, since: float) -> tuple[int, float]:
        """Return how many failures an address had since a time, and when the last was."""

    def count_credits(self, client_id: int) -> int:
        """Return how many entries a client has."""

    def iter_credits(self, client_id: int, offset: int, limit: int | None) -> Iterator[CreditEntry]:
        """Yield a client's entries oldest first, streaming from the database."""

    def credits_until(self, client_id: int, until: str) -> tuple[int, int]:
        """Return how many entries a client has dated on or before a day, and their sum."""

    def iter_credits_until(
        self, client_id: int, until: str, offset: int, limit: int | None
    ) -> Iterator[CreditEntry]:
        """Yield a client's entries dated on or before a day, oldest first."""

    def iter_balances_asof(self, until: str) -> Iterator[Balance]:
        """Yield every client's balance at the end of a day, in id order."""

    def chain_entries(self, first: int, last: int) -> Iterator[ChainEntry]:
        """Stream the entries of clients in an id range, by client and sequence number."""

    def seal(self, at: str) -> tuple[Seal, list[tuple[int, int, str]]]:
        """Record a seal over every client's chain head now; return it and the heads."""

    def find_seals(self, digest: str) -> list[Seal]:
        """Return the seals recorded with a digest."""

    def seal_heads(self, seal_id: int) -> Iterator[tuple[int, int, str, str | None]]:
        """Yield a seal's heads (client, seq, sealed hash) with the entry's hash there now."""

    def backfill_chain(self) -> int:
        """Compute the hashes of entries written before the chain existed; return how many."""

    def list_activity(self, client_id: int | None, limit: int) -> list[Activity]:
        """Return the newest activity lines, newest first."""

    def client_id_range(self) -> tuple[int, int]:
        """Return the lowest and highest id of a client or an entry's client (0, 0: none)."""

    def ledger_slice(
        self, first: int, last: int
    ) -> AbstractContextManager[tuple[list[ChainHead], Iterator[ChainEntry], Iterator[Allocation]]]:
        """Read the clients of an id range and stream their entries and allocations, from one
        snapshot."""
