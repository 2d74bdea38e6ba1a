"""The SQL implementation of the Store protocol shared by the SQLite and PostgreSQL stores.

A subclass supplies connections (``_read``/``_write``, which report driver errors as
``StoreError``) and the dialect of its placeholders (``_q``); everything else is common.
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from functools import partial
from importlib import resources
from typing import Any, TypeVar

from .. import errors
from ..model import Activity, Actor, Admin, Client, Credential, CreditEntry, Role
from ..money import MAX_BALANCE_CENTS, format_cents
from . import queries as Q
from .batch import Stats, commit_units, transact_into
from .protocol import (
    Audit,
    ClientPage,
    CreditOp,
    IdempotencyKey,
    NewClient,
    Replay,
    Waitable,
)

Cursor = Any
Row = tuple[Any, ...]
T = TypeVar("T")
Work = Callable[[Cursor], T]

_PAGE = 2000


def _client(row: Row) -> Client:
    details = json.loads(row[9]) if row[9] else {}
    return Client(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], int(row[7]), row[8], details
    )


def _admin(row: Row) -> Admin:
    return Admin(int(row[0]), row[1], row[2], row[3], row[4], row[5], bool(row[6]))


def _credit(row: Row) -> CreditEntry:
    return CreditEntry(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        row[3],
        row[4],
        int(row[5]),
        int(row[6]),
        int(row[7]),
        row[8],
    )


class SqlStore(abc.ABC):
    """Store protocol over a DB-API connection; subclasses own connections and transactions."""

    url: str

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (one consistent snapshot for the block)."""

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor inside one write transaction: commit on success, roll back on error."""

    @abc.abstractmethod
    def _q(self, sql: str) -> str:
        """Return ``sql`` in the driver's placeholder style."""

    def _run(self, cur: Cursor, sql: str, **params: Any) -> Cursor:
        return cur.execute(self._q(sql), params)

    def _bump(self, cur: Cursor, counter: str) -> None:
        """Bump an invalidation counter (``Q.CONFIG_BUMP`` or ``Q.FAILURE_BUMP``)."""
        self._run(cur, counter)

    def _activity(
        self, cur: Cursor, actor: Actor, at: str, action: str, detail: str, client_id: int = 0
    ) -> None:
        self._run(
            cur,
            Q.ACTIVITY_INSERT,
            at=at,
            actor=actor.name,
            admin_id=actor.admin_id,
            client_id=client_id,
            ip=actor.ip,
            action=action,
            detail=detail,
        )

    # --- idempotency and write submission ------------------------------------------------------

    def _replay(self, cur: Cursor, idem: IdempotencyKey) -> Replay | None:
        """Claim a key, or return the outcome already recorded under it.

        The claim is an insert, so a concurrent duplicate waits on it (PostgreSQL's unique
        index, SQLite's writer lock) and then sees the first request's recorded outcome.
        The one write that may precede a refusal here is forgetting expired keys, which is
        harmless to commit with the rest of a batch (see ``batch.commit_units``).
        """
        self._run(cur, Q.IDEM_FORGET, before=idem.now - idem.keep_seconds)
        claimed = self._run(
            cur,
            Q.IDEM_CLAIM,
            scope=idem.scope,
            key=idem.key,
            fingerprint=idem.fingerprint,
            at=idem.now,
        ).rowcount
        if claimed:
            return None
        row = self._run(cur, Q.IDEM_GET, scope=idem.scope, key=idem.key).fetchone()
        if row[0] != idem.fingerprint:
            raise errors.IdempotencyKeyReused()
        outcome: dict[str, object] = json.loads(row[1])
        return Replay(outcome)

    def _remember(self, cur: Cursor, idem: IdempotencyKey, outcome: dict[str, object]) -> None:
        self._run(cur, Q.IDEM_RECORD, scope=idem.scope, key=idem.key, outcome=dump_json(outcome))

    def _once(self, idem: IdempotencyKey, apply: Work[Any]) -> Work[Any]:
        """Wrap ``apply`` so that it runs once per idempotency key; failures are remembered too."""

        def work(cur: Cursor) -> Any:
            replay = self._replay(cur, idem)
            if replay is not None:
                return replay
            try:
                value = apply(cur)
            except errors.CreditError as exc:
                outcome: dict[str, object] = {"error": exc.message, "status": exc.status}
                self._remember(cur, idem, outcome)
                return Replay(outcome, replayed=False)
            self._remember(cur, idem, {"value": value})
            return value

        return work

    def _submit(self, work: Work[T], inline: bool = False) -> Waitable[T]:
        """Run ``work(cur)`` in one write transaction; stores that batch writes override this."""
        future: Future[T] = Future()
        transact_into(future, self._write, work)
        return future

    def _submit_op(
        self, work: Work[Any], idem: IdempotencyKey | None, inline: bool
    ) -> Waitable[int | Replay]:
        """Submit an API write, once per idempotency key when one is given."""
        return self._submit(work if idem is None else self._once(idem, work), inline)

    def _transact(self, work: Work[T]) -> T:
        """Run ``work(cur)`` in one write transaction and return its value."""
        return self._submit(work, inline=True).result()

    # --- writes --------------------------------------------------------------------------------

    def _apply_credit(self, cur: Cursor, op: CreditOp) -> int:
        row = self._run(
            cur,
            Q.CREDIT_UPDATE,
            amount=op.amount_cents,
            client_id=op.client_id,
            max=MAX_BALANCE_CENTS,
        ).fetchone()
        if row is None:
            self._refuse_credit(cur, op)
        balance = int(row[0])
        self._run(
            cur,
            Q.CREDIT_INSERT,
            client_id=op.client_id,
            seq=row[1],
            admin_id=op.admin_id,
            date=op.date,
            description=op.description,
            amount=op.amount_cents,
            balance=balance,
            at=op.at,
        )
        self._activity(cur, op.actor, op.at, "addcredit", credit_detail(op), op.client_id)
        return balance

    def _refuse_credit(self, cur: Cursor, op: CreditOp) -> None:
        row = self._run(cur, Q.CLIENT_BALANCE, client_id=op.client_id).fetchone()
        if row is None:
            raise errors.ClientIdNotFound()
        if op.amount_cents < 0:
            raise errors.InsufficientCredit()
        raise errors.BalanceLimitExceeded()

    def submit_credit(
        self, op: CreditOp, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start a balance change; the future holds the new balance once it is durable.

        ``inline``: the caller will block on the future (see ``Collector.submit``).
        """
        return self._submit_op(partial(self._apply_credit, op=op), idem, inline)

    def submit_credits(self, ops: Sequence[CreditOp]) -> list[Waitable[int | Replay]]:
        """Apply many balance changes in one transaction, in order; one future each, settled."""
        units: list[tuple[Work[Any], Future[Any]]] = [
            (partial(self._apply_credit, op=op), Future()) for op in ops
        ]
        if units:
            commit_units(self._write, units, Stats())
        return [future for _, future in units]

    def apply_credit(self, op: CreditOp, idem: IdempotencyKey | None = None) -> int | Replay:
        """Apply a balance change with its entry and activity line; return the new balance."""
        return self.submit_credit(op, idem, inline=True).result()

    def _add_client(self, cur: Cursor, op: NewClient) -> int:
        key = op.email.lower()
        # Checked first so the refusal happens before any write (a batch commits the rest).
        if self._run(cur, Q.CLIENT_EMAIL_TAKEN, email_key=key).fetchone() is not None:
            raise errors.DuplicateEmail()
        row = self._run(
            cur,
            Q.CLIENT_INSERT,
            firstname=op.firstname,
            lastname=op.lastname,
            companyname=op.companyname,
            email=op.email,
            email_key=key,
            currency_code=op.currency_code,
            status=op.status,
            details=op.details,
            at=op.at,
        ).fetchone()
        client_id = int(row[0])
        self._activity(cur, op.actor, op.at, "addclient", f"Created client {op.email}", client_id)
        return client_id

    def submit_client(
        self, op: NewClient, idem: IdempotencyKey | None = None, *, inline: bool = False
    ) -> Waitable[int | Replay]:
        """Start creating a client; the future holds its id once it is durable.

        A concurrent AddClient that took the address first (the unique index refuses this
        insert after the check passed) is reported as the duplicate it is.
        """
        future = self._submit_op(partial(self._add_client, op=op), idem, inline)
        return _unique_means(future, errors.DuplicateEmail)

    def add_client(self, op: NewClient, idem: IdempotencyKey | None = None) -> int | Replay:
        """Create a client; return its id."""
        return self.submit_client(op, idem, inline=True).result()

    def add_admin(
        self, username: str, password_hash: str, names: tuple[str, str, str], actor: Actor, at: str
    ) -> int:
        """Create an admin (names are first, last, email); return its id."""
        try:
            with self._write() as cur:
                row = self._run(
                    cur,
                    Q.ADMIN_INSERT,
                    username=username,
                    password_hash=password_hash,
                    firstname=names[0],
                    lastname=names[1],
                    email=names[2],
                    at=at,
                ).fetchone()
                self._activity(cur, actor, at, "addadmin", f"Created admin {username}")
                self._bump(cur, Q.CONFIG_BUMP)
                return int(row[0])
        except errors.StoreError as exc:
            if exc.unique:
                raise errors.DuplicateAdmin() from None
            raise

    def set_admin_disabled(self, admin_id: int, disabled: bool, actor: Actor, at: str) -> None:
        """Disable or re-enable an admin."""
        with self._write() as cur:
            self._run(cur, Q.ADMIN_SET_DISABLED, disabled=int(disabled), admin_id=admin_id)
            verb = "Disabled" if disabled else "Enabled"
            self._activity(cur, actor, at, "disableadmin", f"{verb} admin #{admin_id}")
            self._bump(cur, Q.CONFIG_BUMP)

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
        with self._write() as cur:
            for name in roles:
                if self._run(cur, Q.ROLE_EXISTS, name=name).fetchone() is None:
                    raise errors.RoleNotFound(name)
            row = self._run(
                cur,
                Q.CREDENTIAL_INSERT,
                identifier=identifier,
                secret_hash=secret_hash,
                admin_id=admin_id,
                description=description,
                at=at,
            ).fetchone()
            credential_id = int(row[0])
            for name in roles:
                self._run(cur, Q.CREDENTIAL_ADD_ROLE, credential_id=credential_id, name=name)
            self._activity(
                cur,
                actor,
                at,
                "addcredential",
                f"Created credential {identifier} for admin #{admin_id}",
            )
            self._bump(cur, Q.CONFIG_BUMP)
            return credential_id

    def revoke_credential(self, identifier: str, actor: Actor, at: str) -> bool:
        """Delete a credential; return whether it existed."""
        with self._write() as cur:
            row = self._run(cur, Q.CREDENTIAL_GET, identifier=identifier).fetchone()
            if row is None:
                return False
            self._run(cur, Q.CREDENTIAL_DELETE_ROLES, credential_id=row[0])
            self._run(cur, Q.CREDENTIAL_DELETE, identifier=identifier)
            self._activity(cur, actor, at, "revokecredential", f"Revoked credential {identifier}")
            self._bump(cur, Q.CONFIG_BUMP)
            return True

    def touch_credential(self, credential_id: int, at: str) -> None:
        """Record when a credential was last used."""
        self._transact(
            lambda cur: self._run(cur, Q.CREDENTIAL_TOUCH, at=at, credential_id=credential_id)
        )

    def put_role(self, name: str, actions: list[str], actor: Actor, at: str) -> None:
        """Create or replace a role."""
        with self._write() as cur:
            self._run(cur, Q.ROLE_UPSERT, name=name, actions=",".join(actions))
            self._activity(cur, actor, at, "putrole", f"Role {name}: {','.join(actions)}")
            self._bump(cur, Q.CONFIG_BUMP)

    def set_setting(self, name: str, value: str | None, actor: Actor, at: str) -> None:
        """Set (or, with None, clear) a setting shared by every server process."""
        with self._write() as cur:
            if value is None:
                self._run(cur, Q.SETTING_DELETE, name=name)
            else:
                self._run(cur, Q.SETTING_UPSERT, name=name, value=value)
            shown = "(cleared)" if value is None else ("(secret)" if "key" in name else value)
            self._activity(cur, actor, at, "setconfig", f"Setting {name} = {shown}")
            self._bump(cur, Q.CONFIG_BUMP)

    def allow_ip(self, entry: str, actor: Actor, at: str) -> bool:
        """Add an allow-list entry; return whether it was new."""
        with self._write() as cur:
            added = self._run(cur, Q.IP_INSERT, entry=entry, at=at).rowcount > 0
            self._activity(cur, actor, at, "allowip", f"Allowed {entry}")
            self._bump(cur, Q.CONFIG_BUMP)
            return bool(added)

    def deny_ip(self, entry: str, actor: Actor, at: str) -> bool:
        """Remove an allow-list entry; return whether it existed."""
        with self._write() as cur:
            removed = self._run(cur, Q.IP_DELETE, entry=entry).rowcount > 0
            self._activity(cur, actor, at, "denyip", f"Removed {entry} from the allow-list")
            self._bump(cur, Q.CONFIG_BUMP)
            return bool(removed)

    def record_auth_failure(self, ip: str, now: float, forget_before: float) -> None:
        """Record an authentication failure from an address."""

        def work(cur: Cursor) -> None:
            self._run(cur, Q.FAILURE_FORGET, before=forget_before)
            self._run(cur, Q.FAILURE_INSERT, ip=ip, now=now)
            self._bump(cur, Q.FAILURE_BUMP)

        self._transact(work)

    # --- reads ---------------------------------------------------------------------------------

    def versions(self) -> tuple[int, int]:
        """Return the counters of access-control changes and of authentication failures."""
        with self._read() as cur:
            rows = self._run(cur, Q.VERSIONS).fetchall()
        return int(rows[0][0]), int(rows[1][0])

    def get_client(self, client_id: int) -> Client | None:
        """Return a client by id."""
        with self._read() as cur:
            row = self._run(cur, Q.CLIENT_GET, client_id=client_id).fetchone()
        return None if row is None else _client(row)

    def find_client_by_email(self, email: str) -> Client | None:
        """Return a client by e-mail address (case-insensitive)."""
        with self._read() as cur:
            row = self._run(cur, Q.CLIENT_BY_EMAIL, email_key=email.lower()).fetchone()
        return None if row is None else _client(row)

    def list_clients(
        self, offset: int, limit: int, search: str, status: str, descending: bool
    ) -> ClientPage:
        """Return a page of clients ordered by id."""
        pattern = "%" + search.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        params = {"status": status, "search": search, "pattern": pattern}
        page = Q.CLIENT_PAGE_DESC if descending else Q.CLIENT_PAGE_ASC
        with self._read() as cur:
            total = int(self._run(cur, Q.CLIENT_COUNT, **params).fetchone()[0])
            rows = self._run(cur, page, limit=limit, offset=offset, **params).fetchall()
        return ClientPage(total, [_client(r) for r in rows])

    def get_admin(self, admin_id: int) -> Admin | None:
        """Return an admin by id."""
        with self._read() as cur:
            row = self._run(cur, Q.ADMIN_GET, admin_id=admin_id).fetchone()
        return None if row is None else _admin(row)

    def find_admin(self, username: str) -> Admin | None:
        """Return an admin by username."""
        with self._read() as cur:
            row = self._run(cur, Q.ADMIN_BY_NAME, username=username).fetchone()
        return None if row is None else _admin(row)

    def list_admins(self) -> list[Admin]:
        """Return every admin."""
        with self._read() as cur:
            return [_admin(r) for r in self._run(cur, Q.ADMIN_LIST).fetchall()]

    def _credential(self, cur: Cursor, row: Row) -> Credential:
        roles = tuple(
            r[0] for r in self._run(cur, Q.CREDENTIAL_ROLES, credential_id=row[0]).fetchall()
        )
        return Credential(int(row[0]), row[1], row[2], int(row[3]), row[4], row[5], row[6], roles)

    def find_credential(self, identifier: str) -> Credential | None:
        """Return a credential with its roles."""
        with self._read() as cur:
            row = self._run(cur, Q.CREDENTIAL_GET, identifier=identifier).fetchone()
            return None if row is None else self._credential(cur, row)

    def list_credentials(self) -> list[tuple[Credential, str]]:
        """Return every credential with its admin's username."""
        with self._read() as cur:
            rows = self._run(cur, Q.CREDENTIAL_LIST).fetchall()
            return [(self._credential(cur, r), r[7]) for r in rows]

    def list_roles(self) -> list[Role]:
        """Return every role."""
        with self._read() as cur:
            rows = self._run(cur, Q.ROLE_LIST).fetchall()
        return [Role(r[0], tuple(a for a in r[1].split(",") if a)) for r in rows]

    def get_settings(self) -> dict[str, str]:
        """Return every stored setting."""
        with self._read() as cur:
            return {r[0]: r[1] for r in self._run(cur, Q.SETTING_LIST).fetchall()}

    def list_ips(self) -> list[str]:
        """Return the IP allow-list entries."""
        with self._read() as cur:
            return [r[0] for r in self._run(cur, Q.IP_LIST).fetchall()]

    def count_auth_failures(self, ip: str, since: float) -> tuple[int, float]:
        """Return how many failures an address had since a time, and when the last was."""
        with self._read() as cur:
            row = self._run(cur, Q.FAILURE_COUNT, ip=ip, since=since).fetchone()
        return int(row[0]), float(row[1] or 0.0)

    def count_credits(self, client_id: int) -> int:
        """Return how many entries a client has."""
        with self._read() as cur:
            return int(self._run(cur, Q.CREDIT_COUNT, client_id=client_id).fetchone()[0])

    def iter_credits(self, client_id: int, offset: int, limit: int | None) -> Iterator[CreditEntry]:
        """Yield a client's entries oldest first, reading a bounded page of rows at a time.

        Entries are numbered per client (``seq``), so any page is an index range lookup.
        """
        after, remaining = offset, limit
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            with self._read() as cur:
                rows = self._run(
                    cur, Q.CREDIT_PAGE, client_id=client_id, after=after, limit=size
                ).fetchall()
            for row in rows:
                yield _credit(row)
            if len(rows) < size:
                return
            after = int(rows[-1][-1])
            if remaining is not None:
                remaining -= len(rows)

    def list_activity(self, client_id: int | None, limit: int) -> list[Activity]:
        """Return the newest activity lines, newest first."""
        with self._read() as cur:
            if client_id is None:
                rows = self._run(cur, Q.ACTIVITY_LIST, limit=limit).fetchall()
            else:
                rows = self._run(
                    cur, Q.ACTIVITY_LIST_CLIENT, client_id=client_id, limit=limit
                ).fetchall()
        return [
            Activity(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), r[5], r[6], r[7]) for r in rows
        ]

    def client_id_range(self) -> tuple[int, int]:
        """Return the lowest and highest client id (0, 0 when there are none)."""
        with self._read() as cur:
            row = self._run(cur, Q.CLIENT_ID_RANGE).fetchone()
        return int(row[0]), int(row[1])

    def audit(self, first: int = 0, last: int = 2**62) -> Iterator[Audit]:
        """Yield, per client in an id range, what its entries say against what it stores."""
        with self._read() as cur:
            rows = self._run(cur, Q.AUDIT, first=first, last=last).fetchall()
        for r in rows:
            yield Audit(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))


def _unique_means(future: Waitable[T], error: type[errors.CreditError]) -> Waitable[T]:
    """Return a future that reports a lost unique-constraint race as ``error``."""
    mapped: Waitable[T] = (
        future.get_loop().create_future() if isinstance(future, asyncio.Future) else Future()
    )

    def done(settled: Waitable[T]) -> None:
        exc = settled.exception()
        if isinstance(exc, errors.StoreError) and exc.unique:
            mapped.set_exception(error())
        elif exc is not None:
            mapped.set_exception(exc)
        else:
            mapped.set_result(settled.result())

    future.add_done_callback(done)
    return mapped


def credit_detail(op: CreditOp) -> str:
    """Describe a balance change for the activity log."""
    verb = "Added" if op.amount_cents > 0 else "Removed"
    return f"{verb} credit {format_cents(abs(op.amount_cents))}: {op.description[:200]}"


def migrations(dialect: str) -> list[tuple[int, str]]:
    """Return the numbered migration scripts of a dialect, in order."""
    folder = resources.files("creditbook.store") / "migrations" / dialect
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), item.read_text(encoding="utf-8")))
    return sorted(found)


def dump_json(value: object) -> str:
    """Serialise a small value for storage."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
