"""The access-control use cases: admins, API credentials, roles and the activity log."""

from __future__ import annotations

import ipaddress

from . import errors, security
from .model import Activity, Actor, Admin, Credential, Role
from .rules import MAX_FIELD, NUL, USERNAME, check_text, now
from .store import Store

#: Console access levels, each including the one before.
ACCESS_LEVELS = ("viewer", "manager", "owner")
#: The shortest password an admin may have, whichever transport sets it.
MIN_PASSWORD = 10


def check_password(password: str) -> str:
    """Refuse a password shorter than ``MIN_PASSWORD`` characters (one rule everywhere)."""
    if len(password) < MIN_PASSWORD:
        raise errors.ValidationError(f"Passwords are at least {MIN_PASSWORD} characters")
    return password


class AccessCases:
    """Admins, credentials, roles and the activity log, over ``self.store``."""

    store: Store

    def now(self) -> str:
        """Return the current UTC time as ISO-8601 text."""
        return now()

    def add_admin(
        self,
        username: str,
        password: str,
        *,
        firstname: str = "",
        lastname: str = "",
        email: str = "",
        access: str = "manager",
        actor: Actor,
    ) -> int:
        """Create an admin whose password is stored as a slow hash."""
        if not USERNAME.fullmatch(username):
            raise errors.InvalidUsername()
        if access not in ACCESS_LEVELS:
            raise errors.InvalidAccessLevel()
        check_password(password)
        for field, value in (
            ("first name", firstname),
            ("last name", lastname),
            ("email address", email),
        ):
            if len(value) > MAX_FIELD:
                raise errors.FieldTooLong(field)
            check_text(value, field)
        return self.store.add_admin(
            username,
            security.hash_password(password),
            (firstname, lastname, email),
            actor,
            self.now(),
            access,
        )

    def admin(self, username: str) -> Admin:
        """Return an admin by username."""
        admin = self.find_admin(username)
        if admin is None:
            raise errors.AdminNotFound()
        return admin

    def find_admin(self, username: str) -> Admin | None:
        """Return an admin by username, or None."""
        return None if NUL in username else self.store.find_admin(username)

    def set_admin_disabled(self, username: str, disabled: bool, *, actor: Actor) -> None:
        """Disable or re-enable an admin."""
        self.store.set_admin_disabled(self.admin(username).id, disabled, actor, self.now())

    def set_admin_access(self, username: str, access: str, *, actor: Actor) -> None:
        """Give an admin a console access level: ``viewer``, ``manager`` or ``owner``."""
        level = access.strip().lower()
        if level not in ACCESS_LEVELS:
            raise errors.InvalidAccessLevel()
        admin = self.admin(username)
        self.store.set_admin_access(admin.id, level, actor, self.now())

    def set_admin_password(self, username: str, password: str, *, actor: Actor) -> None:
        """Give an admin a new password (stored as a slow hash), e.g. after an import."""
        hashed = security.hash_password(check_password(password))
        self.store.set_admin_password(self.admin(username).id, hashed, actor, self.now())

    def add_credential(
        self,
        username: str,
        *,
        description: str = "",
        roles: list[str] | None = None,
        actor: Actor,
    ) -> tuple[str, str]:
        """Create an API credential for an admin; return (identifier, secret), shown once."""
        admin = self.admin(username)
        check_text(description, "description")
        identifier, secret = security.new_identifier(), security.new_secret()
        self.store.add_credential(
            identifier,
            security.hash_secret(secret),
            admin.id,
            description,
            sorted(set(roles or [])),
            actor,
            self.now(),
        )
        return identifier, secret

    def revoke_credential(self, identifier: str, *, actor: Actor) -> None:
        """Delete an API credential."""
        if not self.store.revoke_credential(identifier, actor, self.now()):
            raise errors.CredentialNotFound()

    def credential(self, identifier: str) -> Credential | None:
        """Return a credential by identifier."""
        return None if NUL in identifier else self.store.find_credential(identifier)

    def list_credentials(self) -> list[tuple[Credential, str]]:
        """Return every credential with its admin's username."""
        return self.store.list_credentials()

    def list_admins(self) -> list[Admin]:
        """Return every admin."""
        return self.store.list_admins()

    def unban(self, target: str, *, actor: Actor) -> int:
        """Lift the login bans of a username or an address (API and console); return how many
        counted failures were forgotten."""
        from .whmcs.access import lift_keys

        target = target.strip()
        if not USERNAME.fullmatch(target) and not _is_address(target):
            raise errors.ValidationError("Name a username or an IP address to unban")
        return self.store.lift_bans(target, lift_keys(target), actor, self.now())

    def put_role(self, name: str, actions: list[str], *, actor: Actor) -> None:
        """Create or replace an API role."""
        if not USERNAME.fullmatch(name):
            raise errors.InvalidSetting("Role names are 1 to 64 letters, digits, . _ - or @")
        self.store.put_role(name, actions, actor, self.now())

    def list_roles(self) -> list[Role]:
        """Return every API role."""
        return self.store.list_roles()

    def activity(self, client_id: int | None = None, limit: int = 100) -> list[Activity]:
        """Return the newest activity-log lines."""
        return self.store.list_activity(client_id, limit)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
