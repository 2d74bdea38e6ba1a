"""The Creditbook benchmark: one command, everything started here, results side by side.

    scripts/bench            full run (about 30 minutes), writes docs/performance.md and the chart
    scripts/bench --quick    one run per cell, shorter cells (about 10 minutes)
    scripts/bench --smoke    CI: SQLite only, a few seconds per cell, writes nothing

It starts a throwaway PostgreSQL, seeds 10,000 clients per store, runs Creditbook
(``creditbook serve --workers 2``) and the naive baseline (``bench/baseline.py`` on uvicorn,
2 workers) one after the other on the same machine, and drives them with wrk (Lua script
``bench/addcredit.lua``) at 1, 8, 32 and 128 connections, random clients and one hot client.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from seed import seed  # noqa: E402

import creditbook  # noqa: E402
from pgserver import PostgresServer, find_bindir, free_port  # noqa: E402

PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Cell:
    """One measured cell (medians over runs)."""

    store: str
    server: str
    connections: int
    pattern: str
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    def median(self, name: str) -> float:
        values = getattr(self, name)
        return float(statistics.median(values)) if values else float("nan")


# --- processes -----------------------------------------------------------------------------------


def group_pids(pgid: int) -> list[int]:
    """Every live process in a process group."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_mb(pids: list[int], key: str = "VmRSS") -> float:
    """The largest resident set among the processes (MB)."""
    best = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    best = max(best, int(line.split()[1]))
        except OSError:
            continue
    return best / 1024


class Server:
    """A server process group on a free loopback port: ``creditbook`` (its defaults) or the app
    of a module in bench/ (``baseline``, ``prototype``) under uvicorn."""

    def __init__(self, kind: str, database: str, ident: str, secret: str, workers: int = 2) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/includes/api.php"
        # Creditbook runs its defaults, access log included: users run the defaults.
        env = {
            **os.environ,
            "BASELINE_DATABASE": database,
            "BASELINE_IDENT": ident,
            "BASELINE_SECRET": secret,
            "PYTHONPATH": str(ROOT / "bench"),
        }
        if kind == "creditbook":
            args = [
                PY,
                "-m",
                "creditbook",
                "serve",
                "--database",
                database,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ]
        else:
            args = [
                PY,
                "-m",
                "uvicorn",
                f"{kind}:app",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = httpx.post(self.url, data={"action": "addcredit"}, timeout=2).status_code
                if status in (200, 403):
                    time.sleep(0.5)  # let every worker finish starting
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.log.seek(0)
        raise RuntimeError(f"{kind} did not start: {self.log.read().decode()[-2000:]}")

    def pids(self) -> list[int]:
        return group_pids(self.proc.pid)

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a server's process group (started with ``start_new_session``): SIGTERM, and SIGKILL
    if it has not exited within 20 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


T = TypeVar("T")


def in_turn(items: Iterable[T], round_: int) -> list[T]:
    """``items`` in order on even rounds and reversed on odd ones, so that in side-by-side runs
    no setup always follows the same other one (bench/ANALYSIS.md, ninth pass: A/A runs)."""
    ordered = list(items)
    return ordered[::-1] if round_ % 2 else ordered


def wrk(
    url: str,
    connections: int,
    seconds: float,
    hot: bool,
    ident: str,
    secret: str,
    threads: int | None = None,
) -> dict[str, float]:
    env = {
        **os.environ,
        "IDENT": ident,
        "SECRET": secret,
        "CLIENTS": "10000",
        "HOT": "1" if hot else "0",
    }
    threads = threads or min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "addcredit.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


# --- measurements --------------------------------------------------------------------------------


def http_matrix(
    store: str,
    database: str,
    ident: str,
    secret: str,
    conns: list[int],
    patterns: list[str],
    runs: int,
    seconds: float,
    cells: list[Cell],
) -> None:
    for kind in ("creditbook", "baseline"):
        server = Server(kind, database, ident, secret)
        try:
            wrk(server.url, 32, 2, False, ident, secret)  # warm-up
            for run in range(runs):
                for c in conns:
                    for pattern in patterns:
                        cell = next(
                            (
                                x
                                for x in cells
                                if (x.store, x.server, x.connections, x.pattern)
                                == (store, kind, c, pattern)
                            ),
                            None,
                        )
                        if cell is None:
                            cell = Cell(store, kind, c, pattern)
                            cells.append(cell)
                        pids = server.pids()
                        before = cpu_seconds(pids)
                        r = wrk(server.url, c, seconds, pattern == "hot", ident, secret)
                        cell.cpu.append(
                            (cpu_seconds(server.pids()) - before) / (r["duration_us"] / 1e6) * 100
                        )
                        cell.rss.append(rss_mb(server.pids()))
                        cell.rps.append(r["rps"])
                        cell.p50.append(r["p50_ms"])
                        cell.p99.append(r["p99_ms"])
                        cell.max.append(r["max_ms"])
                        cell.errors.append(int(r["non2xx"] + r["socket_errors"]))
                        print(
                            f"  {store:8} {kind:10} c={c:<3} {pattern:6} run {run + 1}: "
                            f"{r['rps']:8.0f} req/s p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} "
                            f"errors {cell.errors[-1]}",
                            flush=True,
                        )
        finally:
            server.stop()


def backup_under_load(store: str, database: str, ident: str, secret: str) -> dict[str, float]:
    """AddCredit at 32 connections for 15 s on Creditbook, with a backup taken in the middle.

    Returns wrk's p99 and max over the whole run, the same without a backup, and how long the
    backup (with its verification) took: the server must not stall while it runs.
    """
    server = Server("creditbook", database, ident, secret)
    try:
        wrk(server.url, 32, 2, False, ident, secret)  # warm-up
        quiet = wrk(server.url, 32, 15, False, ident, secret)
        outcome: dict[str, float] = {}

        def take() -> None:
            time.sleep(3)
            dest = Path(tempfile.mkdtemp(prefix="creditbook-backup-")) / "b.db"
            started = time.perf_counter()
            done = subprocess.run(
                [PY, "-m", "creditbook", "backup", str(dest), "--database", database, "--json"],
                capture_output=True,
                text=True,
            )
            outcome["backup_s"] = time.perf_counter() - started
            outcome["ok"] = float(done.returncode == 0)
            if done.returncode == 0:
                outcome["entries"] = float(json.loads(done.stdout)["rows"]["credits"])
            shutil.rmtree(dest.parent, ignore_errors=True)

        taker = threading.Thread(target=take)
        taker.start()
        loaded = wrk(server.url, 32, 15, False, ident, secret)
        taker.join()
    finally:
        server.stop()
    return {
        "store": 0.0 if store == "sqlite" else 1.0,
        "p99_ms": loaded["p99_ms"],
        "max_ms": loaded["max_ms"],
        "rps": loaded["rps"],
        "errors": loaded["non2xx"] + loaded["socket_errors"],
        "quiet_p99_ms": quiet["p99_ms"],
        "quiet_max_ms": quiet["max_ms"],
        "quiet_rps": quiet["rps"],
        **outcome,
    }


def local_api_rate(database: str, threads: int, total: int, clients: int = 10_000) -> float:
    """AddCredit through local_api: operations per second with N threads."""
    with creditbook.open(database) as book:

        def work(n: int) -> None:
            rng = random.Random(n)
            for _ in range(total // threads):
                result = book.local_api(
                    "AddCredit",
                    {"clientid": rng.randint(1, clients), "amount": "1.25", "description": "local"},
                )
                assert result["result"] == "success", result

        started = time.perf_counter()
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return (total // threads * threads) / (time.perf_counter() - started)


def credit_many_rate(database: str, calls: int = 20, per_call: int = 1000) -> float:
    """Credits per second through ``book.credit_many`` (one durable commit per call)."""
    rng = random.Random(1)
    with creditbook.open(database) as book:
        started = time.perf_counter()
        for _ in range(calls):
            results = book.credit_many(
                [
                    {"clientid": rng.randint(1, 10_000), "amount": "1.25", "description": "many"}
                    for _ in range(per_call)
                ]
            )
            assert all(r["result"] == "success" for r in results), results[:3]
        return calls * per_call / (time.perf_counter() - started)


BULK_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {per})
INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents, balance_cents,
                     relid, created_at)
SELECT c.id, n.i, 0, '2026-01-01', 'bulk', 100, n.i * 100, 0, '2026-01-01T00:00:00Z'
FROM clients c, n WHERE c.id BETWEEN {first} AND {last} ORDER BY c.id, n.i
"""
BULK_PG = """
INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents, balance_cents,
                     relid, created_at)
SELECT c.id, n.i, 0, '2026-01-01', 'bulk', 100, n.i * 100, 0, '2026-01-01T00:00:00Z'
FROM clients c, generate_series(1, {per}) AS n(i) WHERE c.id BETWEEN {first} AND {last}
ORDER BY c.id, n.i
"""


def copy_store_to(source: str, target: str) -> None:
    """Copy a seeded database into an empty one (same rows, same credential)."""
    from creditbook.backup import copy

    assert copy(source, target).ok


def bulk_entries(database: str, clients: int, per_client: int) -> None:
    """Give clients 1..N ``per_client`` consistent entries each, generated inside the database."""
    with creditbook.open(database) as book:
        template = BULK_PG if database.startswith("postgres") else BULK_SQLITE
        step = max(1, 2_000_000 // per_client)
        for first in range(1, clients + 1, step):
            last = min(first + step - 1, clients)
            with book.store._write() as cur:  # type: ignore[attr-defined]
                cur.execute(template.format(per=per_client, first=first, last=last))
                cur.execute(
                    f"UPDATE clients SET entries = {per_client}, balance_cents = "  # noqa: S608
                    f"{per_client * 100} WHERE id BETWEEN {first} AND {last}"
                )


def settle(database: str) -> None:
    """Let a freshly bulk-loaded database settle before it is measured.

    Right after millions of rows arrive, PostgreSQL's autovacuum scans the new table and its
    checkpointer writes it out, on the same two cores and disk as the cell that follows (which
    then measured the load's aftermath, worst for whichever server ran first). A vacuum and a
    checkpoint do that work now; SQLite's WAL is checkpointed and truncated likewise.
    """
    if database.startswith("postgres"):
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            conn.execute("CHECKPOINT")
    else:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(database.removeprefix("sqlite:///"))) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def getcredits(
    database: str, ident: str, secret: str, samples: int, entries: int = 1_000_000
) -> dict[str, float]:
    """Page-of-100 latency on client 1 (``entries`` entries) and the RSS of an unpaged read."""
    server = Server("creditbook", database, ident, secret, workers=1)
    try:
        rng = random.Random(1)
        times = []
        with httpx.Client(timeout=60) as http:
            for i in range(samples):
                start = rng.randint(0, entries - 100) if i else entries - 100
                t0 = time.perf_counter()
                body = http.post(
                    server.url,
                    data={
                        "action": "GetCredits",
                        "identifier": ident,
                        "secret": secret,
                        "clientid": "1",
                        "limitstart": str(start),
                        "limitnum": "100",
                    },
                ).json()
                times.append((time.perf_counter() - t0) * 1000)
                assert body["numreturned"] == 100, body
            rss_before = rss_mb(server.pids())
            peak = [rss_before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak.append(rss_mb(server.pids()))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            size = 0
            t0 = time.perf_counter()
            with http.stream(
                "POST",
                server.url,
                data={
                    "action": "GetCredits",
                    "identifier": ident,
                    "secret": secret,
                    "clientid": "1",
                },
            ) as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
            unpaged = time.perf_counter() - t0
            done.set()
            sampler.join()
        return {
            "p50_ms": statistics.median(times),
            "p99_ms": sorted(times)[int(len(times) * 0.99) - 1],
            "unpaged_s": unpaged,
            "unpaged_mb": size / 1e6,
            "rss_before_mb": rss_before,
            "rss_peak_mb": max(peak),
        }
    finally:
        server.stop()


# --- orchestration -------------------------------------------------------------------------------


@contextmanager
def postgres() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found: apt-get install postgresql")
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_database(store: str, pg: PostgresServer | None, workdir: Path, name: str) -> str:
    if store == "sqlite":
        return f"sqlite:///{workdir / name}.db"
    assert pg is not None
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url(name)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up in finally
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per cell, 5 s cells")
    parser.add_argument("--smoke", action="store_true", help="CI: SQLite, tiny, writes nothing")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where results go")
    parser.add_argument("--stores", default="sqlite,postgres", help="comma list of stores")
    parser.add_argument("--runs", type=int, help="runs per cell (default 3; quick and smoke 1)")
    parser.add_argument(
        "--only",
        choices=["backup_load", "webhook_dead", "transfer", "console", "ledger_ops"],
        help="measure only this (with --merge: update that run's figures, keep its cells)",
    )
    parser.add_argument("--seconds", type=float, help="seconds per run (default 10)")
    parser.add_argument(
        "--merge",
        metavar="RESULTS_JSON",
        help="keep the other stores' figures from a saved run (same machine) and replace these",
    )
    parser.add_argument(
        "--report",
        metavar="RESULTS_JSON",
        help="rewrite the report from a saved run in bench/results/",
    )
    args = parser.parse_args()
    if args.report:
        from report import write_report

        results = json.loads(Path(args.report).read_text())
        write_report(results, [Cell(**c) for c in results["cells"]], Path(args.out))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    runs, seconds = (1, 2.0) if args.smoke else (1, 5.0) if args.quick else (3, 10.0)
    runs, seconds = args.runs or runs, args.seconds or seconds
    stores = ["sqlite"] if args.smoke else args.stores.split(",")
    conns = [1, 8, 32] if args.smoke else [1, 8, 32, 128]
    patterns = ["random", "hot"]
    workdir = Path(tempfile.mkdtemp(prefix="creditbook-bench-"))
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "runs": runs,
        "seconds": seconds,
        "machine": machine(),
    }
    cells: list[Cell] = []
    from parse_speed import measure as parse_speed

    results["parse"] = parse_speed()
    print(f"hostile 1 MiB bodies: {results['parse']}", flush=True)
    pg_cm = postgres() if "postgres" in stores else None
    pg = pg_cm.__enter__() if pg_cm else None
    try:
        for store in stores:
            database = new_database(store, pg, workdir, "bench")
            ident, secret = seed(database, 10_000)
            if args.only is None:
                print(f"{store}: HTTP matrix", flush=True)
                http_matrix(store, database, ident, secret, conns, patterns, runs, seconds, cells)
            if args.smoke:
                continue
            if args.only in (None, "webhook_dead"):
                from webhook_load import measure as webhook_dead

                print(f"{store}: AddCredit with a dead webhook receiver, against none", flush=True)
                plain = new_database(store, pg, workdir, "plain")
                hooked = new_database(store, pg, workdir, "hooked")
                ident5, secret5 = seed(plain, 10_000)
                copy_store_to(plain, hooked)  # the same clients and credential
                results[f"webhook_dead_{store}"] = webhook_dead(
                    store, (plain, hooked), ident5, secret5, max(runs, 7), min(seconds, 5.0)
                )
                print(f"  {results[f'webhook_dead_{store}']}", flush=True)
            if args.only in (None, "transfer") and store == stores[0]:
                from transfer_speed import measure as transfer_speed

                print("import, copy and export at full size", flush=True)
                results["transfer"] = transfer_speed()
                print(f"  {results['transfer']}", flush=True)
            if args.only in (None, "console") and store == stores[0]:
                from console_pages import measure as console_pages

                print("web console pages on 100,000 clients and 1,000,000 entries", flush=True)
                results["console"] = console_pages(",".join(stores))
                print(f"  {results['console']}", flush=True)
            if args.only in (None, "backup_load"):
                print(
                    f"{store}: a backup of 1,000,000 entries while 32 connections write", flush=True
                )
                chained = new_database(store, pg, workdir, "chained")
                ident4, secret4 = seed(chained, 10_000)
                bulk_entries(chained, 10_000, 100)
                with creditbook.open(chained) as book:
                    book.store.backfill_chain()
                settle(chained)
                results[f"backup_load_{store}"] = backup_under_load(store, chained, ident4, secret4)
                print(f"  {results[f'backup_load_{store}']}", flush=True)
            if args.only in (None, "ledger_ops") and store == "sqlite":
                from ledger_ops import measure as ledger_ops

                print(
                    "sqlite: verify, balances --asof and backup on 10,000,000 entries", flush=True
                )
                results["ledger_ops"] = ledger_ops()
                print(f"  {results['ledger_ops']}", flush=True)
            if args.only:
                continue
            print(f"{store}: local_api", flush=True)
            for threads in (1, 8):
                rates = [local_api_rate(database, threads, 20_000) for _ in range(runs)]
                results[f"local_api_{store}_{threads}"] = rates
                print(f"  {threads} thread(s): {statistics.median(rates):,.0f}/s", flush=True)
            rates = [credit_many_rate(database) for _ in range(runs)]
            results[f"credit_many_{store}"] = rates
            print(f"  credit_many: {statistics.median(rates):,.0f} credits/s", flush=True)
            print(f"{store}: GetCredits on 1,000,000 entries", flush=True)
            big = new_database(store, pg, workdir, "history")
            ident2, secret2 = seed(big, 1)
            bulk_entries(big, 1, 1_000_000)
            settle(big)
            results[f"getcredits_{store}"] = getcredits(big, ident2, secret2, 300)
            print(f"  {results[f'getcredits_{store}']}", flush=True)
            print(f"{store}: AddCredit on a 10,000,000-entry ledger", flush=True)
            huge = new_database(store, pg, workdir, "huge")
            ident3, secret3 = seed(huge, 10_000)
            started = time.perf_counter()
            bulk_entries(huge, 10_000, 1_000)
            results[f"build_10m_{store}_s"] = time.perf_counter() - started
            settle(huge)
            http_matrix(
                store + "-10M", huge, ident3, secret3, [32], ["random"], runs, seconds, cells
            )

    finally:
        if pg_cm:
            pg_cm.__exit__(None, None, None)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.merge and args.only:
        old = json.loads(Path(args.merge).read_text())
        new = {k: v for k, v in results.items() if k.startswith(args.only)}
        results = {**old, **new, **{f"updated_{key}": results["started"] for key in new}}
        results.pop(f"updated_{args.only}", None)  # the form before measures were per store
        if old.get("updated", "").startswith(args.only + ":"):
            results.pop("updated")
        cells = [Cell(**c) for c in old["cells"]]
    elif args.merge:
        old = json.loads(Path(args.merge).read_text())
        kept = [Cell(**c) for c in old["cells"] if c["store"].split("-")[0] not in stores]
        cells = kept + cells
        for key, value in old.items():
            if key not in results and not any(store in key for store in stores):
                results[key] = value
        results["merged_from"] = old["started"]
    results["cells"] = [asdict(c) for c in cells]
    if args.smoke:
        smoke_check(cells)
        return
    out = Path(args.out)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (ROOT / "bench" / "results" / f"{stamp}.json").write_text(json.dumps(results, indent=1))
    from report import write_report

    write_report(results, cells, out)
    print(f"wrote {out / 'performance.md'} and {out / 'throughput.png'}")


def smoke_check(cells: list[Cell]) -> None:
    """CI: both servers answered every request, and Creditbook kept up with the baseline."""
    for cell in cells:
        print(
            f"{cell.server:10} c={cell.connections:<3} {cell.pattern:6} "
            f"{cell.median('rps'):8.0f} req/s p99 {cell.median('p99'):.1f} ms "
            f"errors {sum(cell.errors)}"
        )
        assert sum(cell.errors) == 0, cell
        assert cell.median("rps") > 0, cell
    print("smoke benchmark: 0 errors")


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{int(mem) / 2**20:.0f}",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
        if shutil.which("wrk")
        else "?",
    }


if __name__ == "__main__":
    main()
