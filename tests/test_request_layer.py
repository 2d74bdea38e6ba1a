"""The request layer against a real server: pipelining, bounded heads, connection caps, and
the client address behind proxies (the hardening issue's items 5, 6, 7 and 9)."""

from __future__ import annotations

import asyncio
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

import creditbook
from creditbook.config import Settings
from creditbook.http import App, create_app
from helpers import ACTOR, Seed, Server, asgi, seed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Seed, str]]:
    """One server for the module, with a few connections allowed per address."""
    database = f"sqlite:///{tmp_path_factory.mktemp('layer')}/layer.db"
    with creditbook.open(database) as book:
        s = seed(book)
    env = {"CREDITBOOK_MAX_CONNECTIONS_PER_ADDRESS": "20", "CREDITBOOK_ACCESS_LOG": "0"}
    with Server(database, env=env) as server:
        yield server, s, database


def _request(s: Seed, amount: str = "1.00", key: str = "") -> bytes:
    fields = {
        "action": "AddCredit",
        "identifier": s.identifier,
        "secret": s.secret,
        "clientid": s.client_id,
        "amount": amount,
        "description": "pipelined",
        **({"idempotencykey": key} if key else {}),
    }
    body = urlencode(fields).encode()
    return (
        b"POST /includes/api.php HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def _exchange(port: int, data: bytes, source: str = "127.0.0.1", timeout: float = 10.0) -> bytes:
    """Send bytes on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout, (source, 0)) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _statuses(raw: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", raw)]


def _balance(database: str, client_id: int) -> str:
    with creditbook.open(database) as book:
        return str(book.local_api("GetClientsDetails", {"clientid": client_id})["credit"])


# --- 5. every committed request gets its reply ----------------------------------------------


def test_item5_malformed_bytes_after_a_credit_wait_for_its_reply(
    served: tuple[Server, Seed, str],
) -> None:
    """Two AddCredits pipelined with garbage after them: each credit is answered 200 with its
    new balance, then the garbage gets its 400 and the connection closes."""
    server, s, database = served
    before = _balance(database, s.client_id)
    raw = _exchange(server.port, _request(s) + _request(s) + b"GARBAGE \x01\x02\r\n\r\n")
    assert _statuses(raw) == [200, 200, 400]
    assert raw.count(b'"result":"success"') == 2
    after = _balance(database, s.client_id)
    assert float(after) - float(before) == pytest.approx(2.0)


# --- 6. a bounded, linear request head --------------------------------------------------------


def test_item6_long_request_lines_and_headers_are_refused(served: tuple[Server, Seed, str]) -> None:
    """A request line over 8 KiB gets 414; headers over 16 KiB in all get 431."""
    server, _, _ = served
    line = b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _statuses(_exchange(server.port, line)) == [414]
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"b" * 17000 + b"\r\n\r\n"
    assert _statuses(_exchange(server.port, head)) == [431]
    many = b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1234567890\r\n" % i for i in range(1200))
    assert _statuses(_exchange(server.port, many + b"\r\n")) == [431]
    fine = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "
        + b"c" * 8000
        + b"\r\nConnection: close\r\n\r\n"
    )
    assert _statuses(_exchange(server.port, fine)) == [200]


def test_item6_streamed_endless_headers_leave_the_loop_responsive(
    served: tuple[Server, Seed, str],
) -> None:
    """Four connections streaming an endless header a few bytes at a time are cut off at the
    limit (431), and meanwhile /healthz from another client answers at once (the issue's goal
    is under 50 ms; bench/header_flood.py measures it, this test allows ten times that)."""
    server, _, _ = served
    outcomes: list[list[int]] = []

    def stream() -> None:
        with socket.create_connection(("127.0.0.1", server.port), 20) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
            sent = 0
            try:
                while sent < 200_000:
                    sock.sendall(b"x" * 16)
                    sent += 16
                    time.sleep(0.0005)
            except OSError:
                pass  # the server closed it
            chunks = []
            try:
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except OSError:
                pass
            outcomes.append(_statuses(b"".join(chunks)))

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for t in threads:
        t.start()
    times = []
    with httpx.Client(timeout=5) as http:
        while any(t.is_alive() for t in threads) or not times:
            started = time.perf_counter()
            assert http.get(server.url + "/healthz").status_code == 200
            times.append(time.perf_counter() - started)
            time.sleep(0.02)
    for t in threads:
        t.join()
    assert outcomes == [[431]] * 4
    assert statistics.median(times) < 0.5


# --- 7. one address cannot take every connection ---------------------------------------------


def test_item7_one_address_holding_connections_leaves_room_for_others(
    served: tuple[Server, Seed, str],
) -> None:
    """20 idle sockets from 127.0.0.1 (its limit here) and a 21st is refused at once with 503;
    a request from 127.0.0.2 still succeeds."""
    server, _, _ = served
    held = []
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", server.port), 5, ("127.0.0.1", 0))
            held.append(sock)
        time.sleep(0.2)
        refused = _exchange(server.port, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert _statuses(refused) == [503]
        assert b"Too many connections from your address" in refused
        other = _exchange(
            server.port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", source="127.0.0.2"
        )
        assert _statuses(other) == [200]
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the server counts the closed sockets out as it reads their ends
        again = _exchange(server.port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        if _statuses(again) == [200] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert _statuses(again) == [200]


def test_item7_behind_a_proxy_the_cap_follows_the_forwarded_address(
    sqlite_database: str,
) -> None:
    """Through a trusted proxy, requests in progress are capped per forwarded address: a third
    concurrent request of one client is refused while another client's goes through."""
    with creditbook.open(sqlite_database) as book:
        s = seed(book)
        book.ledger.store.set_setting("trusted_proxies", "10.0.0.5", ACTOR, book.ledger.now())
        book.ledger.store.allow_ip("0.0.0.0/0", ACTOR, book.ledger.now())
    settings = Settings(
        database=sqlite_database, access_log=False, max_connections_per_address=2, webhooks=False
    )
    app = create_app(settings)
    body = urlencode(
        {"action": "GetClients", "identifier": s.identifier, "secret": s.secret}
    ).encode()

    async def scenario() -> list[int]:
        app.api.policy.refresh()
        release = asyncio.Event()

        async def call(client: str, wait: bool) -> int:
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                if wait:
                    await release.wait()
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "method": "POST",
                "path": "/includes/api.php",
                "query_string": b"",
                "headers": [
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-forwarded-for", client.encode()),
                ],
                "client": ("10.0.0.5", 40000),
            }
            await app(scope, receive, send)
            return int(sent[0]["status"])

        slow = [asyncio.create_task(call("203.0.113.9", True)) for _ in range(2)]
        await asyncio.sleep(0.05)
        third = await call("203.0.113.9", False)
        other = await call("198.51.100.7", False)
        release.set()
        return [third, other, *(await asyncio.gather(*slow))]

    try:
        assert asyncio.run(scenario()) == [503, 200, 200, 200]
    finally:
        app.store.close()


# --- 9. one reading of the client address ------------------------------------------------------


def test_item9_two_forwarded_lines_read_the_same_on_every_transport(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """Behind a proxy that appends its own X-Forwarded-For line, a client's forged first line
    is not believed, by the API or the console (the right-most untrusted hop is)."""
    book.ledger.store.set_setting("trusted_proxies", "10.0.0.5", ACTOR, book.ledger.now())
    policy = app.api.policy
    policy.refresh()
    scope = {
        "client": ("10.0.0.5", 1),
        "headers": [(b"x-forwarded-for", b"127.0.0.1"), (b"x-forwarded-for", b"198.51.100.7")],
    }
    assert policy.address_of(scope) == "198.51.100.7"
    reply = asgi(
        app,
        data={"action": "GetClients", "identifier": seeded.identifier, "secret": seeded.secret},
        client="10.0.0.5",
        headers={"x-forwarded-for": "127.0.0.1"},
        raw_headers=[(b"x-forwarded-for", b"198.51.100.7")],
    )
    assert reply.json() == {"result": "error", "message": "Invalid IP 198.51.100.7"}
