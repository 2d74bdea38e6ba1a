"""API access (owners only): credentials, roles, the IP allow-list, shared settings, admins."""

from __future__ import annotations

import datetime as dt

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
        secret: tuple[str, str] | None = None,
        values: dict[str, str] | None = None,
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
            bans=[(target, what, _clock(until)) for target, what, until in self.web.policy.bans()],
            actions=sorted(ACTIONS),
            error=error,
            secret=secret,
            values=values or {},
        )

    def page(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The API access page."""
        return self._render(who)

    def change(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """One of the API access page's forms (the path names which); the outcome is said in
        words on the page it returns to, once."""
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
            said = self._apply(name, form, who)
        except errors.CreditError as exc:
            error = exc.message
            if name == "setting":
                error = f"{form.get('name', 'The setting')}: {exc.message}"
            return self._render(who, 400, error=error, values={"form": name, **form})
        if said is None:
            return self.web.refusal(who, 404, "Not Found")
        self.web.sessions.flash(who, said)
        return RedirectResponse(f"{PREFIX}/access", 303)

    def _apply(self, name: str, form: dict[str, str], who: Staffer) -> str | None:
        """Apply one form; return what was done, in words (None: no such form)."""
        ledger, actor = self.web.ledger, who.actor
        if name == "revoke":
            identifier = form.get("identifier", "")
            ledger.revoke_credential(identifier, actor=actor)
            return f"Credential {identifier} revoked."
        if name == "role":
            actions = [a.lower() for a in form.get("actions", "").replace(",", " ").split()]
            unknown = [a for a in actions if a not in ACTIONS]
            if unknown or not actions:
                raise errors.InvalidSetting(f"Unknown actions: {', '.join(unknown) or '-'}")
            ledger.put_role(form.get("name", ""), actions, actor=actor)
            return f"Role {form.get('name', '')} saved: {', '.join(actions)}."
        if name == "allow":
            entry = canonical_network(form.get("entry", ""))
            ledger.store.allow_ip(entry, actor, ledger.now())
            return f"Address {entry} allowed."
        if name == "deny":
            entry = form.get("entry", "")
            if not ledger.store.deny_ip(entry, actor, ledger.now()):
                raise errors.NotFound("That entry is not on the allow-list")
            return f"Address {entry} removed from the allow-list."
        if name == "setting":
            setting = SETTINGS.get(form.get("name", ""))
            if setting is None:
                raise errors.InvalidSetting("Unknown setting")
            value = form.get("value", "").strip()
            stored = setting.check(value) if value else None
            ledger.store.set_setting(form["name"], stored, actor, ledger.now())
            if stored is None:
                return f"Setting {form['name']} back to its default ({setting.default or 'unset'})."
            return f"Setting {form['name']} set to {'(secret)' if setting.secret else stored}."
        if name == "admin":
            username = form.get("username", "")
            access = form.get("access", "manager")
            ledger.add_admin(
                username, form.get("password", ""), email=form.get("email", ""), access=access,
                actor=actor,
            )  # fmt: skip
            return f"Admin {username} added with {access} access."
        if name == "admin-access":
            username, access = form.get("username", ""), form.get("access", "")
            ledger.set_admin_access(username, access, actor=actor)
            return f"Admin {username} now has {access.strip().lower()} access."
        if name == "unban":
            target = form.get("target", "").strip()
            ledger.unban(target, actor=actor)
            return f"Login bans of {target} lifted."
        if name in ("admin-disable", "admin-enable"):
            username = form.get("username", "")
            if username == who.admin.username:
                raise errors.InvalidSetting("You cannot disable yourself")
            ledger.set_admin_disabled(username, name == "admin-disable", actor=actor)
            return f"Admin {username} {'disabled' if name == 'admin-disable' else 'enabled'}."
        return None


def _clock(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
