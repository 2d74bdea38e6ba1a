"""The console's passkey ceremonies (JSON for ``static/passkeys.js``): registering a passkey on
the Account page, using one after the password, and (the owner's setting
``console_passkey_login``) logging in with one instead of the password."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import errors, security
from ..model import Admin
from ..passkeys import Passkeys
from .session import LoginRefused, Staffer
from .web import MAX_FORM, PREFIX, Refused, Web, console_path, read_form


def refusal(message: str, status: int = 400) -> JSONResponse:
    """A refused ceremony, said in words for the page."""
    return JSONResponse({"error": message}, status)


class PasskeyPages:
    """``/account/passkey/...`` and ``/login/passkey/...``."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.passkeys = Passkeys(web.ledger)

    def routes(self) -> list[Route]:
        """The ceremonies' endpoints."""
        enrol = self.web.guard(stages=("", "enrol"))
        code = self.web.guard(stages=("code",))
        alone = self.web.guard(stages=("passkey",))
        return [
            Route("/account/passkey/options", enrol(self.create_options), methods=["POST"]),
            Route("/account/passkey/register", enrol(self.register), methods=["POST"]),
            Route("/account/passkey/{key_id:int}/remove", enrol(self.remove), methods=["POST"]),
            Route("/login/passkey/options", code(self.get_options), methods=["POST"]),
            Route("/login/passkey/verify", code(self.verify), methods=["POST"]),
            Route("/login/passkey/start", self.start, methods=["POST"]),
            Route("/login/passkey/finish", alone(self.verify), methods=["POST"]),
        ]

    def _party(self, request: Request) -> tuple[str, str]:
        """The relying party id (the host's name) and the origin the browser reports."""
        host = request.headers.get("host", "")
        scheme = "https" if self.web.is_https(request) else "http"
        return (request.url.hostname or host.rsplit(":", 1)[0]), f"{scheme}://{host}"

    def _key(self, who: Staffer) -> str:
        return security.hash_secret(who.session_id)

    def create_options(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Options to create a passkey (the challenge kept with the session)."""
        rp_id, _ = self._party(request)
        options, challenge = self.passkeys.registration_options(who.admin, rp_id)
        self.web.sessions.store.set_challenge(self._key(who), challenge)
        return JSONResponse({"options": options})

    def register(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Verify and keep a new passkey."""
        rp_id, origin = self._party(request)
        challenge = self.web.sessions.store.take_challenge(self._key(who))
        try:
            self.passkeys.register(
                who.admin, form.get("credential", ""), challenge, rp_id, origin,
                form.get("name", ""), who.actor,
            )  # fmt: skip
        except errors.CreditError as exc:
            return refusal(exc.message)
        response = JSONResponse({"redirect": f"{PREFIX}/account"})
        if who.stage == "enrol":
            self.web.set_cookie(request, response, self.web.sessions.whole(who))
        else:
            self.web.sessions.flash(who, "Your passkey was registered.")
        return response

    def remove(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Remove one of the admin's own passkeys (a form, without script)."""
        key_id = int(request.path_params["key_id"])
        store = self.web.ledger.store.factors
        if self.web.policy.yes("console_require_2fa") and not self._another(who.admin, key_id):
            raise Refused(409, "A second factor is required here: keep one")
        if store.remove_passkey(who.admin.id, key_id, who.actor, self.web.ledger.now()):
            self.web.sessions.flash(who, "The passkey was removed.")
        return RedirectResponse(f"{PREFIX}/account", 303)

    def _another(self, admin: Admin, key_id: int) -> bool:
        keys = [k for k in self.web.ledger.store.factors.passkeys(admin.id) if k.id != key_id]
        return bool(keys) or self.web.factors.totp_enabled(admin)

    def get_options(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Options to use one of the admin's passkeys (after the password, or instead)."""
        rp_id, _ = self._party(request)
        options, challenge = self.passkeys.authentication_options(who.admin, rp_id)
        self.web.sessions.store.set_challenge(self._key(who), challenge)
        return JSONResponse({"options": options})

    def verify(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Check the passkey's assertion (throttled as codes are); the session becomes whole."""
        rp_id, origin = self._party(request)
        challenge = self.web.sessions.store.take_challenge(self._key(who))
        sessions = self.web.sessions
        try:
            whole = sessions.second_step(
                who,
                lambda: self.passkeys.authenticate(
                    who.admin,
                    form.get("credential", ""),
                    challenge,
                    rp_id,
                    origin,
                    verified_user=who.stage == "passkey",  # instead of the password too
                ),
                "passkey",
            )
        except (errors.CreditError, LoginRefused) as exc:
            return refusal(exc.message, 403)
        response = JSONResponse({"redirect": console_path(form.get("next", ""))})
        self.web.set_cookie(request, response, whole)
        return response

    async def start(self, request: Request) -> Response:
        """Log in with a passkey instead of the password (when an owner allows it): a session
        that can do nothing but finish the ceremony."""
        web = self.web
        if not web.same_origin(request):
            return refusal("Cross-site requests are refused", 403)
        try:
            form = await read_form(request, MAX_FORM)
        except Refused as exc:
            return refusal(exc.message, exc.status)
        await run_in_threadpool(web.policy.refresh)
        if not web.policy.yes("console_passkey_login"):
            return refusal("Log in with your password", 403)
        username = form.get("username", "")[:64]
        rp_id, _ = self._party(request)

        def begin() -> tuple[Staffer | None, str]:
            admin = web.ledger.find_admin(username) if username else None
            if admin is None or admin.disabled or not web.ledger.store.factors.passkeys(admin.id):
                return None, ""
            options, challenge = self.passkeys.authentication_options(admin, rp_id)
            staffer = web.sessions.begin(admin, web.address(request), "passkey")
            web.sessions.store.set_challenge(self._key(staffer), challenge)
            return staffer, options

        staffer, options = await run_in_threadpool(begin)
        if staffer is None:
            return refusal("No passkey is registered for that username: log in with the password")
        # The new session's form token: the login form had none to send.
        response = JSONResponse({"options": options, "csrf": staffer.csrf})
        self.web.set_cookie(request, response, staffer)
        return response
