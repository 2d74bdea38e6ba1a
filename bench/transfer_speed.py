"""Moving data: the WHMCS import, copy to PostgreSQL, and export, at the issue's sizes.

Usage: python bench/transfer_speed.py   prints JSON (seconds, rows/s, peak RSS in MB).

1. A throwaway MariaDB holds a WHMCS-shaped database with 100,000 clients and 1,000,000 credit
   rows (generated inside MariaDB); ``creditbook import whmcs-db`` reads it into a new SQLite
   store and into a new PostgreSQL database, each in a process of its own (time, peak RSS).
2. ``creditbook copy`` moves the imported 1,000,000-entry SQLite store into a new PostgreSQL
   database (time, peak RSS).
3. A 10,000,000-entry SQLite ledger (built inside SQLite) is exported with ``creditbook export
   credits`` to /dev/null (rows/s, peak RSS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from ledger_ops import CLIENTS_SQL, ENTRIES_SQL  # noqa: E402

import creditbook  # noqa: E402
from mariadb import MariaDBServer, find_mariadbd  # noqa: E402
from pgserver import PostgresServer, find_bindir  # noqa: E402
from whmcs_fixture import MODERN, connect  # noqa: E402

GENERATE = [
    "INSERT INTO tblcurrencies (id, code, prefix, suffix, format, `default`)"
    " VALUES (1, 'USD', '$', '', 1, 1)",
    "SET SESSION max_recursive_iterations = 2000000",
    """INSERT INTO tblclients (id, firstname, lastname, companyname, email, currency, credit,
       status, datecreated)
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {clients})
       SELECT i, 'Bench', CONCAT('C', i), '', CONCAT('c', i, '@example.com'), 1,
              {per} * 1.00 + IF(i % 10 = 0, 5, 0), 'Active', '2020-01-01' FROM n""",
    """INSERT INTO tblcredit (id, clientid, admin_id, date, description, amount, relid)
       WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows} - 1)
       SELECT i + 1, i DIV {per} + 1, 0, DATE_ADD('2020-01-01', INTERVAL i % 1000 DAY),
              'Credit for invoice', 1.00, 0 FROM n""",
]


def run(args: list[str]) -> tuple[float, float]:
    """Run a creditbook command; return (seconds, peak RSS in MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "creditbook", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        assert proc.stderr is not None
        raise RuntimeError(f"{args[:2]} failed: {proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def measure(
    clients: int = 100_000, rows: int = 1_000_000, export_rows: int = 10_000_000
) -> dict[str, Any]:
    """Every figure of the module docstring."""
    out: dict[str, Any] = {"clients": clients, "rows": rows, "export_rows": export_rows}
    binary, bindir = find_mariadbd(), find_bindir()
    assert binary and bindir, "MariaDB and PostgreSQL are needed"
    maria, pg = MariaDBServer(binary), PostgresServer(bindir)
    maria.start()
    pg.start()
    tmp = Path(tempfile.mkdtemp(prefix="creditbook-transfer-", dir=os.environ.get("BENCH_TMP")))
    try:
        conn = connect(maria.port)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE whmcs CHARACTER SET utf8mb4")
            cur.execute("USE whmcs")
            for ddl in MODERN:
                cur.execute(ddl)
            started = time.perf_counter()
            for sql in GENERATE:
                cur.execute(sql.format(clients=clients, rows=rows, per=rows // clients))
        conn.commit()
        conn.close()
        out["source_build_s"] = time.perf_counter() - started
        url = maria.url("whmcs")
        sqlite_db = f"sqlite:///{tmp}/imported.db"
        out["import_sqlite_s"], out["import_sqlite_rss_mb"] = run(
            ["import", "whmcs-db", url, "--database", sqlite_db, "--json"]
        )
        import psycopg

        with psycopg.connect(pg.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE imported")
            admin.execute("CREATE DATABASE copied")
        out["import_postgres_s"], out["import_postgres_rss_mb"] = run(
            ["import", "whmcs-db", url, "--database", pg.url("imported"), "--json"]
        )
        out["copy_s"], out["copy_rss_mb"] = run(["copy", sqlite_db, pg.url("copied"), "--json"])
        big = tmp / "export.db"
        with creditbook.open(str(big)) as book:
            per = 100
            count = export_rows // per
            with book.store._write() as cur:  # type: ignore[attr-defined]
                cur.execute(CLIENTS_SQL.format(clients=count, per=per))
            step = 2_000_000 // per
            for first in range(1, count + 1, step):
                with book.store._write() as cur:  # type: ignore[attr-defined]
                    cur.execute(ENTRIES_SQL.format(per=per, first=first, last=first + step - 1))
        seconds, rss = run(["export", "credits", "--database", str(big), "--output", os.devnull])
        out["export_s"], out["export_rss_mb"] = seconds, rss
        out["export_rows_per_s"] = export_rows / seconds
    finally:
        maria.stop()
        pg.stop()
        for path in tmp.glob("*"):
            path.unlink()
        tmp.rmdir()
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
