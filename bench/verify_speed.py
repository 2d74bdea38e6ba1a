"""How fast is ``creditbook verify`` on a large ledger?

Builds a ledger of CLIENTS x PER_CLIENT entries with consistent running balances (bulk inserts,
not the API: this measures verification, not writing), then times ``verify``.

Usage: python bench/verify_speed.py DATABASE_URL [CLIENTS] [PER_CLIENT]
"""

from __future__ import annotations

import sys
import time

import creditbook
from creditbook.audit import verify

INSERT_CLIENT = (
    "INSERT INTO clients (id, firstname, lastname, email, email_key, balance_cents, entries,"
    " created_at) VALUES ({p}, 'V', 'V', {p}, {p}, {p}, {p}, '2026-01-01T00:00:00Z')"
)
INSERT_CREDIT = (
    "INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,"
    " balance_cents, relid, created_at)"
    " VALUES ({p}, {p}, 0, '2026-01-01', 'v', {p}, {p}, 0, '2026-01-01')"
)


def build(book: creditbook.Creditbook, clients: int, per_client: int) -> None:
    """Insert the synthetic ledger in batches."""
    p = "%s" if book.store.url.startswith("postgres") else "?"
    with book.store._write() as conn:  # type: ignore[attr-defined]
        cur = conn.cursor()
        cur.executemany(
            INSERT_CLIENT.format(p=p),
            [
                (c, f"v{c}@x.io", f"v{c}@x.io", per_client * 100, per_client)
                for c in range(1, clients + 1)
            ],
        )
    for first in range(1, clients + 1, 500):
        rows = [
            (c, k + 1, 100, (k + 1) * 100)
            for c in range(first, min(first + 500, clients + 1))
            for k in range(per_client)
        ]
        with book.store._write() as conn:  # type: ignore[attr-defined]
            conn.cursor().executemany(INSERT_CREDIT.format(p=p), rows)


def main() -> None:
    url = sys.argv[1]
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    per_client = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    with creditbook.open(url) as book:
        started = time.perf_counter()
        build(book, clients, per_client)
        print(f"built {clients * per_client} entries in {time.perf_counter() - started:.1f} s")
        for run in range(3):
            report = verify(book.store)
            assert report.ok, report.problems[:5]
            rate = report.entries / report.seconds
            print(
                f"verify run {run + 1}: {report.clients} clients, {report.entries} entries, "
                f"{report.seconds:.2f} s ({rate:,.0f} entries/s)"
            )


if __name__ == "__main__":
    main()
