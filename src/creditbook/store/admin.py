"""Access-control writes every SQL store shares: admins, credentials, roles, settings, bans.

Each is one transaction of its own that records an activity line and bumps the invalidation
counter that tells every server process to reload its caches.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import errors
from ..model import Actor
from . import queries as Q
from .console_sql import SESSION_DELETE_ADMIN
from .sql import Cursor, SqlBase


class AdminWrites(SqlBase):
    """Writes to access-control data."""

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
                    access=access,
                    at=at,
                ).fetchone()
                self._activity(cur, actor, at, "addadmin", f"Created admin {username}")
                self._bump(cur, Q.CONFIG_BUMP)
                return int(row[0])
        except errors.StoreError as exc:
            if exc.unique:
                raise errors.DuplicateAdmin() from None
            raise

    def _keep_an_owner(self, cur: Cursor, admin_id: int) -> None:
        """Refuse a change that leaves no enabled owner (before it is written).

        The enabled owners' rows are locked first (a no-op update), so two owners demoting
        each other at once on PostgreSQL cannot both see the other as the one who stays.
        """
        owners = {int(r[0]) for r in self._run(cur, Q.OWNERS_LOCK).fetchall()}
        if owners == {admin_id}:
            raise errors.LastOwner()

    def set_admin_access(self, admin_id: int, access: str, actor: Actor, at: str) -> None:
        """Change an admin's console access level (never the last enabled owner's)."""
        with self._write() as cur:
            if access != "owner":
                self._keep_an_owner(cur, admin_id)
            self._run(cur, Q.ADMIN_SET_ACCESS, access=access, admin_id=admin_id)
            detail = f"Console access of admin #{admin_id}: {access}"
            self._activity(cur, actor, at, "adminaccess", detail)
            self._bump(cur, Q.CONFIG_BUMP)

    def set_admin_disabled(self, admin_id: int, disabled: bool, actor: Actor, at: str) -> None:
        """Disable or re-enable an admin (never the last enabled owner)."""
        with self._write() as cur:
            if disabled:
                self._keep_an_owner(cur, admin_id)
            self._run(cur, Q.ADMIN_SET_DISABLED, disabled=int(disabled), admin_id=admin_id)
            if disabled:  # its console sessions end at once
                self._run(cur, SESSION_DELETE_ADMIN, admin_id=admin_id)
            verb = "Disabled" if disabled else "Enabled"
            self._activity(cur, actor, at, "disableadmin", f"{verb} admin #{admin_id}")
            self._bump(cur, Q.CONFIG_BUMP)

    def set_admin_password(self, admin_id: int, password_hash: str, actor: Actor, at: str) -> None:
        """Replace an admin's password hash."""
        with self._write() as cur:
            self._run(cur, Q.ADMIN_SET_PASSWORD, password_hash=password_hash, admin_id=admin_id)
            self._run(cur, SESSION_DELETE_ADMIN, admin_id=admin_id)
            self._activity(
                cur, actor, at, "adminpassword", f"Set the password of admin #{admin_id}"
            )
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
            self._run(cur, Q.FAILURE_INSERT, ip=ip, now=now, token="")
            self._bump(cur, Q.FAILURE_BUMP)

        self._transact(work)

    def reserve_attempt(
        self, limits: Sequence[tuple[str, int]], now: float, window: float, token: str
    ) -> tuple[float, list[int]]:
        """Count a login attempt under each key before its password is checked, unless a key
        already has its limit of failures in the window.

        Returns (when the ban ends, 0.0 when none; each key's failures including this one).
        The counter is bumped first: its row lock makes concurrent reservations wait for each
        other (PostgreSQL; SQLite's writer lock does that anyway), so no more attempts pass
        than the limits allow, however many arrive at once.
        """

        def work(cur: Cursor) -> tuple[float, list[int]]:
            self._bump(cur, Q.FAILURE_BUMP)
            counts: list[int] = []
            until = 0.0
            for key, limit in limits:
                count, last = self._run(cur, Q.FAILURE_COUNT, ip=key, since=now - window).fetchone()
                if int(count) >= limit:
                    until = max(until, float(last) + window)
                counts.append(int(count) + 1)
            if until:
                return until, counts
            self._run(cur, Q.FAILURE_FORGET, before=now - 86400)
            for key, _ in limits:
                self._run(cur, Q.FAILURE_INSERT, ip=key, now=now, token=token)
            return 0.0, counts

        return self._transact(work)

    def release_attempt(self, token: str) -> None:
        """Take back a reserved attempt (its password was right)."""

        def work(cur: Cursor) -> None:
            self._run(cur, Q.FAILURE_RELEASE, token=token)
            self._bump(cur, Q.FAILURE_BUMP)

        self._transact(work)

    def lift_bans(self, target: str, keys: dict[str, str], actor: Actor, at: str) -> int:
        """Forget the failures counted under a name's or an address's keys; return how many."""
        with self._write() as cur:
            removed = int(self._run(cur, Q.FAILURE_LIFT, **keys).rowcount)
            self._activity(cur, actor, at, "unban", f"Lifted the login bans of {target}")
            self._bump(cur, Q.FAILURE_BUMP)
            return removed
