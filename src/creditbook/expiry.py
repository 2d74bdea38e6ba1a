"""Expiry: at the end of a grant's expiry day (in the configured zone) what remains of it expires.

``run`` catches up on every grant past its expiry day, a few hundred per transaction, clients
in id order: each transaction locks its clients, then reads their due grants, so a grant is
expired once however many processes (or hosts) run at the same time, and a run killed midway
leaves whole transactions behind it, which the next run continues from. ``Runner`` runs it in
``serve`` under a lease, as webhook delivery is, so normally one process does the work;
``creditbook expire`` runs it by hand or from cron. ``credit.expiring`` announces a grant a
configured number of days before (once per grant, claimed in its transaction).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter

from . import errors
from .ledger import Ledger
from .store.webhooks import WebhookStore

log = logging.getLogger("creditbook")
LEASE = "expiry"
#: Due grants per transaction (a client's grants always go together).
CHUNK = 500
EXPIRED = Counter("creditbook_grants_expired", "Grants whose remaining amount expired")
RUNS = Counter("creditbook_expiry_runs", "Expiry runs, by outcome", ["outcome"])


@dataclass(slots=True)
class ExpiryReport:
    """What an expiry run did (or, dry, would do)."""

    today: str
    dry_run: bool
    grants: int = 0
    clients: int = 0
    cents: int = 0
    notices: int = 0
    seconds: float = 0.0
    due: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The report as plain data (``--json``)."""
        from .money import format_cents

        return {
            "today": self.today,
            "dry_run": self.dry_run,
            "grants": self.grants,
            "clients": self.clients,
            "amount": format_cents(self.cents),
            "notices": self.notices,
            "seconds": round(self.seconds, 3),
            "due": self.due,
        }


def run(
    ledger: Ledger,
    *,
    today: str | None = None,
    dry_run: bool = False,
    notice_days: int = 0,
    chunk: int = CHUNK,
) -> ExpiryReport:
    """Expire what remains of every grant past its expiry day (``today``: the configured
    zone's), then announce those expiring within ``notice_days``; ``dry_run`` lists what would
    expire and changes nothing."""
    started = time.perf_counter()
    day = today or ledger.today()
    report = ExpiryReport(day, dry_run)
    grants = ledger.store.grants
    after = 0
    while True:
        bounds = grants.due_clients(day, after, chunk)
        if not bounds:
            break
        upto = bounds[-1]
        if dry_run:
            due = grants.due_grants(day, after, upto)
            report.clients += len({client_id for client_id, _ in due})
            report.grants += len(due)
            report.cents += sum(g.remaining for _, g in due)
            report.due += [
                {"client_id": client_id, "entry_id": g.id, "category": g.category,
                 "expires": g.expires, "amount": f"{g.remaining // 100}.{g.remaining % 100:02d}"}
                for client_id, g in due
            ]  # fmt: skip
        else:
            done = grants.expire_chunk(day, after, upto, ledger.now())
            report.clients += done.clients
            report.grants += done.grants
            report.cents += done.cents
            EXPIRED.inc(done.grants)
        after = upto
    if notice_days and not dry_run:
        until = (dt.date.fromisoformat(day) + dt.timedelta(days=notice_days)).isoformat()
        while announced := grants.notices(day, until, ledger.now()):
            report.notices += len(announced)
    report.seconds = time.perf_counter() - started
    return report


class Runner:
    """Runs expiry every ``interval`` seconds on a thread of a ``serve`` process, while this
    process holds the expiry lease (another takes it over when this one stops or dies)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        interval: float = 60.0,
        notice_days: int = 7,
        lease: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(ledger.store, WebhookStore):
            raise TypeError("expiry runs on a SQL store (it holds the leases)")
        self.ledger = ledger
        self.leases: WebhookStore = ledger.store
        self.interval = interval
        self.notice_days = notice_days
        self.lease = max(lease, interval * 2)
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> ExpiryReport | None:
        """One run if this process holds (or takes) the lease; None when another does."""
        if not self.leases.take_lease(LEASE, self.holder, self.clock(), self.lease):
            return None
        try:
            report = run(self.ledger, notice_days=self.notice_days)
        except errors.StoreError as exc:
            RUNS.labels("failed").inc()
            log.warning("expiry run failed (%s): retrying in %g s", exc, self.interval)
            return None
        RUNS.labels("done").inc()
        if report.grants or report.notices:
            log.info(
                "expired %d grants of %d clients, announced %d in %.2f s",
                report.grants, report.clients, report.notices, report.seconds,
            )  # fmt: skip
        return report

    def start(self) -> None:
        """Run on a daemon thread until ``stop``."""
        self._thread = threading.Thread(target=self._loop, name="creditbook-expiry", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a failed run is retried at the next interval, never fatal
                log.exception("expiry run failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop the thread (after the transaction in progress) and give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.leases.release_lease(LEASE, self.holder)
        except errors.StoreError:
            pass
