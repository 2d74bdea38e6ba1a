"""Expiry across processes: two runs at once (and two PostgreSQL servers whose clocks, under
``faketime``, say the grants are due) expire each grant exactly once; a run killed with SIGKILL
midway loses and doubles nothing, and the next run finishes the work."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

import creditbook
from creditbook.audit import verify
from helpers import ACTOR, Server

DUE_DAY = "2026-01-15"
RUN_DAY = "2026-02-01"


def seed_grants(url: str, clients: int, per: int) -> list[int]:
    """Clients with ``per`` promotional grants of 1.00 each, due after DUE_DAY, and 0.50 of
    paid credit each."""
    with creditbook.open(url) as book:
        ids = [
            book.ledger.add_client(
                firstname="e", lastname=str(i), email=f"exp{i}@example.com", actor=ACTOR
            ).client_id
            for i in range(clients)
        ]
        rows: list[dict[str, Any]] = []
        for cid in ids:
            rows += [{"clientid": str(cid), "amount": "1.00", "description": f"promo {i}",
                      "category": "promotional", "expires": DUE_DAY, "date": "2026-01-01"}
                     for i in range(per)]  # fmt: skip
            rows.append({"clientid": str(cid), "amount": "0.50", "description": "paid"})
        for start in range(0, len(rows), 5000):
            results = book.credit_many(rows[start : start + 5000])
            assert all(r["result"] == "success" for r in results)
    return ids


def expire_cmd(url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "creditbook", "expire", "--database", url,
            "--today", RUN_DAY, "--json", *extra]  # fmt: skip


def expired_once(url: str, grants: int) -> None:
    """Every due grant has exactly one expiry entry, balances are what is left, verify passes."""
    with creditbook.open(url) as book:
        store: Any = book.store
        with store._read() as cur:
            rows = store._run(
                cur,
                "SELECT a.client_id, a.grant_seq, COUNT(*) FROM credits c JOIN allocations a"
                " ON a.client_id = c.client_id AND a.seq = c.seq WHERE c.kind = 'expiry'"
                " GROUP BY a.client_id, a.grant_seq",
            ).fetchall()
            open_due = store._run(
                cur, "SELECT COUNT(*) FROM credits WHERE expires <> '' AND remaining > 0"
            ).fetchone()[0]
            balances = {int(r[0]) for r in store._run(cur, "SELECT balance_cents FROM clients")}
        assert len(rows) == grants and {int(r[2]) for r in rows} == {1}
        assert open_due == 0 and balances == {50}
        report = verify(book.store)
        assert report.ok, report.problems[:5]


@pytest.mark.slow
def test_two_expiry_runs_at_once_expire_each_grant_once(database: str) -> None:
    """Two ``creditbook expire`` processes started together on one store (no lease between
    them): each chunk locks its clients first, so each grant expires once."""
    seed_grants(database, 240, 5)
    procs = [subprocess.Popen(expire_cmd(database), stdout=subprocess.PIPE) for _ in range(2)]
    reports = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(r["grants"] for r in reports) == 1200
    expired_once(database, 1200)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_an_expiry_run_loses_and_doubles_nothing(database: str) -> None:
    """A run killed while it works leaves whole transactions; the next run does the rest."""
    seed_grants(database, 400, 25)
    proc = subprocess.Popen(expire_cmd(database), stdout=subprocess.DEVNULL)
    with creditbook.open(database) as book:
        store: Any = book.store
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            with store._read() as cur:
                done = store._run(cur, "SELECT COUNT(*) FROM credits WHERE kind = 'expiry'")
                done = int(done.fetchone()[0])
            if done:
                break
            time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < done < 10_000, done  # it was killed in the middle
    again = subprocess.run(expire_cmd(database), capture_output=True, check=True, timeout=300)
    assert 0 < json.loads(again.stdout)["grants"] < 10_000
    expired_once(database, 10_000)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("faketime") is None and not os.environ.get("CI"), reason="faketime"
)
def test_two_postgresql_servers_expire_on_their_own_clock(postgres: Any) -> None:
    """Two ``serve`` processes on one PostgreSQL database whose clocks (``faketime``) are past
    the grants' expiry day: the expiry job runs in one of them at a time, catches up, and each
    grant expires once; ``/metrics`` counts what is overdue until it has."""
    from conftest import new_pg_database

    url = new_pg_database(postgres)
    seed_grants(url, 60, 4)
    env = {
        "FAKETIME": f"@{RUN_DAY} 09:00:00",
        "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "CREDITBOOK_EXPIRY_INTERVAL": "1",
        "CREDITBOOK_WEBHOOKS": "0",
    }
    servers = [Server(url, env=env) for _ in range(2)]
    try:
        for server in servers:
            server.start()
        deadline = time.monotonic() + 60
        metrics = ""
        while time.monotonic() < deadline:
            metrics = httpx.get(servers[0].url + "/metrics", timeout=5).text
            if "creditbook_grants_overdue 0.0" in metrics:
                break
            time.sleep(0.5)
        assert "creditbook_grants_overdue 0.0" in metrics, metrics[-2000:]
        assert "creditbook_grants_oldest_overdue_seconds 0.0" in metrics
    finally:
        for server in servers:
            server.stop()
    expired_once(url, 240)
