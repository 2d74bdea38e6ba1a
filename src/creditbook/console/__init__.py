"""The web console at ``/admin/``: billing staff see and manage credit in a browser.

Its routes (``pages``, ``changes``, ``owner``), templates and static files live together here,
as Datasette keeps its own. The API's hot path never reaches this package: ``http.App``
imports it on the first console request.
"""

from __future__ import annotations

from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..asgi import Message, Receive, Scope, Send
from ..whmcs import Api
from .account import AccountPages
from .approvals import ApprovalPages
from .changes import ChangePages
from .client_forms import ClientForms
from .credit_settings import CreditSettings
from .lists import ListExports
from .owner import OwnerPages
from .pages import ReadPages
from .passkey_pages import PasskeyPages
from .reports import ReportPages
from .session import COOKIE, LoginRefused, Staffer
from .web import (
    MAX_FORM,
    PREFIX,
    SECURITY_HEADERS,
    Refused,
    Web,
    console_path,
    not_found,
    read_form,
)


class Console:
    """The console's ASGI app: routes under ``/admin``, security headers on every response."""

    def __init__(self, api: Api, key_file: str = "") -> None:
        self.web = Web(api.ledger, api.policy, key_file)
        pages = ReadPages(self.web)
        static = StaticFiles(directory=str(resources.files("creditbook.console") / "static"))
        routes = [
            Route(PREFIX, self.to_slash),
            Mount(
                PREFIX,
                routes=[
                    Route("/login", self.login, methods=["GET", "POST"]),
                    Route("/logout", self.logout, methods=["POST"]),
                    Mount("/static", static, name="static"),
                    *pages.routes(),
                    *ListExports(self.web, pages).routes(),
                    *ChangePages(self.web, pages).routes(),
                    *ClientForms(self.web, pages).routes(),
                    *OwnerPages(self.web).routes(),
                    *CreditSettings(self.web).routes(),
                    *ReportPages(self.web).routes(),
                    *AccountPages(self.web).routes(),
                    *ApprovalPages(self.web).routes(),
                    *PasskeyPages(self.web).routes(),
                ],
            ),
        ]
        self.app = Starlette(routes=routes, exception_handlers={404: not_found})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, secured)

    async def to_slash(self, request: Request) -> Response:
        """``/admin`` -> ``/admin/``."""
        return RedirectResponse(PREFIX + "/", 308)

    async def login(self, request: Request) -> Response:
        """The login form, and logging in (the session id is new at every login)."""
        web = self.web
        target = console_path(request.query_params.get("next", ""))
        if request.method == "GET":
            out = request.query_params.get("out") == "1"
            notice = "You have been logged out." if out else ""
            await run_in_threadpool(web.policy.refresh)
            return web.render(
                "login.html", None, next=target, notice=notice,
                passkey_login=web.policy.yes("console_passkey_login"),
            )  # fmt: skip
        form: dict[str, str] = {}
        try:
            if not web.same_origin(request):
                raise Refused(403, "Cross-site requests are refused")
            form = await read_form(request, MAX_FORM)
            target = console_path(form.get("next", ""))
            await run_in_threadpool(web.policy.refresh)  # trusted proxies, before the address
            staffer = await web.sessions.login(
                form.get("username", "")[:64],
                form.get("password", "")[:1024],
                web.address(request),
                request.cookies.get(COOKIE, ""),
            )
        except LoginRefused as exc:
            return web.render(
                "login.html",
                None,
                403,
                error=exc.message,
                next=target,
                username=form.get("username", "")[:64],
                passkey_login=web.policy.yes("console_passkey_login"),
            )
        except Refused as exc:
            return web.refusal(None, exc.status, exc.message)
        response = RedirectResponse(target, 303)
        self.web.set_cookie(request, response, staffer)
        return response

    async def logout(self, request: Request) -> Response:
        """End the session (a POST with the session's CSRF token)."""

        def end(request: Request, who: Staffer, form: dict[str, str]) -> Response:
            self.web.sessions.logout(who)
            response = RedirectResponse(f"{PREFIX}/login?out=1", 303)
            self.web.set_cookie(request, response, None)
            return response

        response: Response = await self.web.guard(stages=("", "code", "enrol"))(end)(request)
        return response
