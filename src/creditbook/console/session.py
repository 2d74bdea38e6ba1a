"""Console sessions: log in (throttled, slow hash off the loop), look up, log out, CSRF tokens.

Sessions live in the database, known by the SHA-256 of their id (the id itself is only in the
browser's cookie), so every process and host shares them, and logging out or disabling an admin
ends them at once. Failed logins are counted per username at an address, per username and per
address, in the API's failure table (``AccessPolicy.login_keys``).
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

from .. import errors, security
from ..ledger import Ledger
from ..model import Actor, Admin
from ..store.console import console_store
from ..twofactor import Factors
from ..whmcs.access import AccessPolicy, Attempt

COOKIE = "creditbook_session"
#: A session's last-seen time is written at most this often (seconds), so a burst of requests
#: (a page and its assets) writes it once; idle time counts from the last request within it.
TOUCH_EVERY = 1.0


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
    #: A message left for this page by the request before (shown once).
    flash: str = ""
    #: "" for a whole session; "code" while it waits for the second factor, "enrol" while an
    #: admin who must have one has none.
    stage: str = ""

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
        self,
        ledger: Ledger,
        policy: AccessPolicy,
        clock: Callable[[], float] = time.time,
        factors: Factors | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = console_store(ledger.store)
        self.policy = policy
        self.clock = clock
        #: Second factors (None: the console was built without a key file).
        self.factors = factors

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
        admin_id, created, seen, flash, stage = found
        now = self.clock()
        idle, longest = self._limits()
        if now - seen > idle or now - created > longest:
            self.store.end_session(key)
            return None
        admin = self.ledger.store.get_admin(admin_id)
        if admin is None or admin.disabled:
            self.store.end_session(key)
            return None
        if now - seen >= TOUCH_EVERY or flash:
            self.store.touch_session(key, now)
        return Staffer(admin, session_id, csrf_token(session_id), ip, flash, stage)

    def flash(self, staffer: Staffer, message: str) -> None:
        """Leave a message for the staffer's next page (shown once)."""
        self.store.flash_session(security.hash_secret(staffer.session_id), message[:500])

    async def login(self, username: str, password: str, ip: str, old: str = "") -> Staffer:
        """Check a username and password; return a new session (the old one ends).

        Raise ``LoginRefused`` with the form's message. The attempt is counted before the slow
        hash (so simultaneous guesses cannot all be checked) and taken back when the password
        was right. Wrong usernames, wrong passwords and disabled admins get the same message
        and cost the same hash. Database work runs on worker threads and the hash on the
        hashing thread, never on the event loop the API shares.
        """
        limits = self.policy.login_keys("console", username, ip)
        attempt, admin = await run_in_threadpool(self._reserve, username, limits)
        stored = admin.password_hash if admin is not None else security.dummy_hash()
        try:
            future = security.verify_later(security.md5_hex(password), stored)
        except security.Busy:
            await run_in_threadpool(self.policy.release, attempt)
            raise LoginRefused("The server is busy: try again in a moment") from None
        ok = await asyncio.wrap_future(future)
        return await run_in_threadpool(
            self._conclude, ok and bool(password), admin, attempt, ip, old
        )

    def _reserve(
        self, username: str, limits: list[tuple[str, int]]
    ) -> tuple[Attempt, Admin | None]:
        self.policy.refresh()
        try:
            attempt = self.policy.reserve(limits)
        except (errors.IPBanned, errors.LoginBanned) as exc:
            message = f"Too many failed logins: try again after {_clock(exc.until)}"
            raise LoginRefused(message) from None
        return attempt, self.ledger.find_admin(username) if username else None

    def _conclude(
        self, ok: bool, admin: Admin | None, attempt: Attempt, ip: str, old: str
    ) -> Staffer:
        if not ok or admin is None or admin.disabled:
            if admin is not None:
                actor = Actor(f"console:{admin.username}", admin.id, ip)
                detail = "Console login refused: wrong password"
                self.ledger.store.factors.log(actor, self.ledger.now(), "login-failed", detail)
            raise LoginRefused(self._wrong(attempt.left))
        self.policy.release(attempt)
        if old:
            self.store.end_session(security.hash_secret(old))
        now = self.clock()
        idle, longest = self._limits()
        self.store.forget_sessions(now - idle, now - longest)
        stage = ""
        if self.factors is not None and self.factors.enabled(admin):
            stage = "code"
        elif self.policy.yes("console_require_2fa"):
            stage = "enrol"
        actor = Actor(f"console:{admin.username}", admin.id, ip)
        said = "password right, waiting for the second factor" if stage == "code" else "logged in"
        self.ledger.store.factors.log(actor, self.ledger.now(), "login", f"Console login: {said}")
        return self._new_session(admin, ip, stage)

    def _new_session(self, admin: Admin, ip: str, stage: str, old: str = "") -> Staffer:
        """A fresh session id (the old one, if any, ends): at login and when it becomes whole."""
        if old:
            self.store.end_session(security.hash_secret(old))
        session_id = secrets.token_urlsafe(32)
        key = security.hash_secret(session_id)
        self.store.create_session(key, admin.id, self.clock(), ip, stage)
        return Staffer(admin, session_id, csrf_token(session_id), ip, stage=stage)

    def begin(self, admin: Admin, ip: str, stage: str) -> Staffer:
        """A session that waits for a passkey (logging in without the password)."""
        return self._new_session(admin, ip, stage)

    def second_factor(self, staffer: Staffer, code: str) -> Staffer:
        """Check the code of a session waiting for it; return the whole session."""
        assert self.factors is not None
        factors = self.factors
        return self.second_step(staffer, lambda: factors.check(staffer.admin, code), "code")

    def second_step(self, staffer: Staffer, check: Callable[[], bool], what: str) -> Staffer:
        """Run a second factor's ``check`` (a code, a passkey), throttled per username with the
        attempt counted before it; return the whole session, under a new id."""
        admin, user = staffer.admin, staffer.admin.username.lower()
        limits = [(f"console-code:{user}", self.policy.number("ban_user_failures"))]
        self.policy.refresh()
        try:
            attempt = self.policy.reserve(limits)
        except (errors.IPBanned, errors.LoginBanned) as exc:
            message = f"Too many wrong codes: try again after {_clock(exc.until)}"
            raise LoginRefused(message) from None
        if not check():
            said = "Wrong or reused authentication code" if what == "code" else "Passkey refused"
            self.ledger.store.factors.log(staffer.actor, self.ledger.now(), "2fa-failed", said)
            more = " One more blocks codes for a while." if attempt.left == 1 else ""
            if what == "code":
                raise LoginRefused(f"That code is not right, or was used already.{more}")
            raise LoginRefused(f"The passkey was not accepted.{more}")
        self.policy.release(attempt)
        detail = f"Console login: {'second factor right' if what == 'code' else 'passkey'}"
        self.ledger.store.factors.log(staffer.actor, self.ledger.now(), "login", detail)
        return self._new_session(admin, staffer.ip, "", staffer.session_id)

    def whole(self, staffer: Staffer) -> Staffer:
        """A session that had to enrol, now enrolled: whole, under a new id."""
        return self._new_session(staffer.admin, staffer.ip, "", staffer.session_id)

    def _wrong(self, left: int) -> str:
        """The refusal of a wrong login, warning before the attempt that would ban."""
        minutes = self.policy.number("ban_minutes")
        if left <= 0:
            return (
                f"Wrong username or password. Logins are now blocked for {minutes} minutes: "
                "an owner can lift that (creditbook admin unban)."
            )
        if left == 1:
            return (
                "Wrong username or password. One more failed login blocks logins for "
                f"{minutes} minutes."
            )
        return "Wrong username or password"

    def logout(self, staffer: Staffer) -> None:
        """End a session."""
        self.store.end_session(security.hash_secret(staffer.session_id))


def _clock(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%H:%M:%S UTC")


def check_csrf(staffer: Staffer, token: str) -> bool:
    """Tell whether a form's token belongs to the session."""
    return hmac.compare_digest(staffer.csrf.encode(), token.encode("utf-8", "replace"))
