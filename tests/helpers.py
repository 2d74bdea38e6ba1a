"""Helpers shared by the tests: an in-process ASGI caller, seeding, and a real server process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

import creditbook
from creditbook import errors
from creditbook.http import App
from creditbook.model import Actor

ACTOR = Actor("test")
PASSWORD = "correct horse battery staple"


@dataclass
class Response:
    """A response from the in-process ASGI caller."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def asgi(
    app: App,
    method: str = "POST",
    path: str = "/includes/api.php",
    data: dict[str, Any] | bytes | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    client: str = "127.0.0.1",
    chunk: int = 65536,
    cut: int | None = None,
    raw_headers: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    """Call the ASGI app in-process, as uvicorn would.

    ``chunk`` is the size of each body message; with ``cut`` the client disconnects after that
    many body bytes (the response's status is then 0 when the app sent nothing).
    """
    if isinstance(data, dict):
        body = urlencode(data).encode()
        headers = {"content-type": "application/x-www-form-urlencoded", **(headers or {})}
    else:
        body = data or b""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()] + (
        raw_headers or []
    )
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": raw_headers,
        "client": (client, 50000),
    }
    sent: list[dict[str, Any]] = []
    sendable = body if cut is None else body[:cut]
    chunks = [sendable[i : i + chunk] for i in range(0, len(sendable), chunk)] or [b""]

    async def receive() -> dict[str, Any]:
        if not chunks:
            return {"type": "http.disconnect"}
        piece = chunks.pop(0)
        more = bool(chunks) or cut is not None
        return {"type": "http.request", "body": piece, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    if not sent:
        return Response(0, {}, b"")
    start = sent[0]
    return Response(
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


@dataclass
class Seed:
    """What ``seed`` created."""

    admin_id: int
    identifier: str
    secret: str
    client_id: int


def seed(book: creditbook.Creditbook, username: str = "alice") -> Seed:
    """Create an admin, an API credential and a client."""
    admin_id = book.ledger.add_admin(
        username,
        PASSWORD,
        firstname="Alice",
        lastname="Admin",
        email=f"{username}@example.com",
        actor=ACTOR,
    )
    identifier, secret = book.ledger.add_credential(username, actor=ACTOR)
    client = book.ledger.add_client(
        firstname="Carol", lastname="Client", email=f"carol-{username}@example.com", actor=ACTOR
    )
    return Seed(admin_id, identifier, secret, client.client_id)


def free_port() -> int:
    """Return a free loopback port."""
    from pgserver import free_port as port

    return port()


class Server:
    """A real ``creditbook serve`` process on a free loopback port."""

    def __init__(self, database: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self.url + "/includes/api.php"
        self.args = [
            sys.executable,
            "-m",
            "creditbook",
            "serve",
            "--database",
            database,
            "--port",
            str(self.port),
            *args,
        ]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(
            os.path.dirname(database) if "://" not in database else "/tmp", f"serve-{self.port}.log"
        )

    def start(self, timeout: float = 30.0) -> Server:
        self.log = open(self.log_path, "wb")  # noqa: SIM115 closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.output()}")

    def output(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL the whole server process group (parent and workers)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        if os.path.exists(self.log_path):
            os.remove(self.log_path)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Hammered:
    """The outcome of ``hammer``: acknowledged signed amounts, refusals and failures."""

    acked: list[int]
    refused: list[str]
    failures: list[str]
    balances: list[int]


def hammer(
    urls: list[str],
    auth: dict[str, str],
    client_id: int,
    requests: int,
    connections: int,
    plan: Any,
    timeout: float = 30.0,
) -> Hammered:
    """Send AddCredit from many keep-alive connections; ``plan(i)`` gives (type, cents)."""
    import threading

    out = Hammered([], [], [], [])
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker(n: int) -> None:
        url = urls[n % len(urls)]
        with httpx.Client(timeout=timeout) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                kind, cents = plan(i)
                data = {
                    "action": "AddCredit",
                    **auth,
                    "clientid": str(client_id),
                    "description": f"hammer {i}",
                    "amount": f"{cents // 100}.{cents % 100:02d}",
                    "type": kind,
                }
                try:
                    response = http.post(url, data=data)
                    body = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    with lock:
                        out.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    if response.status_code != 200:
                        out.failures.append(f"{response.status_code} {body}")
                    elif body["result"] == "success":
                        out.acked.append(cents if kind == "add" else -cents)
                        whole, frac = body["newbalance"].split(".")
                        out.balances.append(int(whole) * 100 + int(frac))
                    else:
                        out.refused.append(body["message"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str, message: str) -> None:
    """A server or browser the tests need is not installed: fail under CI, else skip loudly."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(f"SKIPPING {what} TESTS: {message}")


async def settled(futures: list[Any]) -> list[Any]:
    """Await write futures in order: each its value, or its refusal's or failure's class name."""
    outcomes: list[Any] = []
    for future in futures:
        try:
            outcomes.append(await future)
        except (errors.CreditError, errors.StoreError) as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def query_plan(store: Any, sql: str, **params: Any) -> str:
    """SQLite's plan for a statement, its steps joined by `` | `` (indexes named, scans shown)."""
    with store._read() as cur:
        rows = store._run(cur, "EXPLAIN QUERY PLAN " + sql, **params).fetchall()
    return " | ".join(str(row[-1]) for row in rows)
