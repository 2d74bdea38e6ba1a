"""Webhook data every SQL store shares: endpoints, the outbox's fan-out, deliveries and the lease.

The outbox rows themselves (``events``) are written by the ledger's own transactions
(``sql.SqlBase._write_deferred``, ``base.SqlStore._add_client`` and PostgreSQL's batch
function). Everything here runs off the request path, in the dispatcher or the CLI.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..model import Actor
from . import webhook_sql as W
from .sql import Cursor, SqlBase

EVENT_TYPES = (
    "credit.added",
    "credit.removed",
    "client.created",
    "credit.expired",
    "credit.expiring",
    "balance.low",
    "balance.depleted",
    "balance.recovered",
    "approval.requested",
    "approval.decided",
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A webhook endpoint; its signing secret is derived from the key file, never stored."""

    id: int
    uid: str
    url: str
    events: tuple[str, ...]
    description: str
    enabled: bool
    created_at: str
    secret_version: int
    failures: int
    failing_since: float | None
    retry_at: float
    disabled_note: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event's delivery to one endpoint (``pending``, ``delivered`` or ``failed``)."""

    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    client_id: int
    status: str
    attempts: int
    next_at: float
    created_at: float
    last_at: float | None
    last_status: int
    last_error: str
    done_at: float | None


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery to attempt now, with its event's payload fields."""

    id: int
    endpoint_id: int
    attempts: int
    created_at: float
    event_id: str
    event_type: str
    client_id: int
    at: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt: ``status`` is the HTTP status, 0 when none came back."""

    delivery: Due
    ok: bool
    status: int
    error: str
    next_at: float
    give_up: bool


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        int(row[0]),
        row[1],
        row[2],
        tuple(e for e in row[3].split(",") if e),
        row[4],
        bool(row[5]),
        row[6],
        int(row[7]),
        int(row[8]),
        None if row[9] is None else float(row[9]),
        float(row[10]),
        row[11],
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        int(row[0]),
        int(row[1]),
        row[2],
        row[3],
        int(row[4]),
        row[5],
        int(row[6]),
        float(row[7]),
        float(row[8]),
        None if row[9] is None else float(row[9]),
        int(row[10]),
        row[11],
        None if row[12] is None else float(row[12]),
    )


def event_data(row: Any) -> dict[str, Any]:
    """The ``data`` of an event from a ``DUE`` row: an entry's events read the entry itself
    (with what the event recorded beside it: a threshold crossed); the others carry theirs."""
    from ..money import format_cents

    extra: dict[str, Any] = json.loads(row[8]) if row[8] else {}
    if row[10] is None:
        extra["idempotency_key"] = row[7] or None
        return extra
    kind = row[16] or ("grant" if int(row[11]) > 0 else "removal")
    data: dict[str, Any] = {
        "client_id": int(row[6]),
        "entry_id": int(row[10]),
        "amount": format_cents(int(row[11])),
        "balance": format_cents(int(row[12])),
        "description": row[13],
        "date": row[14],
        "admin_id": int(row[15]),
        "kind": kind,
    }
    if kind in ("grant", "expiry"):
        data.update(category=row[17] or "paid", expires=row[18])
    if kind == "grant":
        data["remaining"] = format_cents(int(row[19]))
    data.update(extra)
    data["idempotency_key"] = row[7] or None
    return data


class WebhookStore(SqlBase):
    """Endpoints, fan-out, deliveries and the dispatcher's lease."""

    def add_endpoint(
        self, url: str, events: tuple[str, ...], description: str, actor: Actor, at: str
    ) -> Endpoint:
        """Create an enabled endpoint; it hears changes committed from now on."""
        uid = "ep_" + secrets.token_hex(12)

        def work(cur: Cursor) -> int:
            row = self._run(
                cur,
                W.ENDPOINT_INSERT,
                uid=uid,
                url=url,
                events=",".join(events),
                description=description,
                at=at,
            ).fetchone()
            self._activity(cur, actor, at, "webhook", f"Added webhook endpoint {url}")
            return int(row[0])

        endpoint = self.get_endpoint(self._transact(work))
        assert endpoint is not None
        return endpoint

    def list_endpoints(self) -> list[Endpoint]:
        """Every endpoint, oldest first."""
        with self._read() as cur:
            return [_endpoint(r) for r in self._run(cur, W.ENDPOINT_LIST).fetchall()]

    def get_endpoint(self, endpoint_id: int) -> Endpoint | None:
        """One endpoint, or None."""
        with self._read() as cur:
            row = self._run(cur, W.ENDPOINT_GET, id=endpoint_id).fetchone()
        return None if row is None else _endpoint(row)

    def set_endpoint_enabled(
        self, endpoint_id: int, enabled: bool, actor: Actor, at: str, note: str = ""
    ) -> None:
        """Enable or disable an endpoint (enabling clears its failure streak)."""

        def work(cur: Cursor) -> None:
            changed = self._run(
                cur, W.ENDPOINT_ENABLE, id=endpoint_id, enabled=int(enabled), note=note
            ).rowcount
            if not changed:
                raise errors.EndpointNotFound(endpoint_id)
            verb = "Enabled" if enabled else "Disabled"
            self._activity(cur, actor, at, "webhook", f"{verb} webhook endpoint {endpoint_id}")

        self._transact(work)

    def remove_endpoint(self, endpoint_id: int, actor: Actor, at: str) -> None:
        """Delete an endpoint and its deliveries."""

        def work(cur: Cursor) -> None:
            self._run(cur, W.ENDPOINT_DELETE_DELIVERIES, id=endpoint_id)
            if not self._run(cur, W.ENDPOINT_DELETE, id=endpoint_id).rowcount:
                raise errors.EndpointNotFound(endpoint_id)
            self._activity(cur, actor, at, "webhook", f"Removed webhook endpoint {endpoint_id}")

        self._transact(work)

    def fan_out(self, now: float, limit: int = 500) -> int:
        """Turn up to ``limit`` new events into deliveries, one per listening endpoint."""

        def work(cur: Cursor) -> int:
            upto = self._run(cur, W.FANOUT_BOUND, limit=limit).fetchone()[0]
            if upto is None:
                return 0
            made = self._run(cur, W.FANOUT_INSERT, now=now, upto=upto).rowcount
            self._run(cur, W.FANOUT_MARK, upto=upto)
            return int(made)

        with self._read() as cur:
            if self._run(cur, W.FANOUT_BOUND, limit=1).fetchone()[0] is None:
                return 0  # nothing new: no write transaction
        return self._transact(work)

    def due_deliveries(
        self, endpoint_id: int, now: float, limit: int = 500, probe: bool = False
    ) -> list[Due]:
        """An endpoint's deliveries to attempt now: the oldest pending one per client that is
        due, or with ``probe`` only its oldest pending one."""
        with self._read() as cur:
            if probe:
                rows = self._run(cur, W.PROBE, endpoint_id=endpoint_id).fetchall()
            else:
                rows = self._run(
                    cur, W.DUE, endpoint_id=endpoint_id, now=now, limit=limit
                ).fetchall()
        return [
            Due(
                int(r[0]),
                int(r[1]),
                int(r[2]),
                float(r[3]),
                r[4],
                r[5],
                int(r[6]),
                r[9],
                event_data(r),
            )
            for r in rows
        ]

    def record_outcomes(
        self,
        outcomes: list[Outcome],
        endpoints: dict[int, tuple[int, float | None, float]],
        disable: dict[int, str],
        now: float,
    ) -> None:
        """Record attempts, each endpoint's new (failures, failing since, retry at), and the
        endpoints to disable (their pending deliveries fail with the note), in one transaction."""

        def work(cur: Cursor) -> None:
            done = [{"id": o.delivery.id, "now": now, "status": o.status} for o in outcomes if o.ok]
            retry = [
                {
                    "id": o.delivery.id,
                    "now": now,
                    "status": o.status,
                    "error": o.error[:500],
                    "next_at": o.next_at,
                    "state": "failed" if o.give_up else "pending",
                    "done_at": now if o.give_up else None,
                }
                for o in outcomes
                if not o.ok
            ]
            if done:
                self._run_many(cur, W.DELIVERED, done)
            if retry:
                self._run_many(cur, W.RETRY, retry)
            for endpoint_id, (failures, since, retry_at) in endpoints.items():
                if failures == 0:
                    self._run(cur, W.ENDPOINT_HEALTHY, id=endpoint_id)
                else:
                    self._run(
                        cur,
                        W.ENDPOINT_FAILING,
                        id=endpoint_id,
                        failures=failures,
                        since=since,
                        retry_at=retry_at,
                    )
            for endpoint_id, note in disable.items():
                self._run(cur, W.ENDPOINT_DISABLE, id=endpoint_id, note=note)
                self._run(cur, W.ENDPOINT_FAIL_PENDING, id=endpoint_id, note=note, now=now)

        self._transact(work)

    def list_deliveries(
        self, endpoint_id: int = 0, failed: bool = False, limit: int = 100
    ) -> list[Delivery]:
        """Deliveries, newest first, optionally of one endpoint or only the failed ones."""
        with self._read() as cur:
            rows = self._run(
                cur, W.DELIVERIES, endpoint_id=endpoint_id, failed=int(failed), limit=limit
            ).fetchall()
        return [_delivery(r) for r in rows]

    def redeliver(self, delivery_id: int, now: float, actor: Actor, at: str) -> int:
        """Queue a delivery's event again for its endpoint (same event id); return the new id."""

        def work(cur: Cursor) -> int:
            row = self._run(cur, W.REDELIVER, id=delivery_id, now=now).fetchone()
            if row is None:
                raise errors.DeliveryNotFound(delivery_id)
            self._activity(cur, actor, at, "webhook", f"Redelivery of delivery {delivery_id}")
            return int(row[0])

        return self._transact(work)

    def webhook_backlog(self) -> tuple[int, int, float | None, str | None]:
        """Events not yet fanned out, pending deliveries, and the oldest of each's time."""
        with self._read() as cur:
            row = self._run(cur, W.BACKLOG).fetchone()
        return int(row[0]), int(row[1]), None if row[2] is None else float(row[2]), row[3]

    def take_lease(self, name: str, holder: str, now: float, seconds: float) -> bool:
        """Take or renew a lease; True when ``holder`` holds it until ``now + seconds``."""

        def work(cur: Cursor) -> bool:
            self._run(cur, W.LEASE_ROW, name=name)
            taken = self._run(
                cur, W.LEASE_TAKE, name=name, holder=holder, now=now, until=now + seconds
            ).rowcount
            return bool(taken)

        return self._transact(work)

    def release_lease(self, name: str, holder: str) -> None:
        """Give a lease up so another process can take it at once."""
        self._transact(lambda cur: self._run(cur, W.LEASE_RELEASE, name=name, holder=holder))

    def prune_webhooks(self, before: float, before_at: str) -> None:
        """Forget finished deliveries and their events older than the given times."""

        def work(cur: Cursor) -> None:
            self._run(cur, W.PRUNE_DELIVERIES, before=before)
            self._run(cur, W.PRUNE_EVENTS, before=before_at)

        self._transact(work)
