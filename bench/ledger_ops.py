"""Auditor and operator operations on a 10,000,000-entry SQLite ledger.

Usage: python bench/ledger_ops.py [CLIENTS] [PER_CLIENT]   prints JSON (seconds).

Builds CLIENTS clients (default 100,000) with PER_CLIENT entries each (default 100) dated across
a year, inside the database; then times: computing every hash chain (what the migration does for
an existing ledger), `verify` (balances, running balances, chains) in one process and in two
(`--jobs 2`), `balances --asof` streamed over every client, `backup` (SQLite's online
backup API, then the verification of the copy, in one process per core as the CLI does), and
one entry hash against the CPU an AddCredit costs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import creditbook
from creditbook import chain
from creditbook.audit import verify
from creditbook.backup import backup

CLIENTS_SQL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {clients})
INSERT INTO clients (id, firstname, lastname, companyname, email, email_key, currency_code,
                     status, balance_cents, details, created_at, entries)
SELECT i, 'Bench', 'C' || i, '', 'c' || i || '@example.com', 'c' || i || '@example.com', 'USD',
       'Active', {per} * 100, '{{}}', '2026-01-01T00:00:00Z', {per}
FROM n
"""
ENTRIES_SQL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {per})
INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents, balance_cents,
                     relid, created_at)
SELECT c.id, n.i, 0, date('2026-01-01', '+' || ((c.id + n.i * 3) % 365) || ' days'), 'bulk',
       100, n.i * 100, 0, '2026-01-01T00:00:00Z'
FROM clients c, n WHERE c.id BETWEEN {first} AND {last} ORDER BY c.id, n.i
"""


def timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def measure(clients: int = 100_000, per_client: int = 100) -> dict[str, float]:
    """Build the ledger and return the timings (seconds) and sizes."""
    out: dict[str, float] = {"clients": clients, "entries": clients * per_client}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "ops.db"
        with creditbook.open(str(path)) as book:
            store = book.store
            started = time.perf_counter()
            with store._write() as cur:  # type: ignore[attr-defined]
                cur.execute(CLIENTS_SQL.format(clients=clients, per=per_client))
            step = max(1, 2_000_000 // per_client)
            for first in range(1, clients + 1, step):
                with store._write() as cur:  # type: ignore[attr-defined]
                    cur.execute(
                        ENTRIES_SQL.format(per=per_client, first=first, last=first + step - 1)
                    )
            out["build_s"] = time.perf_counter() - started
            out["chain_backfill_s"] = timed(store.backfill_chain)  # type: ignore[attr-defined]
            report = verify(store)
            assert report.ok, report.problems[:5]
            out["verify_s"] = report.seconds
            report = verify(store, jobs=2)
            assert report.ok, report.problems[:5]
            out["verify_jobs2_s"] = report.seconds
            total = [0]

            def balances() -> None:
                for b in book.ledger.balances_asof("2026-06-30"):
                    total[0] += b.balance_cents

            out["balances_asof_s"] = timed(balances)
            dest = Path(tmp) / "backup.db"
            started = time.perf_counter()
            store.backup_to(str(dest))  # type: ignore[attr-defined]
            out["backup_copy_s"] = time.perf_counter() - started
            dest.unlink()
            started = time.perf_counter()
            # The CLI's default: one process per core but one (left to the service), 1 to 4.
            jobs = max(1, min((os.cpu_count() or 1) - 1, 4))
            copied = backup(store, str(dest), jobs=jobs)
            assert copied.ok
            out["backup_verified_s"] = time.perf_counter() - started
            out["db_mb"] = path.stat().st_size / 2**20
    n = 200_000
    started = time.perf_counter()
    for i in range(n):
        chain.entry_hash(
            i,
            i,
            "2026-01-01",
            125,
            1,
            0,
            "2026-01-01T00:00:00.000000Z",
            "credential:abcdefghijklmnopqrstuvwxyzabcdef",
            "Bench credit",
            "f" * 64,
        )
    out["hash_us"] = (time.perf_counter() - started) / n * 1e6
    return out


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    json.dump(measure(*args), sys.stdout)
    print()
