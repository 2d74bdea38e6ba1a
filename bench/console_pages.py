"""The web console's page timings at the issue's sizes, against a real ``creditbook serve``.

Usage: python bench/console_pages.py [--stores sqlite,postgres]   prints JSON per store.

A store gets 100,000 clients; client 1 holds 1,000,000 entries (built inside the database).
A server (one worker, defaults otherwise) serves the console; an owner logs in over HTTP. Each
page is fetched 30 times (after one warm-up) and the median and 95th percentile are reported:
the client page of client 1 (its first request too: the chart's daily series reads the whole
history once per process; newest entries, and pages deep in its history through signed "Older"
links' keys), the client list (first page by name, a page deep in the list, by balance, and
searches, one accent-insensitive), the overview (its first request too: the 90-day chart adds
up every entry written in the last 92 days, here all 1,000,000, then is cached for 30 s); then
client 1's CSV export (all 1,000,000 entries), timed, with the server's peak RSS sampled every
50 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from run import group_pids, rss_mb, stop  # noqa: E402

import creditbook  # noqa: E402
from creditbook.console.session import csrf_token  # noqa: E402
from creditbook.model import Actor  # noqa: E402
from pgserver import PostgresServer, find_bindir, free_port  # noqa: E402

CLIENTS, ENTRIES, SAMPLES = 100_000, 1_000_000, 30
PASSWORD = "bench console password"
BUILD = {
    "sqlite": [
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {clients})
INSERT INTO clients (id, firstname, lastname, companyname, email, email_key, currency_code,
                     status, balance_cents, details, created_at, entries)
SELECT i, CASE WHEN i % 1000 = 0 THEN 'Åsa' ELSE 'First' || (i % 977) END,
       CASE WHEN i % 1000 = 0 THEN 'Ångström' ELSE 'Last' || (i * 7919 % 100003) END,
       CASE WHEN i % 10 = 0 THEN 'Company ' || i ELSE '' END, 'c' || i || '@example.com',
       'c' || i || '@example.com', 'USD', 'Active', (i % 500) * 100, '{{}}',
       '2026-01-01T00:00:00Z', 0
FROM n""",
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {entries})
INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents, balance_cents,
                     relid, created_at, actor)
SELECT 1, n.i, 0, date('2024-01-01', '+' || (n.i * 1000 / {entries}) || ' days'),
       'Credit for invoice ' || n.i, 100, n.i * 100, 0, '{recent}', 'bench'
FROM n""",
    ],
    "postgres": [
        """INSERT INTO clients (id, firstname, lastname, companyname, email, email_key,
                     currency_code, status, balance_cents, details, created_at, entries)
SELECT i, CASE WHEN i % 1000 = 0 THEN 'Åsa' ELSE 'First' || (i % 977) END,
       CASE WHEN i % 1000 = 0 THEN 'Ångström' ELSE 'Last' || (i::bigint * 7919 % 100003) END,
       CASE WHEN i % 10 = 0 THEN 'Company ' || i ELSE '' END, 'c' || i || '@example.com',
       'c' || i || '@example.com', 'USD', 'Active', (i % 500) * 100, '{{}}',
       '2026-01-01T00:00:00Z', 0
FROM generate_series(1, {clients}) AS i""",
        """INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                     balance_cents, relid, created_at, actor)
SELECT 1, i, 0, to_char(date '2024-01-01' + (i::bigint * 1000 / {entries})::int, 'YYYY-MM-DD'),
       'Credit for invoice ' || i, 100, i::bigint * 100, 0, '{recent}', 'bench'
FROM generate_series(1, {entries}) AS i""",
        "SELECT setval(pg_get_serial_sequence('clients', 'id'), {clients})",
        "ANALYZE",
    ],
}
FINISH = """
UPDATE clients SET entries = {entries}, balance_cents = {entries} * 100,
                   last_date = (SELECT MAX(date) FROM credits WHERE client_id = 1)
WHERE id = 1
"""


def build(url: str, store: str) -> None:
    """Fill a fresh store and add the owner who logs in."""
    # Written a day ago: the overview's 90-day chart has all 1,000,000 entries to add up.
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with creditbook.open(url) as book:
        with book.store._write() as cur:  # type: ignore[attr-defined]
            for sql in [*BUILD[store], FINISH]:
                cur.execute(sql.format(clients=CLIENTS, entries=ENTRIES, recent=recent))
        # The folded search text and sort keys, as migrate fills them in for old clients.
        book.store.backfill_client_keys()  # type: ignore[attr-defined]
        book.ledger.add_admin("owner", PASSWORD, access="owner", actor=Actor("bench"))


@contextmanager
def serve(url: str) -> Iterator[tuple[str, int]]:
    """A ``creditbook serve`` (1 worker, no access log, no webhooks); yield its URL and pgid."""
    port = free_port()
    env = {**os.environ, "CREDITBOOK_ACCESS_LOG": "0", "CREDITBOOK_WEBHOOKS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "creditbook", "serve", "--database", url, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        stop(proc)


def deep_key(csrf: str, rng: random.Random) -> str:
    """A signed "Older entries" key deep in client 1's history (the page's own links are built
    the same way): entry i is dated in order and the balance before it is (i - 1) * 100."""
    i = rng.randint(100, ENTRIES)
    date = (dt.date(2024, 1, 1) + dt.timedelta(days=i * 1000 // ENTRIES)).isoformat()
    balance = (i - 1) * 100
    mac = hmac.new(csrf.encode(), f"1|{date}|{i}|{balance}".encode(), hashlib.sha256)
    return f"{date}_{i}_{balance}_{mac.hexdigest()[:16]}"


def timed(get: Callable[[], httpx.Response], samples: int = SAMPLES) -> dict[str, float]:
    """Median and 95th percentile of a page's response time, in ms (after a warm-up)."""
    assert get().status_code == 200
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1]}


def measure_store(store: str, url: str) -> dict[str, Any]:
    """Every figure for one store."""
    started = time.perf_counter()
    build(url, store)
    out: dict[str, Any] = {"build_s": time.perf_counter() - started}
    with serve(url) as (base, pgid), httpx.Client(base_url=base, timeout=300) as http:
        login = http.post("/admin/login", data={"username": "owner", "password": PASSWORD})
        assert login.status_code == 303, login.text
        started = time.perf_counter()
        assert http.get("/admin/").status_code == 200
        out["overview_cold_ms"] = (time.perf_counter() - started) * 1000
        rng = random.Random(7)
        started = time.perf_counter()
        assert http.get("/admin/clients/1").status_code == 200
        # The first view reads the whole history for the chart's daily series, once per process.
        out["client_page_cold_ms"] = (time.perf_counter() - started) * 1000
        out["client_page"] = timed(lambda: http.get("/admin/clients/1"))
        csrf = csrf_token(http.cookies["creditbook_session"])
        out["client_page_deep"] = timed(
            lambda: http.get("/admin/clients/1", params={"before": deep_key(csrf, rng)})
        )
        out["client_page_filtered"] = timed(
            lambda: http.get("/admin/clients/1?from=2024-06-01&to=2024-06-30")
        )
        out["client_list"] = timed(lambda: http.get("/admin/clients"))
        deep = http.get("/admin/clients").text
        for _ in range(40):  # follow "Next page" 40 times: 1,000 clients in
            link = re.search(r'href="([^"]+)" rel="next"', deep)
            assert link
            deep_url = link.group(1).replace("&amp;", "&")
            deep = http.get(deep_url).text
        out["client_list_deep"] = timed(lambda: http.get(deep_url))
        out["client_list_by_balance"] = timed(lambda: http.get("/admin/clients?sort=-balance"))
        out["client_list_search"] = timed(lambda: http.get("/admin/clients?q=company+777"))
        out["client_list_search_accents"] = timed(lambda: http.get("/admin/clients?q=ANGSTROM"))
        out["overview"] = timed(lambda: http.get("/admin/"))
        out["export"] = export(http, pgid)
    return out


def export(http: httpx.Client, pgid: int) -> dict[str, float]:
    """Client 1's whole history as CSV: seconds, rows, MB, and the server's peak RSS."""
    pids = group_pids(pgid)
    before = rss_mb(pids)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(rss_mb(pids))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    size = lines = 0
    started = time.perf_counter()
    with http.stream("GET", "/admin/clients/1/export.csv") as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    assert lines == ENTRIES + 1, lines
    return {
        "seconds": seconds,
        "rows": lines - 1,
        "mb": size / 1e6,
        "rss_before_mb": before,
        "rss_peak_mb": max(peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="creditbook-console-") as tmp:
        for store in args.stores.split(","):
            if store == "sqlite":
                results[store] = measure_store(store, f"sqlite:///{tmp}/console.db")
                continue
            bindir = find_bindir()
            assert bindir, "PostgreSQL binaries not found"
            server = PostgresServer(bindir)
            server.start()
            try:
                import psycopg

                with psycopg.connect(server.url(), autocommit=True) as conn:
                    conn.execute("CREATE DATABASE console")
                results[store] = measure_store(store, server.url("console"))
            finally:
                server.stop()
            print(f"{store}: {json.dumps(results[store])}", file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


def measure(stores: str = "sqlite,postgres") -> dict[str, Any]:
    """Run the benchmark in a process of its own; return its figures."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "console_pages.py"), "--stores", stores],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


if __name__ == "__main__":
    main()
