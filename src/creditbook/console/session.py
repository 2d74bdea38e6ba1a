"""Console sessions: log in (throttled, slow hash off the loop), look up, log out, CSRF tokens.

Sessions live in the database, known by the SHA-256 of their id (the id itself is only in the
browser's cookie), so every process and host shares them, and logging out or disabling an admin
ends them at once. Failed logins are counted per address and per username under keys of their
own in the API's failure table, with the API's ban settings (``ban_failures``, ``ban_minutes``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from .. import security
from ..ledger import Ledger
from ..model import Actor, Admin
from ..store.console import console_store
from ..whmcs.access import AccessPolicy

COOKIE = "creditbook_session"
#: A session's last-seen time is written at most this often (seconds): a page view is a read.
TOUCH_EVERY = 60.0


class LoginRefused(Exception):
    """A login that did not succeed, with the message the form shows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Staffer:
    """The admin behind a console request, with the session's id and CSRF token."""

    admin: Admin
    session_id: str
    csrf: str
    ip: str

    @property
    def actor(self) -> Actor:
        """Who the activity log names for this admin's changes."""
        return Actor(f"console:{self.admin.username}", self.admin.id, self.ip)


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: derived from its secret id, so it is never stored."""
    return hmac.new(session_id.encode("ascii", "replace"), b"csrf", hashlib.sha256).hexdigest()


class Sessions:
    """Logins and sessions over the store, with the access policy's settings and ban counts."""

    def __init__(
        self, ledger: Ledger, policy: AccessPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self.ledger = ledger
        self.store = console_store(ledger.store)
        self.policy = policy
        self.clock = clock

    def _limits(self) -> tuple[float, float]:
        return (
            self.policy.number("console_idle_minutes") * 60.0,
            self.policy.number("console_session_hours") * 3600.0,
        )

    def load(self, session_id: str, ip: str) -> Staffer | None:
        """Return the staffer of a live session, or None (unknown, expired, admin disabled).

        The caller refreshes the access policy first (its settings give the time limits)."""
        if not session_id or len(session_id) > 100:
            return None
        key = security.hash_secret(session_id)
        found = self.store.get_session(key)
        if found is None:
            return None
        admin_id, created, seen = found
        now = self.clock()
        idle, longest = self._limits()
        if now - seen > idle or now - created > longest:
            self.store.end_session(key)
            return None
        admin = self.ledger.store.get_admin(admin_id)
        if admin is None or admin.disabled:
            self.store.end_session(key)
            return None
        if now - seen >= TOUCH_EVERY:
            self.store.touch_session(key, now)
        return Staffer(admin, session_id, csrf_token(session_id), ip)

    async def login(self, username: str, password: str, ip: str, old: str = "") -> Staffer:
        """Check a username and password; return a new session (the old one ends).

        Raise ``LoginRefused`` with the form's message. Wrong usernames and wrong passwords
        get the same message and cost the same slow hash. Database work runs on worker threads
        and the hash on the hashing thread, never on the event loop the API shares.
        """
        keys = (f"console:{ip}", f"console-user:{username.lower()[:64]}")
        admin = await run_in_threadpool(self._admin_unless_throttled, username, keys)
        stored = admin.password_hash if admin is not None else security.dummy_hash()
        try:
            future = security.verify_later(security.md5_hex(password), stored)
        except security.Busy:
            raise LoginRefused("The server is busy: try again in a moment") from None
        ok = await asyncio.wrap_future(future)
        return await run_in_threadpool(self._conclude, ok and bool(password), admin, keys, ip, old)

    def _admin_unless_throttled(self, username: str, keys: tuple[str, str]) -> Admin | None:
        self.policy.refresh()
        until = max(self.policy.banned_until(k) for k in keys)
        if until > self.clock():
            raise LoginRefused(f"Too many failed logins: try again after {_clock(until)}")
        return self.ledger.find_admin(username) if username else None

    def _conclude(
        self, ok: bool, admin: Admin | None, keys: tuple[str, str], ip: str, old: str
    ) -> Staffer:
        if not ok or admin is None:
            for key in keys:
                self.policy.record_failure(key)
            raise LoginRefused("Wrong username or password")
        if admin.disabled:
            raise LoginRefused("This account is disabled")
        if old:
            self.store.end_session(security.hash_secret(old))
        now = self.clock()
        idle, longest = self._limits()
        self.store.forget_sessions(now - idle, now - longest)
        session_id = secrets.token_urlsafe(32)
        self.store.create_session(security.hash_secret(session_id), admin.id, now, ip)
        return Staffer(admin, session_id, csrf_token(session_id), ip)

    def logout(self, staffer: Staffer) -> None:
        """End a session."""
        self.store.end_session(security.hash_secret(staffer.session_id))


def _clock(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%H:%M:%S UTC")


def check_csrf(staffer: Staffer, token: str) -> bool:
    """Tell whether a form's token belongs to the session."""
    return hmac.compare_digest(staffer.csrf.encode(), token.encode("utf-8", "replace"))
