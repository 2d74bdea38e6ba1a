"""The owner's credit settings: categories with their default expiry periods, and each
currency's low-balance alert threshold (clients can override it on their own page)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import errors
from .session import Staffer
from .web import PREFIX, Web, money


class CreditSettings:
    """``/credit-settings`` and its forms (owners)."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        """The page and its forms."""
        g = self.web.guard("owner")
        return [
            Route("/credit-settings", g(self.page)),
            Route("/credit-settings/{form}", g(self.change), methods=["POST"]),
        ]

    def _render(
        self, who: Staffer, status: int = 200, error: str = "", values: dict[str, str] | None = None
    ) -> Response:
        ledger = self.web.ledger
        return self.web.render(
            "credit_settings.html",
            who,
            status,
            categories=ledger.categories(),
            thresholds=ledger.thresholds(),
            rules=self.web.approvals.rules(),
            error=error,
            values=values or {},
        )

    def page(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The credit settings page."""
        return self._render(who)

    def change(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """One of the page's forms; what was done is said on the page it returns to, once."""
        name = request.path_params["form"]
        ledger, actor = self.web.ledger, who.actor
        try:
            if name == "category":
                found = ledger.set_category(
                    form.get("name", ""),
                    form.get("days", "").strip() or "0",
                    actor=actor,
                    confirm_paid=form.get("confirm") == "yes",
                )
                days = found.expires_days
                said = f"Category {found.name}: " + (
                    f"its credit expires {days} days after its date unless given a date."
                    if days
                    else "its credit never expires unless given a date."
                )
            elif name == "category-remove":
                ledger.remove_category(form.get("name", ""), actor=actor)
                said = f"Category {form.get('name', '').strip().lower()} removed."
            elif name == "alert":
                t = ledger.set_threshold(
                    currency=form.get("currency", ""), below=form.get("below"), actor=actor
                )
                said = (
                    f"{t.currency} clients are alerted below {money(t.below_cents)} {t.currency}."
                )
            elif name == "approval":
                rule = self.web.approvals.set_rule(
                    form.get("currency", ""), form.get("above", ""),
                    form.get("removals") == "yes", actor,
                )  # fmt: skip
                extra = " and every removal" if rule.removals else ""
                said = (
                    f"{rule.currency} changes above {money(rule.above_cents)}{extra} now wait "
                    "for a second person."
                )
            elif name == "approval-remove":
                code = form.get("currency", "").strip().upper()
                self.web.approvals.remove_rule(code, actor)
                said = f"The {code} approval rule is removed."
            elif name == "alert-remove":
                code = form.get("currency", "")
                ledger.remove_threshold(currency=code, actor=actor)
                said = f"The {code.upper()} low-balance alert is removed."
            else:
                return self.web.refusal(who, 404, "Not Found")
        except errors.CreditError as exc:
            return self._render(who, 400, exc.message, {"form": name, **form})
        self.web.sessions.flash(who, said)
        return RedirectResponse(f"{PREFIX}/credit-settings", 303)
