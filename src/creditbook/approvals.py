"""Four-eyes approval: owners set rules per currency; a console change above a rule waits as a
request until another manager or owner approves it (applied then, through the same rules as any
change, checked again) or rejects it with a reason. One decision wins, whatever the number of
people, processes or hosts. The CLI runs as the operator and is not subject to the rules."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from . import errors, money
from .bulk import Bulk, BulkFile
from .model import Actor, Admin
from .rules import utc_text
from .staff import Staff
from .store.approvals import Request, Rule

if TYPE_CHECKING:
    from .ledger import Ledger

#: Days a request waits for a decision unless the shared setting ``approval_days`` says.
DAYS = 7


class ApprovalRefused(errors.AccessDenied):
    """A decision this admin may not take."""


class AlreadyDecided(errors.Conflict):
    message = "This request was already decided, or it expired"


class Approvals:
    """Rules, requests and decisions over a ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.store = ledger.store.approvals

    # --- rules ---------------------------------------------------------------------------------

    def rules(self) -> list[Rule]:
        """Every rule, by currency."""
        return self.store.rules()

    def set_rule(self, currency: str, above: str, removals: bool, actor: Actor) -> Rule:
        """Set a currency's rule: changes above ``above`` (and every removal with
        ``removals``) need approval."""
        code = (currency or "").strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise errors.ValidationError("Give the currency as three letters, e.g. USD")
        try:
            cents = money.parse_cents((above or "").strip())
        except ValueError:
            raise errors.ValidationError(
                "Give the amount as a number with at most two decimals, e.g. 500.00"
            ) from None
        if cents < 0:
            raise errors.ValidationError("The amount is zero or more")
        rule = Rule(code, cents, removals)
        self.store.set_rule(rule, actor, self.ledger.now())
        return rule

    def remove_rule(self, currency: str, actor: Actor) -> None:
        """Remove a currency's rule."""
        code = (currency or "").strip().upper()
        if not self.store.remove_rule(code, actor, self.ledger.now()):
            raise errors.NotFound(f"No approval rule for {code[:10]}")

    def needed(self, currency: str, cents: int) -> Rule | None:
        """The rule a change of ``cents`` (negative removes) in ``currency`` must be approved
        under, or None."""
        rule = self.store.rule_of(currency)
        if rule is None:
            return None
        if abs(cents) > rule.above_cents or (cents < 0 and rule.removals):
            return rule
        return None

    # --- requests ------------------------------------------------------------------------------

    def _expires_at(self, now: str, days: int) -> str:
        moment = dt.datetime.fromisoformat(now.replace("Z", "+00:00")) + dt.timedelta(days=days)
        return utc_text(moment)

    def request_credit(self, fields: dict[str, str], actor: Actor, days: int = DAYS) -> Request:
        """Check a console credit as the ledger would (bad input is refused now) and record
        it as a request."""
        adding = fields.get("type", "add").lower() != "remove"
        op = self.ledger.credit_op(
            clientid=fields["client"], amount=fields["amount"], description=fields["description"],
            type=fields.get("type") or "add", date=fields.get("date") or None,
            category=(fields.get("category") or None) if adding else None,
            expires=(fields.get("expires") or None) if adding else None, actor=actor,
        )  # fmt: skip
        client = self.ledger.store.get_client(op.client_id)
        assert client is not None  # credit_op found it
        now = self.ledger.now()
        return self.store.request(
            {
                "client_id": op.client_id, "kind": "add" if adding else "remove",
                "amount_cents": abs(op.amount_cents), "currency": client.currency_code,
                "description": op.description, "date": fields.get("date") or "",
                "category": op.category if adding else "", "expires": op.expires,
                "entry_id": 0, "requested_by": actor.admin_id, "requester": actor.name,
                "requested_at": now, "expires_at": self._expires_at(now, days), "payload": "",
            },
            actor,
            now,
        )  # fmt: skip

    def request_reversal(
        self, entry_id: int, reason: str, actor: Actor, days: int = DAYS
    ) -> Request:
        """Record a reversal (with its required reason) as a request."""
        staff = Staff(self.ledger)
        found = staff.entry(entry_id)
        if not reason.strip():
            raise errors.ValidationError("Give the reason for the reversal")
        change = staff.reversal_cents(found)
        if change is None or found.reversed:
            raise errors.NotReversible()
        client = self.ledger.store.get_client(found.entry.client_id)
        assert client is not None
        now = self.ledger.now()
        return self.store.request(
            {
                "client_id": client.id, "kind": "reversal", "amount_cents": abs(change),
                "currency": client.currency_code, "description": reason.strip()[:200],
                "date": "", "category": "", "expires": "", "entry_id": found.entry.id,
                "requested_by": actor.admin_id, "requester": actor.name, "requested_at": now,
                "expires_at": self._expires_at(now, days), "payload": "",
            },
            actor,
            now,
        )  # fmt: skip

    def bulk_needs(self, bulk: BulkFile) -> dict[str, int]:
        """The currencies whose rows to apply need approval as a whole (their sum of amounts
        above the rule, or a removal under a rule for every removal), with those sums."""
        totals: dict[str, int] = {}
        removals: set[str] = set()
        for row in bulk.rows:
            if row.to_apply and row.op is not None and row.client is not None:
                code = row.client.currency_code
                totals[code] = totals.get(code, 0) + abs(row.op.amount_cents)
                if row.op.amount_cents < 0:
                    removals.add(code)
        needed = {}
        for code, total in totals.items():
            rule = self.store.rule_of(code)
            if rule and (total > rule.above_cents or (rule.removals and code in removals)):
                needed[code] = total
        return needed

    def request_bulk(
        self, bulk: BulkFile, csv_text: str, needed: dict[str, int], actor: Actor, days: int = DAYS
    ) -> Request:
        """Record a bulk credit file as one request (its rows are checked again when approved)."""
        code = max(needed, key=lambda c: needed[c])
        others = ", ".join(f"{money.format_cents(v)} {c}" for c, v in sorted(needed.items()))
        rows = sum(1 for r in bulk.rows if r.to_apply)
        now = self.ledger.now()
        payload = json.dumps({"csv": csv_text, "name": bulk.name,
                              "again": sorted(r.number for r in bulk.rows if r.again)})  # fmt: skip
        return self.store.request(
            {
                "client_id": 0, "kind": "bulk", "amount_cents": needed[code], "currency": code,
                "description": f"Bulk credit file {bulk.name or '(unnamed)'}: {rows} rows "
                f"({others})", "date": "", "category": "", "expires": "", "entry_id": 0,
                "requested_by": actor.admin_id, "requester": actor.name, "requested_at": now,
                "expires_at": self._expires_at(now, days), "payload": payload,
            },
            actor,
            now,
        )  # fmt: skip

    def pending(self) -> list[Request]:
        """Requests waiting for a decision (expired ones are marked so first)."""
        now = self.ledger.now()
        self.store.expire(now)
        return self.store.pending(now)

    def waiting(self, client_id: int) -> list[Request]:
        """A client's requests still waiting (not expired), oldest first."""
        now = self.ledger.now()
        found = self.store.of_client(client_id)
        return [r for r in reversed(found) if r.status == "pending" and r.expires_at > now]

    def may_decide(self, request: Request, admin: Admin, owners_only: bool) -> str:
        """Why ``admin`` may not decide ``request`` ("" when they may)."""
        if request.requested_by == admin.id:
            return "You asked for this change: another manager or owner decides it"
        if admin.access == "owner":
            return ""
        if owners_only:
            return "Only owners approve changes here"
        if admin.access != "manager":
            return "Managers and owners decide changes"
        return ""

    def decide(
        self,
        request_id: int,
        approve: bool,
        admin: Admin,
        actor: Actor,
        note: str = "",
        owners_only: bool = False,
        bulk_days: int = 30,
    ) -> Request:
        """Approve (apply now, checked again) or reject (with a reason) a pending request;
        exactly one decision is taken. ``bulk_days``: how long a bulk row applied before is
        recognised (the console's ``bulk_repeat_days``)."""
        found = self.store.get(request_id)
        if found is None:
            raise errors.NotFound(f"No approval request #{request_id}")
        why = self.may_decide(found, admin, owners_only)
        if why:
            raise ApprovalRefused(why)
        note = note.strip()[:200]
        if not approve and not note:
            raise errors.ValidationError("Give the reason for rejecting the change")
        now = self.ledger.now()
        status = "deciding" if approve else "rejected"
        if not self.store.claim(request_id, status, actor, note, now):
            raise AlreadyDecided()
        if not approve:
            return self.store.settle(request_id, "rejected", "", actor, now)
        both = Actor(f"{found.requester}, approved by {actor.name}", found.requested_by, actor.ip)
        try:
            result = self._apply(found, both, bulk_days)
        except errors.CreditError as exc:
            return self.store.settle(request_id, "refused", exc.message, actor, self.ledger.now())
        return self.store.settle(request_id, "approved", result, actor, self.ledger.now())

    def _apply(self, found: Request, actor: Actor, bulk_days: int) -> str:
        """Apply an approved request through the ledger's rules; what it did, in words."""
        code = found.currency
        if found.kind == "bulk":
            return self._apply_bulk(found, actor, bulk_days)
        if found.kind == "reversal":
            balance = Staff(self.ledger).reverse_credit(
                found.entry_id, reason=f"{found.description} (approval #{found.id})", actor=actor
            )
            return f"entry #{found.entry_id} reversed; balance {money.format_cents(balance)} {code}"
        adding = found.kind == "add"
        result = self.ledger.add_credit(
            clientid=str(found.client_id), amount=money.format_cents(found.amount_cents),
            description=f"{found.description} (approval #{found.id})",
            type="add" if adding else "remove", date=found.date or None,
            category=found.category or None if adding else None,
            expires=found.expires or None if adding else None, actor=actor,
        )  # fmt: skip
        return f"balance {money.format_cents(result.balance_cents)} {code}"

    def _apply_bulk(self, found: Request, actor: Actor, bulk_days: int) -> str:
        """Check a bulk file's rows again, as of now, and apply them (each its own change,
        once per file, as the console's Apply does)."""
        data = json.loads(found.payload or "{}")
        files = Bulk(self.ledger, self.ledger.store.bulk, bulk_days)
        bulk = files.read(
            str(data.get("csv", "")).encode(), actor=actor, name=str(data.get("name", "")),
            again=frozenset(int(n) for n in data.get("again", [])),
        )  # fmt: skip
        if bulk.error:
            raise errors.ValidationError(bulk.error)
        applied = refused = 0
        for _, outcome, _ in files.apply(bulk):
            if outcome == "applied":
                applied += 1
            elif outcome not in ("already", "seen"):
                refused += 1
        return f"{applied} rows applied, {refused} refused, {bulk.invalid} invalid"
