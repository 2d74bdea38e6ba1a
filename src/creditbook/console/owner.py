"""API access (owners only): credentials, roles, the IP allow-list, shared settings, admins."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import errors
from ..whmcs.access import SETTINGS, canonical_network
from ..whmcs.actions import ACTIONS
from .session import Staffer
from .web import PREFIX, Web


class OwnerPages:
    """The API access page and its forms."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        """The owner's routes."""
        g = self.web.guard("owner")
        return [
            Route("/access", g(self.page)),
            Route("/access/{form}", g(self.change), methods=["POST"]),
        ]

    def _render(
        self,
        who: Staffer,
        status: int = 200,
        *,
        error: str = "",
        notice: str = "",
        secret: tuple[str, str] | None = None,
    ) -> Response:
        ledger = self.web.ledger
        stored = ledger.store.get_settings()
        settings = [
            (name, "(set)" if s.secret and stored.get(name) else stored.get(name, s.default), s)
            for name, s in SETTINGS.items()
        ]
        return self.web.render(
            "access.html",
            who,
            status,
            credentials=ledger.list_credentials(),
            roles=ledger.list_roles(),
            ips=ledger.store.list_ips(),
            settings=settings,
            admins=ledger.list_admins(),
            actions=sorted(ACTIONS),
            error=error,
            notice=notice,
            secret=secret,
        )

    def page(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The API access page."""
        done = request.query_params.get("done", "")
        return self._render(who, notice=f"Saved: {done}." if done.isalpha() else "")

    def change(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """One of the API access page's forms (the path names which)."""
        name = request.path_params["form"]
        ledger, actor = self.web.ledger, who.actor
        try:
            if name == "credential":
                roles = [r for r in form.get("roles", "").replace(",", " ").split() if r]
                identifier, secret = ledger.add_credential(
                    form.get("admin", ""),
                    description=form.get("description", "")[:255],
                    roles=roles,
                    actor=actor,
                )
                # The secret is shown on this one response and never again.
                return self._render(who, secret=(identifier, secret))
            if name == "revoke":
                ledger.revoke_credential(form.get("identifier", ""), actor=actor)
            elif name == "role":
                actions = [a.lower() for a in form.get("actions", "").replace(",", " ").split()]
                unknown = [a for a in actions if a not in ACTIONS]
                if unknown or not actions:
                    raise errors.InvalidSetting(f"Unknown actions: {', '.join(unknown) or '-'}")
                ledger.put_role(form.get("name", ""), actions, actor=actor)
            elif name == "allow":
                entry = canonical_network(form.get("entry", ""))
                ledger.store.allow_ip(entry, actor, ledger.now())
            elif name == "deny":
                if not ledger.store.deny_ip(form.get("entry", ""), actor, ledger.now()):
                    raise errors.NotFound("That entry is not on the allow-list")
            elif name == "setting":
                setting = SETTINGS.get(form.get("name", ""))
                if setting is None:
                    raise errors.InvalidSetting("Unknown setting")
                value = form.get("value", "").strip()
                stored = setting.check(value) if value else None
                ledger.store.set_setting(form["name"], stored, actor, ledger.now())
            elif name == "admin":
                ledger.add_admin(
                    form.get("username", ""),
                    _password(form.get("password", "")),
                    email=form.get("email", ""),
                    access=form.get("access", "manager"),
                    actor=actor,
                )
            elif name == "admin-access":
                ledger.set_admin_access(
                    form.get("username", ""), form.get("access", ""), actor=actor
                )
            elif name in ("admin-disable", "admin-enable"):
                username = form.get("username", "")
                if username == who.admin.username:
                    raise errors.InvalidSetting("You cannot disable yourself")
                ledger.set_admin_disabled(username, name == "admin-disable", actor=actor)
            else:
                return self.web.refusal(who, 404, "Not Found")
        except errors.CreditError as exc:
            return self._render(who, 400, error=exc.message)
        return RedirectResponse(f"{PREFIX}/access?done={name.replace('-', '')}", 303)


def _password(text: str) -> str:
    if len(text) < 10:
        raise errors.ValidationError("Passwords are at least 10 characters")
    return text
