"""The performance issue's prototype, rebuilt to measure it beside Creditbook on the same machine.

What the issue describes: raw ASGI under ``uvicorn --workers 2``, SQLite in WAL mode with
``synchronous=FULL``, writers serialised by ``flock``, a hashed-secret check, one ``UPDATE
clients ... RETURNING`` and one ``INSERT`` per credit, writes queued on the event loop and
committed together by a callback scheduled with ``loop.call_soon``, futures resolved on the loop
after the commit. Same schema, credential and wire format as ``baseline.py``; none of
Creditbook's access rules, idempotency, hash chain, activity log, access log or metrics.

Run: BASELINE_DATABASE=... BASELINE_IDENT=... BASELINE_SECRET=... \\
     uvicorn prototype:app --workers 2 --no-access-log      (from bench/)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import sqlite3
from typing import Any
from urllib.parse import parse_qsl

from baseline import AMOUNT, DATABASE, IDENT, INSERT, MAX, SECRET_HASH, UPDATE

PATH = DATABASE.removeprefix("sqlite:///")
Pending = tuple[tuple[int, int, str, str, str], "asyncio.Future[int | None]"]
pending: list[Pending] = []
state: dict[str, Any] = {}


def open_database() -> None:
    """One connection and the writers' lock file per worker."""
    conn = sqlite3.connect(PATH, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    state["conn"] = conn
    state["lock"] = os.open(PATH + "-baseline.lock", os.O_RDWR | os.O_CREAT, 0o600)


def flush() -> None:
    """Commit every credit queued since the last flush in one transaction, then resolve them."""
    batch = pending[:]
    pending.clear()
    conn, lock = state["conn"], state["lock"]
    results: list[int | None] = []
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for (cents, client, date, text, at), _ in batch:
            row = conn.execute(UPDATE, (cents, client, cents, MAX)).fetchone()
            if row is not None:
                conn.execute(INSERT, (client, row[1], date, text, cents, row[0], at))
            results.append(None if row is None else int(row[0]))
        conn.execute("COMMIT")
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
    for (_, future), balance in zip(batch, results, strict=True):
        future.set_result(balance)


async def credit(form: dict[str, str]) -> tuple[int, dict[str, str]]:
    """The reply's status and JSON for one AddCredit form."""
    if form.get("action", "").lower() != "addcredit":
        return 200, {"result": "error", "message": "Command Not Found"}
    secret = hashlib.sha256(form.get("secret", "").encode()).hexdigest()
    if form.get("identifier") != IDENT or not hmac.compare_digest(secret, SECRET_HASH):
        return 403, {"result": "error", "message": "Authentication Failed"}
    amount, client = form.get("amount", ""), form.get("clientid", "")
    if not AMOUNT.fullmatch(amount) or not client.isdigit():
        return 200, {"result": "error", "message": "Amount must be in decimal format"}
    whole, _, frac = amount.partition(".")
    cents = int(whole) * 100 + int((frac + "00")[:2])
    now = dt.datetime.now(dt.UTC)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int | None] = loop.create_future()
    text = form.get("description", "")
    args = (cents, int(client), now.date().isoformat(), text, now.isoformat())
    pending.append((args, future))
    if len(pending) == 1:
        loop.call_soon(flush)
    balance = await future
    if balance is None:
        return 200, {"result": "error", "message": "Client ID Not Found"}
    return 200, {"result": "success", "newbalance": f"{balance // 100}.{balance % 100:02d}"}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI application: AddCredit on any path."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            open_database()
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status, reply = await credit(dict(parse_qsl(body.decode("utf-8", "replace"))))
    payload = json.dumps(reply).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
