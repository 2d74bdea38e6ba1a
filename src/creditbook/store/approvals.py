"""Four-eyes approval's store part (``store.approvals``): rules per currency, and requests that
wait for a second person, decided once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import Actor
from . import approval_sql as A
from . import queries as Q
from .sql import dump_json, event_uid

if TYPE_CHECKING:
    from .base import SqlStore


@dataclass(frozen=True, slots=True)
class Rule:
    """A currency's rule: console changes above ``above_cents`` (any removal, with
    ``removals``) need a second person's approval."""

    currency: str
    above_cents: int
    removals: bool


@dataclass(frozen=True, slots=True)
class Request:
    """A change waiting for approval (``kind``: add, remove or reversal), and its fate."""

    id: int
    client_id: int
    kind: str
    amount_cents: int
    currency: str
    description: str
    date: str
    category: str
    expires: str
    entry_id: int
    requested_by: int
    requester: str
    requested_at: str
    expires_at: str
    status: str
    decided_by: int
    decider: str
    decided_at: str
    note: str
    result: str
    #: A bulk credit file's rows (the CSV text and the rows ticked in), as JSON.
    payload: str = ""

    def as_json(self) -> dict[str, Any]:
        """The request as the CLI and webhooks show it (amount as two-decimal text)."""
        cents = self.amount_cents
        return {
            "id": self.id, "clientid": self.client_id, "kind": self.kind,
            "amount": f"{cents // 100}.{cents % 100:02d}", "currency": self.currency,
            "description": self.description, "entry_id": self.entry_id or None,
            "requester": self.requester, "requested_at": self.requested_at,
            "expires_at": self.expires_at, "status": self.status,
            "decider": self.decider or None, "decided_at": self.decided_at or None,
            "note": self.note, "result": self.result,
        }  # fmt: skip


def _request(row: Any) -> Request:
    r = list(row)
    for i in (0, 1, 3, 9, 10, 15):
        r[i] = int(r[i])
    return Request(*r)


class ApprovalStore:
    """Rules and requests."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def rules(self) -> list[Rule]:
        """Every rule, by currency."""
        with self._store._read() as cur:
            rows = self._store._run(cur, A.RULES).fetchall()
        return [Rule(r[0], int(r[1]), bool(r[2])) for r in rows]

    def rule_of(self, currency: str) -> Rule | None:
        """A currency's rule, if any."""
        with self._store._read() as cur:
            row = self._store._run(cur, A.RULE_OF, currency=currency).fetchone()
        return None if row is None else Rule(currency, int(row[0]), bool(row[1]))

    def set_rule(self, rule: Rule, actor: Actor, at: str) -> None:
        """Add or change a currency's rule (an activity line says so)."""

        def work(cur: object) -> None:
            params = {"currency": rule.currency, "above": rule.above_cents,
                      "removals": int(rule.removals)}  # fmt: skip
            self._store._run(cur, A.RULE_SET, **params)
            above = f"{rule.above_cents // 100}.{rule.above_cents % 100:02d}"
            extra = ", and every removal" if rule.removals else ""
            detail = f"Approval rule {rule.currency}: changes above {above}{extra}"
            self._store._activity(cur, actor, at, "approval-rule", detail)

        self._store._transact(work)

    def remove_rule(self, currency: str, actor: Actor, at: str) -> bool:
        """Remove a currency's rule; False when it had none."""

        def work(cur: object) -> bool:
            if not self._store._run(cur, A.RULE_DELETE, currency=currency).rowcount:
                return False
            detail = f"Approval rule {currency} removed"
            self._store._activity(cur, actor, at, "approval-rule", detail)
            return True

        return bool(self._store._transact(work))

    def request(self, fields: dict[str, Any], actor: Actor, at: str) -> Request:
        """Record a change waiting for approval, its activity line and ``approval.requested``."""
        store = self._store

        def work(cur: object) -> Request:
            new_id = int(store._run(cur, A.REQUEST_INSERT, **fields).fetchone()[0])
            found = _request(store._run(cur, A.REQUEST, id=new_id).fetchone())
            amount = found.as_json()["amount"]
            detail = (f"Approval #{new_id} requested: {found.kind} {amount} {found.currency}: "
                      f"{found.description}")  # fmt: skip
            store._activity(cur, actor, at, "approval-requested", detail, found.client_id)
            self._event(cur, "approval.requested", found, at)
            return found

        result: Request = store._transact(work)
        return result

    def get(self, request_id: int) -> Request | None:
        """One request."""
        with self._store._read() as cur:
            row = self._store._run(cur, A.REQUEST, id=request_id).fetchone()
        return None if row is None else _request(row)

    def pending(self, now: str, limit: int = 200) -> list[Request]:
        """Requests waiting for a decision (not expired), oldest first."""
        with self._store._read() as cur:
            rows = self._store._run(cur, A.PENDING, now=now, limit=limit).fetchall()
        return [_request(r) for r in rows]

    def of_client(self, client_id: int, limit: int = 20) -> list[Request]:
        """A client's requests, newest first."""
        with self._store._read() as cur:
            rows = self._store._run(cur, A.OF_CLIENT, client_id=client_id, limit=limit)
            return [_request(r) for r in rows.fetchall()]

    def recent(self, limit: int = 50) -> list[Request]:
        """Decided (or expired) requests, newest first."""
        with self._store._read() as cur:
            rows = self._store._run(cur, A.RECENT, limit=limit).fetchall()
        return [_request(r) for r in rows]

    def claim(self, request_id: int, status: str, actor: Actor, note: str, at: str) -> bool:
        """Take the one decision on a pending request (``deciding`` for an approval about to
        be applied, ``rejected``); False when another decision won or it expired."""

        def work(cur: object) -> bool:
            params = {"id": request_id, "status": status, "decided_by": actor.admin_id,
                      "decider": actor.name, "at": at, "note": note}  # fmt: skip
            return bool(self._store._run(cur, A.CLAIM, **params).rowcount)

        return bool(self._store._transact(work))

    def settle(self, request_id: int, status: str, result: str, actor: Actor, at: str) -> Request:
        """Record a request's outcome (approved, refused, rejected), its activity line and
        ``approval.decided``."""
        store = self._store

        def work(cur: object) -> Request:
            store._run(cur, A.SETTLE, id=request_id, status=status, result=result)
            found = _request(store._run(cur, A.REQUEST, id=request_id).fetchone())
            said = {"approved": "approved", "refused": "approved but refused",
                    "rejected": "rejected"}[status]  # fmt: skip
            detail = f"Approval #{request_id} {said}" + (f": {result}" if result else "")
            if found.note:
                detail += f" ({found.note})"
            store._activity(cur, actor, at, "approval-decided", detail, found.client_id)
            self._event(cur, "approval.decided", found, at)
            return found

        result_: Request = store._transact(work)
        return result_

    def expire(self, now: str) -> int:
        """Mark requests past their time as expired; return how many."""
        return int(
            self._store._transact(lambda cur: self._store._run(cur, A.EXPIRE, now=now).rowcount)
        )

    def _event(self, cur: Any, kind: str, request: Request, at: str) -> None:
        if not self._store._listened(cur):
            return
        event = {"uid": event_uid(), "type": kind, "client_id": request.client_id, "seq": 0,
                 "idem_key": "", "data": dump_json(request.as_json()), "at": at}  # fmt: skip
        self._store._run(cur, Q.EVENT_INSERT, **event)
