"""The protocol engine: one request in, one reply out, for HTTP and ``local_api`` alike.

Errors are translated into the WHMCS envelope here and nowhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import errors, metrics, security
from ..ledger import CREDIT_FIELDS, Deferred, Ledger, check_text
from ..model import Actor
from ..money import format_cents
from ..store import IdempotencyKey, Waitable
from .access import AccessPolicy
from .actions import ACTIONS, IDEMPOTENT, Context, Result
from .auth import PasswordCheck, Principal, authenticate
from .levels import actions_for
from .params import Params, clean_text, normalise_action, scalar
from .render import CONTENT_TYPES, render, response_type, to_plain

log = logging.getLogger("creditbook")
T = TypeVar("T")

#: Parameters that authenticate or shape a request rather than describe the operation.
_NOT_FINGERPRINTED = frozenset(
    {
        "identifier",
        "secret",
        "username",
        "password",
        "accesskey",
        "responsetype",
        "idempotencykey",
    }
)
MAX_KEY_LENGTH = 255


@dataclass(slots=True)
class Pending:
    """A reply that waits: await ``future``, then call ``complete()`` (which may wait again)."""

    future: Waitable[Any]
    complete: Callable[[], Reply | Pending]


@dataclass(slots=True)
class Reply:
    """An HTTP-ready reply: status, content type, extra headers and a body iterator."""

    status: int
    content_type: str
    body: Iterator[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str = ""
    #: For metrics and logs: success, refused (a WHMCS error), denied, banned, invalid
    #: (a malformed request) or unavailable (the database failed).
    result: str = "success"


@dataclass(slots=True)
class _Request:
    """What the steps of one HTTP request share."""

    params: Params
    headers: Mapping[str, str]
    fmt: str = "json"
    action: str = ""
    ip: str = ""


def _result(exc: errors.CreditError) -> str:
    if isinstance(exc, errors.IPBanned):
        metrics.BANNED.inc()
        return "banned"
    if isinstance(exc, errors.AccessDenied):
        return "denied"
    if isinstance(exc, errors.RequestError):
        return "invalid"
    return "refused"


def error_result(message: str) -> Result:
    """Return the WHMCS error envelope."""
    return {"result": "error", "message": message}


class Api:
    """The WHMCS API over a ledger."""

    def __init__(self, ledger: Ledger, policy: AccessPolicy | None = None) -> None:
        self.ledger = ledger
        self.policy = policy or AccessPolicy(ledger)

    def handle(self, params: Params, peer: str, headers: Mapping[str, str]) -> Reply | Pending:
        """Answer one HTTP request's parameters (peer is the socket's remote address).

        Slow steps answer ``Pending`` (an admin login's password hash, a write): the HTTP layer
        awaits its future without blocking the event loop, then calls ``complete``.
        """
        req = _Request(params, headers)
        try:
            req.fmt = response_type(scalar(params, "responsetype"))
            req.action = normalise_action(scalar(params, "action") or "")
            if not req.action:
                raise errors.EmptyAction()
            self.policy.refresh()
            req.ip = self.policy.client_ip(peer, headers)
            self.policy.check(req.ip, scalar(params, "accesskey"))
            login = self._login(req)
        except (errors.CreditError, errors.StoreError) as exc:
            return self.error(exc, req.fmt, req.action)
        if isinstance(login, PasswordCheck):
            return self._check_password(req, login)
        return self._run(req, lambda: login)

    def _check_password(self, req: _Request, login: PasswordCheck) -> Reply | Pending:
        """Count the attempt under the address and the username, then hash the password off
        the loop: simultaneous guesses are refused once the limit is reached, before any is
        checked. A right password takes its attempt back."""
        policy = self.policy
        try:
            attempt = policy.reserve(policy.login_keys("api", login.username, req.ip))
        except (errors.CreditError, errors.StoreError) as exc:
            return self.error(exc, req.fmt, req.action)
        try:
            future = security.verify_later(login.md5_form, login.stored)
        except security.Busy:
            with contextlib.suppress(errors.StoreError):
                policy.release(attempt)  # never checked: not a failure
            return self.error(errors.LoginBusy(), req.fmt, req.action)

        def conclude() -> Principal:
            principal = login.conclude(future.result())
            with contextlib.suppress(errors.StoreError):
                policy.release(attempt)
            return principal

        return Pending(future, lambda: self._run(req, conclude, counted=True))

    def _login(self, req: _Request) -> Principal | PasswordCheck:
        """Authenticate; an admin login not verified before is left pending (a slow hash)."""
        attempt = self._authenticated(req, lambda: authenticate(self.policy, req.params))
        if isinstance(attempt, PasswordCheck) and security.is_verified(
            attempt.md5_form, attempt.stored
        ):
            return self._authenticated(req, lambda: attempt.conclude(True))
        return attempt

    def _authenticated(self, req: _Request, step: Callable[[], T]) -> T:
        """Run an authentication step, counting its failure against the client's address."""
        try:
            return step()
        except (errors.InvalidCredentials, errors.AuthenticationFailed):
            self.policy.record_failure(req.ip)
            raise

    def _run(
        self, req: _Request, principal: Callable[[], Principal], counted: bool = False
    ) -> Reply | Pending:
        """Authorise and run the action; a write answers ``Pending`` on its commit.

        ``counted``: a failed authentication was already counted (a reserved attempt).
        """
        try:
            who = principal() if counted else self._authenticated(req, principal)
            handler = ACTIONS.get(req.action)
            if handler is None:
                raise errors.CommandNotFound()
            if not who.allows(req.action):
                raise errors.InvalidPermissions(req.action)
            admin_id = who.admin.id if who.admin else 0
            ctx = Context(self.ledger, who, Actor(who.name, admin_id, req.ip))
            ctx.idem = self._idempotency(req.action, req.params, req.headers, who)
            out = handler(ctx, req.params)
        except (errors.CreditError, errors.StoreError) as exc:
            return self.error(exc, req.fmt, req.action)
        if isinstance(out, Deferred):
            result = out.result
            return Pending(out.future, lambda: self._reply(req.fmt, req.action, ctx, result))
        return self._reply(req.fmt, req.action, ctx, lambda: out)

    def _reply(self, fmt: str, action: str, ctx: Context, produce: Callable[[], Result]) -> Reply:
        try:
            body = render(produce(), fmt)
        except (errors.CreditError, errors.StoreError) as exc:
            return self.error(exc, fmt, action)
        extra = [("idempotent-replayed", "true")] if ctx.replayed else []
        return Reply(200, CONTENT_TYPES[fmt], body, extra, action)

    def error(
        self, exc: errors.CreditError | errors.StoreError, fmt: str = "json", action: str = ""
    ) -> Reply:
        """Translate an error into the WHMCS envelope: the one place errors become replies."""
        if isinstance(exc, errors.StoreError):
            log.error("database error: %s", exc)
            metrics.DATABASE_ERRORS.inc()
            return Reply(
                503,
                CONTENT_TYPES[fmt],
                render(error_result(errors.StoreError.public_message), fmt),
                [],
                action,
                "unavailable",
            )
        extra = [("idempotent-replayed", "true")] if exc.replayed else []
        body = render(error_result(exc.message), fmt)
        return Reply(exc.status, CONTENT_TYPES[fmt], body, extra, action, _result(exc))

    def _idempotency(
        self, action: str, params: Params, headers: Mapping[str, str], principal: Principal
    ) -> IdempotencyKey | None:
        key = scalar(params, "idempotencykey") or headers.get("idempotency-key") or None
        if key is None or action not in IDEMPOTENT:
            return None
        if len(key) > MAX_KEY_LENGTH:
            raise errors.ValidationError("Idempotency key is too long (255 characters at most)")
        check_text(key, "idempotency key")
        described = {k: v for k, v in params.items() if k not in _NOT_FINGERPRINTED}
        described["action"] = action
        digest = hashlib.sha256(
            json.dumps(described, sort_keys=True, ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
        ).hexdigest()
        keep = self.policy.number("idempotency_hours") * 3600.0
        return IdempotencyKey(principal.name, key, digest, self.policy.clock(), keep)

    def local(
        self, command: str, params: Mapping[str, Any], admin_username: str | None = None
    ) -> dict[str, Any]:
        """Run an action in-process with no authentication or IP check (WHMCS ``localAPI``)."""
        try:
            p: Params = _as_param(params)
            action = normalise_action(command)
            if not action:
                raise errors.EmptyAction()
            handler = ACTIONS.get(action)
            if handler is None:
                raise errors.CommandNotFound()
            principal, actor = self._local_caller(admin_username)
            if not principal.allows(action):
                raise errors.InvalidPermissions(action)
            ctx = Context(self.ledger, principal, actor, blocking=True)
            ctx.idem = self._local_idempotency(action, p, principal)
            out = handler(ctx, p)
            result: dict[str, Any] = to_plain(out.result() if isinstance(out, Deferred) else out)
            if ctx.replayed:
                result["replayed"] = True
            return result
        except errors.CreditError as exc:
            return error_result(exc.message)
        except errors.StoreError:
            return error_result(errors.StoreError.public_message)

    def credit_many(
        self, credits: Iterable[Mapping[str, Any]], admin_username: str | None = None
    ) -> list[dict[str, Any]]:
        """AddCredit for many items in one durable commit: a result dict per item, in order.

        A failure of the whole call (an unknown admin, the database) is every item's result.
        """
        items = list(credits)
        try:
            principal, actor = self._local_caller(admin_username)
            if not principal.allows("addcredit"):
                raise errors.InvalidPermissions("addcredit")
            requests = [_credit_fields(item) for item in items]
            outcomes = self.ledger.credit_many(requests, actor=actor)
        except errors.CreditError as exc:
            return [error_result(exc.message) for _ in items]
        except errors.StoreError:
            return [error_result(errors.StoreError.public_message) for _ in items]
        return [
            error_result(o.message)
            if isinstance(o, errors.CreditError)
            else {"result": "success", "newbalance": format_cents(o.balance_cents)}
            for o in outcomes
        ]

    def _local_caller(self, admin_username: str | None) -> tuple[Principal, Actor]:
        """Who an in-process call acts as: the named admin, or nobody (stored as 0)."""
        admin = None
        if admin_username:
            admin = self.ledger.find_admin(admin_username)
            if admin is None:
                raise errors.AdminNotFound()
        actor = Actor(f"local:{admin_username or ''}", admin.id if admin else 0, "")
        return Principal(admin, None, actions_for(admin.access) if admin else None), actor

    def _local_idempotency(
        self, action: str, params: Params, principal: Principal
    ) -> IdempotencyKey | None:
        if "idempotencykey" not in params:
            return None
        self.policy.refresh()
        return self._idempotency(action, params, {}, principal)


def _credit_fields(item: Mapping[str, Any]) -> dict[str, str | None]:
    """AddCredit's fields of one ``credit_many`` item, read as ``local`` reads parameters."""
    fields: dict[str, str | None] = {}
    if not isinstance(item, Mapping):
        item = {}  # no parameters: refused as an AddCredit without any would be
    for name in CREDIT_FIELDS:
        value = item.get(name)
        if value is None:
            fields[name] = None
        elif type(value) is str:  # the common case, without the general conversion
            fields[name] = clean_text(value) or None
        else:
            fields[name] = scalar({name: _as_param(value)}, name)
    return fields


def _as_param(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {clean_text(str(k)): _as_param(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return {str(i): _as_param(v) for i, v in enumerate(value)}
    if isinstance(value, bool):
        return "1" if value else ""
    # A float's str() is its shortest round-tripping decimal, e.g. 12.34 -> "12.34".
    return clean_text(str(value))
