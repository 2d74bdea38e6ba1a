"""Credit grants at size: a removal from a client with 1,000 open grants, an expiry run over
100,000 due grants, and ``balances --asof --by category`` and the month-end ``report
rollforward`` over 10,000,000 entries of 100,000 clients (``--entries``, 100 per client).

Usage: python bench/grants.py [removal|expiry|asof|all] [--postgres] [--entries N]

Each ledger is built with bulk inserts (this measures the operations, not writing them); the
removal is timed through the ledger (the API's path without HTTP), the other two as the CLI
commands an operator runs (``creditbook expire``, ``creditbook balances``), process start
included. Prints one JSON line per measurement.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import creditbook  # noqa: E402
from creditbook.model import Actor  # noqa: E402

ACTOR = Actor("bench")
CLIENT = (
    "INSERT INTO clients (id, firstname, lastname, email, email_key, balance_cents, entries,"
    " created_at, open_from, last_date) VALUES ({p}, 'G', 'G', {p}, {p}, {p}, {p},"
    " '2026-01-01T00:00:00Z', {p}, '2026-11-30')"
)
CREDIT = (
    "INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,"
    " balance_cents, relid, created_at, kind, category, expires, remaining)"
    " VALUES ({p}, {p}, 0, {p}, 'g', {p}, {p}, 0, '2026-01-01T00:00:00Z', {p}, {p}, {p}, {p})"
)
ALLOCATION = (
    "INSERT INTO allocations (client_id, seq, grant_seq, amount, category, date)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p})"
)


def placeholder(url: str) -> str:
    return "%s" if url.startswith("postgres") else "?"


def insert(book: creditbook.Creditbook, sql: str, rows: list[tuple[Any, ...]]) -> None:
    store: Any = book.store
    with store._write() as conn:
        cur = conn.cursor()
        cur.executemany(sql.format(p=placeholder(store.url)), rows)


def ledger(url: str, clients: int, per_client: int, shape: str) -> None:
    """``clients`` x ``per_client`` entries. ``due``: ten promotional grants per client that
    expired on 2026-01-15, the rest paid; ``mixed``: paid grants over three years, one in ten
    promotional, one in five a removal with its allocation."""
    days = [f"{2024 + d // 336}-{1 + d // 28 % 12:02d}-{1 + d % 28:02d}" for d in range(1008)]
    opens = 11 if shape == "due" else 2
    with creditbook.open(url) as book:
        for first in range(1, clients + 1, 200):
            client_rows: list[tuple[Any, ...]] = []
            credit_rows: list[tuple[Any, ...]] = []
            allocation_rows: list[tuple[Any, ...]] = []
            for c in range(first, min(first + 200, clients + 1)):
                balance = 0
                for seq in range(1, per_client + 1):
                    day = days[(seq - 1) * len(days) // per_client]
                    if shape == "due" and seq <= 10:
                        row = (100, "grant", "promotional", "2026-01-15", 100, "2026-01-01")
                    elif shape == "mixed" and seq % 5 == 0:
                        row = (-50, "removal", "", "", 0, day)
                        allocation_rows.append((c, seq, seq - 1, 50, "paid", day))
                    elif shape == "mixed" and seq % 10 == 1:
                        row = (100, "grant", "promotional", "2027-06-30", 100, day)
                    else:
                        left = 50 if shape == "mixed" and seq % 5 == 4 else 100
                        row = (100, "grant", "paid", "", left, day)
                    amount, kind, category, expires, left, date = row
                    balance += amount
                    credit_rows.append(
                        (c, seq, date, amount, balance, kind, category, expires, left)
                    )
                client_rows.append((c, f"g{c}@x.io", f"g{c}@x.io", balance, per_client, opens))
            insert(book, CLIENT, client_rows)
            insert(book, CREDIT, credit_rows)
            if allocation_rows:
                insert(book, ALLOCATION, allocation_rows)


def settle(url: str) -> None:
    """On PostgreSQL, what autovacuum does to a table at rest after a bulk load: statistics and
    the visibility map (index-only scans read no table pages)."""
    if not url.startswith("postgres"):
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def cli(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "creditbook", *args, "--database", url]


def removal(url: str, grants: int = 1000, samples: int = 300) -> dict[str, Any]:
    """p50 of a removal from a client with ``grants`` open grants (half with expiry dates)."""
    with creditbook.open(url) as book:
        cid = book.ledger.add_client(
            firstname="R", lastname="R", email="r@x.io", actor=ACTOR
        ).client_id
        rows = [
            {"clientid": str(cid), "amount": "10.00", "description": f"g{i}",
             **({"category": "promotional", "expires": f"2027-{1 + i % 12:02d}-{1 + i % 28:02d}"}
                if i % 2 else {})}
            for i in range(grants)
        ]  # fmt: skip
        book.credit_many(rows)
        laps = []
        for _ in range(samples):  # 0.01: one grant (the soonest to expire), then put back
            started = time.perf_counter()
            book.ledger.add_credit(clientid=str(cid), amount="0.01", description="r",
                                   type="remove", actor=ACTOR)  # fmt: skip
            laps.append(time.perf_counter() - started)
            book.ledger.add_credit(clientid=str(cid), amount="0.01", description="top up",
                                   actor=ACTOR)  # fmt: skip
        wide = []
        for _ in range(20):  # 1,000.00: a hundred grants of 10.00, then a hundred put back
            started = time.perf_counter()
            book.ledger.add_credit(clientid=str(cid), amount="1000.00", description="r",
                                   type="remove", actor=ACTOR)  # fmt: skip
            wide.append(time.perf_counter() - started)
            book.credit_many(rows[:100])
        times = [statistics.median(laps) * 1000, statistics.median(wide) * 1000]
        still = len(book.ledger.open_grants(cid, 5000))
    return {"bench": "removal", "open_grants": still, "p50_ms_one_grant": round(times[0], 3),
            "p50_ms_hundred_grants": round(times[1], 3)}  # fmt: skip


def expiry(url: str, clients: int = 10_000) -> dict[str, Any]:
    """An expiry run over ten due grants for each of ``clients`` clients."""
    ledger(url, clients, 12, "due")
    seconds = timed(cli(url, "expire", "--today", "2026-02-01"))
    with creditbook.open(url) as book:
        store: Any = book.store
        with store._read() as cur:
            done = store._run(cur, "SELECT COUNT(*) FROM credits WHERE kind = 'expiry'")
            done = int(done.fetchone()[0])
    return {"bench": "expiry", "due_grants": done, "seconds": round(seconds, 2)}


def asof(url: str, entries: int) -> dict[str, Any]:
    """``balances --asof --by category`` and plain ``balances --asof`` over ``entries``."""
    clients = max(1, entries // 100)
    started = time.perf_counter()
    ledger(url, clients, 100, "mixed")
    settle(url)
    built = time.perf_counter() - started
    result: dict[str, Any] = {"bench": "asof", "clients": clients, "entries": clients * 100,
                              "built_s": round(built)}  # fmt: skip
    for day in ("2026-10-31", "2024-06-30"):
        by = timed(cli(url, "balances", "--asof", day, "--by", "category", "--format", "csv"))
        plain = timed(cli(url, "balances", "--asof", day, "--format", "csv"))
        result[day] = {"by_category_s": round(by, 2), "plain_s": round(plain, 2)}
    # The month-end roll-forward of one month (a recent one, and one in the oldest year).
    for first, last in (("2026-10-01", "2026-10-31"), ("2024-06-01", "2024-06-30")):
        period = ["report", "rollforward", "--from", first, "--to", last, "--format", "json"]
        by = timed(cli(url, *period, "--by", "category"))
        plain = timed(cli(url, *period))
        result[f"rollforward {first[:7]}"] = {"by_category_s": round(by, 2),
                                              "plain_s": round(plain, 2)}  # fmt: skip
    # Every command above ran in a process of its own: the largest one's peak memory.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return result


def database(postgres: bool, name: str, work: Path, pg: Any) -> str:
    from run import new_database

    return new_database("postgres" if postgres else "sqlite", pg, work, name)


def main() -> None:
    args = sys.argv[1:]
    what = args[0] if args and not args[0].startswith("--") else "all"
    use_pg = "--postgres" in args
    entries = int(args[args.index("--entries") + 1]) if "--entries" in args else 10_000_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pg_context: Any = None
        pg = None
        if use_pg:
            from run import postgres as pg_server

            pg_context = pg_server()
            pg = pg_context.__enter__()
        try:
            if what in ("removal", "all"):
                print(json.dumps(removal(database(use_pg, "removal", work, pg))), flush=True)
            if what in ("expiry", "all"):
                print(json.dumps(expiry(database(use_pg, "expiry", work, pg))), flush=True)
            if what in ("asof", "all"):
                print(json.dumps(asof(database(use_pg, "asof", work, pg), entries)), flush=True)
        finally:
            if pg_context is not None:
                pg_context.__exit__(None, None, None)
        os.environ.pop("CREDITBOOK_DATABASE", None)


if __name__ == "__main__":
    main()
