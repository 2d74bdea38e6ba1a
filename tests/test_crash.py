"""Crash safety: SIGKILL the server under sustained load, restart, and audit the ledger."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

import creditbook
from creditbook.audit import verify
from helpers import ACTOR, Server, seed

pytestmark = pytest.mark.slow
KILLS = 3


def load(
    url: str,
    auth: dict[str, str],
    clients: list[int],
    stop: threading.Event,
    acked: dict[str, tuple[int, int]],
    lock: threading.Lock,
    worker: int,
) -> None:
    """Send AddCredits with unique descriptions until told to stop; record what was acked."""
    rng = random.Random(worker)
    n = 0
    with httpx.Client(timeout=5) as http:
        while not stop.is_set():
            n += 1
            tag = f"{worker}-{n}"
            client_id, cents = rng.choice(clients), rng.randint(1, 500)
            try:
                body = http.post(
                    url,
                    data={
                        **auth,
                        "action": "AddCredit",
                        "description": tag,
                        "clientid": str(client_id),
                        "amount": f"{cents // 100}.{cents % 100:02d}",
                    },
                ).json()
            except (httpx.HTTPError, ValueError):
                time.sleep(0.01)
                continue
            if body.get("result") == "success":
                with lock:
                    acked[tag] = (client_id, cents)


def test_sigkill_under_load_loses_nothing_acknowledged(
    database: str, book: creditbook.Creditbook
) -> None:
    """Every acknowledged credit survives repeated SIGKILLs; the books always balance."""
    s = seed(book)
    clients = [s.client_id] + [
        book.ledger.add_client(
            firstname="c", lastname=str(i), email=f"crash{i}@example.com", actor=ACTOR
        ).client_id
        for i in range(9)
    ]
    auth = {"identifier": s.identifier, "secret": s.secret}
    acked: dict[str, tuple[int, int]] = {}
    lock = threading.Lock()
    for round_ in range(KILLS):
        server = Server(database, "--workers", "2").start()
        start = len(acked)
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=load,
                args=(server.api, auth, clients, stop, acked, lock, f"r{round_}w{w}"),
            )
            for w in range(16)
        ]
        for w in workers:
            w.start()
        time.sleep(1.5)
        server.kill()
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join()
        server.stop()
        assert len(acked) > start
    entries = {}
    for client_id in clients:
        _, _, rows = book.ledger.get_credits(str(client_id))
        for e in rows:
            entries[e.description] = (client_id, e.amount_cents)
    missing = [tag for tag, value in acked.items() if entries.get(tag) != value]
    assert missing == []
    report = verify(book.store)
    assert report.ok, report.problems
    print(
        f"\n{KILLS} SIGKILLs under 16-connection load: {len(acked)} acknowledged, "
        f"{len(entries) - len(acked)} applied but unacknowledged, all present, no drift"
    )
