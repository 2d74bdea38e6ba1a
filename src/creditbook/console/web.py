"""The console's plumbing: templates, security headers, sessions, CSRF and bounded forms.

Every route handler is wrapped by ``Web.guard``: it loads the session (or sends the browser to
the login page), checks the access level, and for a POST checks the origin, reads a bounded
form and checks its CSRF token. Errors become pages here and nowhere else.
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from .. import errors
from ..admins import ACCESS_LEVELS
from ..approvals import Approvals
from ..asgi import form_items, read_body
from ..bulk import Bulk
from ..ledger import Ledger
from ..money import format_cents
from ..rules import NUL
from ..staff import Staff, may
from ..twofactor import Factors
from ..whmcs.access import AccessPolicy
from .session import COOKIE, Sessions, Staffer, check_csrf

log = logging.getLogger("creditbook")
PREFIX = "/admin"
MAX_ID = 2**62
BAD_TEXT = "The request contains characters that are not allowed"
MAX_FORM = 64 * 1024
MAX_UPLOAD = 3 * 1024 * 1024
#: Fields of an upload form: a bulk preview's apply form carries a box per row ticked in.
MAX_FIELDS = 12_000
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
Handler = Callable[[Request, Staffer, dict[str, str]], Response]


class Refused(Exception):
    """A request the console refuses with a status and a message page (its title too)."""

    def __init__(self, status: int, message: str, title: str = "Refused") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title


def money(cents: int) -> str:
    """Cents as the console shows them: 1234.5 -> ``1,234.50``; negative with a minus sign."""
    text = format_cents(abs(cents))
    whole, _, part = text.partition(".")
    return ("-" if cents < 0 else "") + f"{int(whole):,}.{part}"


class Web:
    """Templates, sessions and the request guard shared by every console page."""

    def __init__(self, ledger: Ledger, policy: AccessPolicy, key_file: str = "") -> None:
        self.ledger = ledger
        self.policy = policy
        self.factors = Factors(ledger, key_file)
        self.approvals = Approvals(ledger)
        self.sessions = Sessions(ledger, policy, factors=self.factors)
        self.staff = Staff(ledger)
        self._bulk_store = ledger.store.bulk
        self.env = Environment(
            loader=PackageLoader("creditbook.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["money"] = money
        self.env.globals["may"] = may
        self.env.globals["levels"] = ACCESS_LEVELS

    def bulk(self) -> Bulk:
        """Bulk credit, with the shared setting of how long applied rows are recognised."""
        return Bulk(self.ledger, self._bulk_store, self.policy.number("bulk_repeat_days"))

    # --- responses -------------------------------------------------------------------------

    def render(
        self,
        template: str,
        who: Staffer | None,
        code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """Render a page (never cached: pages hold data)."""
        body = self.env.get_template(template).render(who=who, prefix=PREFIX, **context)
        return HTMLResponse(body, code, headers={"cache-control": "no-store"})

    def refusal(
        self, who: Staffer | None, status: int, message: str, title: str = "Refused"
    ) -> HTMLResponse:
        """A page saying why a request was refused."""
        return self.render("message.html", who, status, title=title, message=message)

    def form_token(self) -> str:
        """A one-time token for a form that changes money: sent twice (a double click, a
        reload), the change is applied once (it is the change's idempotency key)."""
        return secrets.token_urlsafe(18)

    # --- the guard -------------------------------------------------------------------------

    def staffer(self, request: Request) -> Staffer | None:
        """The admin behind a request's session cookie, or None."""
        self.policy.refresh()
        return self.sessions.load(request.cookies.get(COOKIE, ""), self.address(request))

    def address(self, request: Request) -> str:
        """The client's address (X-Forwarded-For believed from trusted proxies only)."""
        return self.policy.address_of(request.scope)

    def set_cookie(self, request: Request, response: Response, staffer: Staffer | None) -> None:
        """Give the browser a session's cookie (or take it back with None)."""
        secure = self.is_https(request)
        if staffer is None:
            response.delete_cookie(
                COOKIE, path=PREFIX, secure=secure, httponly=True, samesite="lax"
            )
            return
        response.set_cookie(
            COOKIE, staffer.session_id, path=PREFIX, secure=secure, httponly=True, samesite="lax"
        )

    def is_https(self, request: Request) -> bool:
        """Whether the browser's connection is HTTPS (directly, or through a trusted proxy)."""
        if request.url.scheme == "https":
            return True
        peer = request.client.host if request.client else ""
        lines = ",".join(request.headers.getlist("x-forwarded-proto"))
        proto = lines.split(",")[-1].strip().lower()
        return proto == "https" and self.policy.trusted_proxy(peer)

    def same_origin(self, request: Request) -> bool:
        """Refuse cross-site requests: ``Sec-Fetch-Site`` and ``Origin``, when sent, must be ours.

        Browsers send at least one of them on a form POST; the CSRF token covers the rest.
        """
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True
        host = request.headers.get("host", "")
        return origin in (f"http://{host}", f"https://{host}")

    def guard(
        self, level: str = "viewer", *, upload: bool = False, stages: tuple[str, ...] = ("",)
    ) -> Callable[[Handler], Any]:
        """Wrap a handler: session, access level, and for POST origin, form and CSRF token.

        A session waiting for its second factor reaches only the pages of its ``stages``
        (the code page; enrolment on the Account page). The handler runs on a worker thread
        (it reads and writes the database).
        """

        def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                who: Staffer | None = None
                try:
                    # Database work runs on worker threads: the API shares this event loop.
                    who = await run_in_threadpool(self.staffer, request)
                    if who is None:
                        if request.method != "GET":
                            raise Refused(403, "Your session has ended: log in again")
                        target = request.url.path
                        if request.url.query:
                            target += "?" + request.url.query
                        query = urllib.parse.urlencode({"next": target})
                        return RedirectResponse(f"{PREFIX}/login?{query}", 303)
                    _check_request(request)
                    if who.stage not in stages:
                        where = "/login/code" if who.stage == "code" else "/account"
                        if who.stage == "" or request.method != "GET":
                            raise Refused(403, "Give your second factor first")
                        return RedirectResponse(f"{PREFIX}{where}", 303)
                    form: dict[str, str] = {}
                    if request.method == "POST":
                        if not self.same_origin(request):
                            raise Refused(403, "Cross-site requests are refused")
                        form = await read_form(request, MAX_UPLOAD if upload else MAX_FORM)
                        if not check_csrf(who, form.get("csrf", "")):
                            raise Refused(403, "The form has expired: reload the page")
                    if not may(who.admin.access, level):
                        raise Refused(403, f"This needs {level} access")
                    return await run_in_threadpool(handler, request, who, form)
                except Refused as exc:
                    return self.refusal(who, exc.status, exc.message, exc.title)
                except errors.StoreError:
                    log.exception("console: database unavailable")
                    return self.refusal(who, 503, errors.StoreError.public_message)

            return endpoint

        return wrap


def _check_request(request: Request) -> None:
    """Refuse what no page can use: ids beyond any database id, text holding NUL."""
    for value in request.path_params.values():
        if isinstance(value, int) and value > MAX_ID:
            raise Refused(404, "Not Found")
    if any(NUL in v for v in request.query_params.values()):
        raise Refused(400, BAD_TEXT)


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """Read a form body of at most ``limit`` bytes (files as text under ``name`` + ``:file``).

    A body that did not arrive whole is refused, never acted on.
    """
    try:
        body = await read_body(request.receive, request.headers, limit)
    except errors.BodyTooLarge:
        raise Refused(413, "The request is too large") from None
    if body is None:
        raise Refused(400, "The request did not arrive whole")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await _multipart(request, body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "The form is not UTF-8") from None
    try:
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, max_num_fields=1000, errors="strict"
        )
    except UnicodeDecodeError:
        raise Refused(400, "The form is not UTF-8") from None
    except ValueError:
        raise Refused(400, "The form has too many fields") from None
    if any(NUL in v for _, v in pairs):
        raise Refused(400, BAD_TEXT)
    return dict(pairs)


async def _multipart(request: Request, body: bytes) -> dict[str, str]:
    from starlette.formparsers import MultiPartException

    out: dict[str, str] = {}
    names: dict[str, str] = {}
    try:
        items = await form_items(
            request.scope,
            body,
            max_files=2,
            max_fields=MAX_FIELDS,
            max_part_size=MAX_UPLOAD,
            filenames=names,
        )
    except MultiPartException as exc:
        raise Refused(400, f"The upload is not valid: {exc.message}") from None
    for name, value in items:
        if isinstance(value, bytes):
            out[name + ":file"] = value.decode("latin-1")
            out[name + ":filename"] = names.get(name, "").replace(NUL, "")[:200]
        elif NUL in value:
            raise Refused(400, BAD_TEXT)
        else:
            out[name] = value
    return out


def not_found(request: Request, exc: Exception) -> Response:
    """A plain 404 for paths the console does not have."""
    return PlainTextResponse("Not Found", 404, headers={"cache-control": "no-store"})


def console_path(target: str) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    parsed = urllib.parse.urlsplit(target)
    if parsed.scheme or parsed.netloc or not parsed.path.startswith(PREFIX + "/"):
        return PREFIX + "/"
    if "\\" in target or target.startswith("//"):
        return PREFIX + "/"
    return target
