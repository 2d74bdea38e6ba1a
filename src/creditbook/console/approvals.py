"""The Approvals page: requests waiting for a second person, with Approve and Reject (a reason
required), and the latest decisions. Managers and owners see it; nobody decides their own."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import errors
from ..approvals import ApprovalRefused
from .session import Staffer
from .web import PREFIX, Refused, Web, money


class ApprovalPages:
    """``/approvals`` and its decisions."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        """The page (managers and owners) and the two decisions."""
        g = self.web.guard("manager")
        return [
            Route("/approvals", g(self.page)),
            Route("/approvals/{request_id:int}/{decision}", g(self.decide), methods=["POST"]),
        ]

    def _owners_only(self) -> bool:
        return self.web.policy.yes("approval_owners_only")

    def _render(self, who: Staffer, status: int = 200, error: str = "") -> Response:
        approvals = self.web.approvals
        pending = approvals.pending()
        why = {r.id: approvals.may_decide(r, who.admin, self._owners_only()) for r in pending}
        return self.web.render(
            "approvals.html", who, status, pending=pending, why=why,
            recent=approvals.store.recent(20), error=error,
        )  # fmt: skip

    def page(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Pending requests and recent decisions."""
        return self._render(who)

    def decide(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """Approve or reject one request (exactly one decision wins)."""
        decision = request.path_params["decision"]
        if decision not in ("approve", "reject"):
            raise Refused(404, "Not Found")
        request_id = int(request.path_params["request_id"])
        try:
            found = self.web.approvals.decide(
                request_id, decision == "approve", who.admin, who.actor,
                form.get("reason", ""), self._owners_only(),
                self.web.policy.number("bulk_repeat_days"),
            )  # fmt: skip
        except ApprovalRefused as exc:
            return self._render(who, 403, exc.message)
        except errors.CreditError as exc:
            status = 400 if isinstance(exc, errors.ValidationError) else 409
            return self._render(who, status, f"Request #{request_id}: {exc.message}")
        amount = f"{money(found.amount_cents)} {found.currency}"
        said = {
            "approved": f"Request #{found.id} approved and applied: {found.result}.",
            "refused": f"Request #{found.id} approved, but the ledger refused it now: "
            f"{found.result}",
            "rejected": f"Request #{found.id} ({amount}) rejected.",
        }[found.status]
        self.web.sessions.flash(who, said)
        return RedirectResponse(f"{PREFIX}/approvals", 303)
