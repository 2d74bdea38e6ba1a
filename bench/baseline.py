"""The naive baseline: Starlette on uvicorn, one durable transaction per request.

The same path as Creditbook's AddCredit at its simplest: form parse, SHA-256 secret check,
validation, then one transaction (SQLite: flock + BEGIN IMMEDIATE, synchronous=FULL; PostgreSQL:
one CTE statement, psycopg async pool of 4) and a JSON reply. Same schema and durability as
Creditbook, none of its batching or caching.

Run: BASELINE_DATABASE=... BASELINE_IDENT=... BASELINE_SECRET=... \\
     uvicorn bench.baseline:app --workers 2 --no-access-log
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DATABASE = os.environ.get("BASELINE_DATABASE", "")
IDENT = os.environ.get("BASELINE_IDENT", "")
SECRET_HASH = hashlib.sha256(os.environ.get("BASELINE_SECRET", "").encode()).hexdigest()
AMOUNT = re.compile(r"[0-9]{1,14}(\.[0-9]{1,2})?")
MAX = 10**16 - 1
SQL = """
WITH u AS (UPDATE clients SET balance_cents = balance_cents + {p}, entries = entries + 1
           WHERE id = {p} AND balance_cents + {p} BETWEEN 0 AND {p}
           RETURNING id, balance_cents, entries),
     e AS (INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                                balance_cents, relid, created_at)
           SELECT id, entries, 0, {p}, {p}, {p}, balance_cents, 0, {p} FROM u)
SELECT balance_cents FROM u
"""
UPDATE = (
    "UPDATE clients SET balance_cents = balance_cents + ?, entries = entries + 1"
    " WHERE id = ? AND balance_cents + ? BETWEEN 0 AND ? RETURNING balance_cents, entries"
)
INSERT = (
    "INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,"
    " balance_cents, relid, created_at) VALUES (?, ?, 0, ?, ?, ?, ?, 0, ?)"
)
state: dict[str, Any] = {}


def error(message: str) -> JSONResponse:
    return JSONResponse({"result": "error", "message": message})


async def api(request: Request) -> JSONResponse:
    form = await request.form()
    if form.get("action", "").lower() != "addcredit":
        return error("Command Not Found")
    secret = hashlib.sha256(str(form.get("secret", "")).encode()).hexdigest()
    if form.get("identifier") != IDENT or not hmac.compare_digest(secret, SECRET_HASH):
        return JSONResponse({"result": "error", "message": "Authentication Failed"}, 403)
    amount, client = str(form.get("amount", "")), str(form.get("clientid", ""))
    if not AMOUNT.fullmatch(amount) or not client.isdigit():
        return error("Amount must be in decimal format: ### or ###.##")
    whole, _, frac = amount.partition(".")
    cents = int(whole) * 100 + int((frac + "00")[:2])
    now = dt.datetime.now(dt.UTC)
    args = (
        cents,
        int(client),
        now.date().isoformat(),
        str(form.get("description", "")),
        now.isoformat(),
    )
    balance = await state["apply"](*args)
    if balance is None:
        return error("Client ID Not Found")
    return JSONResponse(
        {"result": "success", "newbalance": f"{balance // 100}.{balance % 100:02d}"}
    )


def sqlite_apply(path: str) -> Any:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    lock = os.open(path + "-baseline.lock", os.O_RDWR | os.O_CREAT, 0o600)

    async def apply(cents: int, client: int, date: str, text: str, at: str) -> int | None:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(UPDATE, (cents, client, cents, MAX)).fetchone()
            if row is not None:
                conn.execute(INSERT, (client, row[1], date, text, cents, row[0], at))
            conn.execute("COMMIT")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        return None if row is None else int(row[0])

    return apply


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    if DATABASE.startswith("postgres"):
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            DATABASE, min_size=4, max_size=4, open=False, kwargs={"autocommit": True}
        )
        await pool.open()
        sql = SQL.format(p="%s")

        async def apply(cents: int, client: int, date: str, text: str, at: str) -> int | None:
            async with pool.connection() as conn:
                cur = await conn.execute(sql, (cents, client, cents, MAX, date, text, cents, at))
                row = await cur.fetchone()
            return None if row is None else int(row[0])

        state["apply"] = apply
        yield
        await pool.close()
    else:
        state["apply"] = sqlite_apply(DATABASE.removeprefix("sqlite:///"))
        yield


app = Starlette(routes=[Route("/includes/api.php", api, methods=["POST"])], lifespan=lifespan)
