"""An admin's own Account page (two-factor enrolment with an authenticator app, recovery codes)
and the second step of logging in (the authentication code)."""

from __future__ import annotations

import io

import segno
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import errors
from .session import LoginRefused, Staffer
from .web import PREFIX, Web, console_path


def qr_svg(text: str) -> Markup:
    """A QR code of ``text`` as inline SVG, drawn on the server (no script, no network)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(
        out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, title="QR code"
    )
    return Markup(out.getvalue().decode())  # noqa: S704 segno writes only the code's geometry


class AccountPages:
    """``/account`` and its forms, and ``/login/code``."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        """The pages and forms; the enrolment pages are open to a session that must enrol."""
        enrol = self.web.guard(stages=("", "enrol"))
        code = self.web.guard(stages=("code",))
        return [
            Route("/account", enrol(self.page)),
            Route("/account/totp/{form}", enrol(self.change), methods=["POST"]),
            Route("/login/code", code(self.code_page)),
            Route("/login/code", code(self.code), methods=["POST"]),
        ]

    def _render(self, who: Staffer, status: int = 200, **context: object) -> Response:
        factors = self.web.factors
        pending = factors.pending_secret(who.admin) if not context.get("codes") else None
        return self.web.render(
            "account.html",
            who,
            status,
            enabled=factors.totp_enabled(who.admin),
            left=self.web.ledger.store.factors.codes_left(who.admin.id),
            secret=pending,
            qr=qr_svg(factors.uri(pending, who.admin)) if pending else "",
            required=self.web.policy.yes("console_require_2fa"),
            passkeys=self.web.ledger.store.factors.passkeys(who.admin.id),
            passkey_login=self.web.policy.yes("console_passkey_login"),
            **context,
        )

    def page(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The Account page."""
        return self._render(who)

    def change(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Start, confirm or remove the authenticator."""
        name, factors = request.path_params["form"], self.web.factors
        try:
            if name == "passkey":  # the passkey form sent without script: nothing to do
                return RedirectResponse(f"{PREFIX}/account", 303)
            if name == "start":
                factors.start(who.admin, who.actor)
                return RedirectResponse(f"{PREFIX}/account", 303)
            if name == "confirm":
                codes = factors.confirm(who.admin, form.get("code", ""), who.actor)
                response = self._render(who, codes=codes)
                if who.stage == "enrol":
                    self.web.set_cookie(request, response, self.web.sessions.whole(who))
                return response
            if name == "remove":
                if who.stage or self.web.policy.yes("console_require_2fa"):
                    raise errors.Conflict("A second factor is required here: it stays")
                factors.disable(who.admin, who.actor)
                self.web.sessions.flash(who, "Your authenticator app was removed.")
                return RedirectResponse(f"{PREFIX}/account", 303)
        except errors.CreditError as exc:
            return self._render(who, 400, error=exc.message)
        return self.web.refusal(who, 404, "Not Found")

    def code_page(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The second step of logging in."""
        keys = bool(self.web.ledger.store.factors.passkeys(who.admin.id))
        return self.web.render(
            "login_code.html",
            who,
            next=console_path(request.query_params.get("next", "")),
            passkeys=keys,
        )

    def code(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Check the authentication code (or a recovery code)."""
        try:
            whole = self.web.sessions.second_factor(who, form.get("code", "")[:64])
        except LoginRefused as exc:
            keys = bool(self.web.ledger.store.factors.passkeys(who.admin.id))
            return self.web.render(
                "login_code.html", who, 403, error=exc.message, next="", passkeys=keys
            )
        response = RedirectResponse(console_path(form.get("next", "")), 303)
        self.web.set_cookie(request, response, whole)
        return response
