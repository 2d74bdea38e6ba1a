"""Authentication (spec section 3): API credentials and the legacy admin login."""

from __future__ import annotations

from dataclasses import dataclass

from .. import errors, security
from ..model import Admin, Credential
from .access import AccessPolicy
from .levels import actions_for
from .params import Params, scalar


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request authenticated as, and what it may do.

    Attributes:
        admin: the admin acting.
        credential: the API credential used, or None for an admin login or ``local_api``.
        actions: the actions it may call (its admin's access level, narrowed by the
            credential's roles), or None for full access (``local_api`` with no admin).
    """

    admin: Admin | None
    credential: Credential | None
    actions: frozenset[str] | None

    def allows(self, action: str) -> bool:
        """Tell whether any of the principal's roles grants an action."""
        return self.actions is None or action in self.actions

    @property
    def name(self) -> str:
        """Name for the activity log and for scoping idempotency keys."""
        if self.credential is not None:
            return f"credential:{self.credential.identifier}"
        return f"admin:{self.admin.username}" if self.admin else "local"


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """A legacy admin login waiting for its slow password hash.

    The hash is computed off the event loop (``security.verify_later``), and an unknown username
    is checked against a dummy hash: every wrong login costs the same, so timing tells nothing
    about which usernames exist.

    Attributes:
        admin: the admin named by the username, or None when there is none.
        md5_form: the password as sent (lower-case hex MD5).
        username: the username as sent (failed logins are counted under it too).
    """

    admin: Admin | None
    md5_form: str
    username: str = ""

    @property
    def stored(self) -> str:
        """The hash to verify against (a dummy one for unknown usernames)."""
        return self.admin.password_hash if self.admin else security.dummy_hash()

    def conclude(self, ok: bool) -> Principal:
        """Turn the verification's outcome into a principal, or raise why it failed.

        A disabled admin is told so whether the password was right or not: the answer never
        confirms a password.
        """
        if self.admin is not None and self.admin.disabled:
            raise errors.AdminDisabled()
        if not ok or self.admin is None:
            raise errors.AuthenticationFailed()
        return Principal(self.admin, None, actions_for(self.admin.access))


def authenticate(policy: AccessPolicy, params: Params) -> Principal | PasswordCheck:
    """Authenticate by credential (at once) or start an admin login (a ``PasswordCheck``).

    Raise ``AccessDenied`` subclasses for what is known to fail without a slow hash.
    """
    identifier = scalar(params, "identifier")
    if identifier is not None:
        secret = scalar(params, "secret")
        credential = policy.credential(identifier)
        if secret is None or credential is None:
            raise errors.InvalidCredentials()
        if not security.verify_secret(secret, credential.secret_hash):
            raise errors.AuthenticationFailed()
        return _by_credential(policy, credential)
    username, password = scalar(params, "username"), scalar(params, "password")
    if username is None or password is None:
        raise errors.AuthenticationFailed()
    credential = policy.credential(username)
    if credential is not None and security.verify_secret(password, credential.secret_hash):
        return _by_credential(policy, credential)
    if not _md5_like(password):
        raise errors.AuthenticationFailed()
    return PasswordCheck(policy.ledger.find_admin(username), password, username)


def _md5_like(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text)


def _by_credential(policy: AccessPolicy, credential: Credential) -> Principal:
    admin = policy.admin(credential.admin_id)
    if admin is None:
        raise errors.AuthenticationFailed()
    if admin.disabled:
        raise errors.AdminDisabled()
    policy.touch(credential)
    allowed = actions_for(admin.access)
    if not credential.roles:
        return Principal(admin, credential, allowed)
    granted: set[str] = set()
    for role in credential.roles:
        granted |= policy.roles.get(role, frozenset())
    return Principal(admin, credential, allowed & granted)
