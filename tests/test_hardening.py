"""Regression tests for the defects an adversarial probe found (one or more per defect).

Transport defects (truncated bodies, parsing cost, slow clients) are tested over a real socket
against ``creditbook serve``; every test runs on both stores.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

import creditbook
from creditbook import errors, security
from creditbook.cli import main
from creditbook.http import App
from creditbook.security import md5_hex
from creditbook.whmcs.params import parse_query
from helpers import ACTOR, PASSWORD, Seed, Server, asgi, seed


def auth(s: Seed) -> dict[str, str]:
    return {"identifier": s.identifier, "secret": s.secret}


def entries(book: creditbook.Creditbook, client_id: int) -> list[int]:
    _, _, rows = book.ledger.get_credits(str(client_id))
    return [e.amount_cents for e in rows]


def raw_request(port: int, head: bytes, body: bytes, how: str) -> bytes:
    """Send headers and a body over a socket, end as ``how`` says; return what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        if how == "half-close":
            sock.shutdown(socket.SHUT_WR)
        elif how == "close":
            time.sleep(0.2)
            return b""
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if how == "whole" and b"\r\n\r\n" in received:
                    head_end = received.index(b"\r\n\r\n")
                    length = int(
                        received[:head_end].lower().split(b"content-length: ")[1].split(b"\r\n")[0]
                    )
                    if len(received) >= head_end + 4 + length:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
        return received


@pytest.fixture
def server(database: str, book: creditbook.Creditbook) -> Iterator[Server]:
    """One ``creditbook serve`` with a short request deadline and a small connection cap."""
    env = {"CREDITBOOK_REQUEST_TIMEOUT": "1", "CREDITBOOK_MAX_CONNECTIONS": "12"}
    with Server(database, env=env) as running:
        yield running


# --- 1. a request that did not arrive whole is never acted on ----------------------------------


def _bodies(s: Seed) -> dict[str, tuple[str, bytes]]:
    fields = {**auth(s), "action": "AddCredit", "clientid": str(s.client_id), "description": "t"}
    form = urlencode({**fields, "amount": "1000"}).encode()
    as_json = json.dumps({**fields, "amount": "1000"}).encode()
    multipart = httpx.Request("POST", "http://x/", data={**fields, "amount": "1000"})
    return {
        "application/x-www-form-urlencoded": ("application/x-www-form-urlencoded", form),
        "application/json": ("application/json", as_json),
        "multipart": (multipart.headers["content-type"], multipart.read()),
    }


@pytest.mark.slow
def test_truncated_bodies_move_no_money(server: Server, book: creditbook.Creditbook) -> None:
    """Cut before Content-Length, a chunked body without its last chunk, a half-close: no entry."""
    s = seed(book)
    for kind, (ctype, body) in _bodies(s).items():
        cut = body[:-2] if kind != "application/json" else body[:-3]
        head = (
            f"POST /includes/api.php HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        for how in ("close", "half-close"):
            assert raw_request(server.port, head, cut, how) == b"", (kind, how)
        chunked_head = (
            f"POST /includes/api.php HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = f"{len(cut):x}\r\n".encode() + cut + b"\r\n"
        for how in ("close", "half-close"):
            assert raw_request(server.port, chunked_head, chunk, how) == b"", (kind, how)
    time.sleep(0.3)
    assert entries(book, s.client_id) == []
    # The same bodies sent whole are applied (the requests themselves were good).
    ctype, body = _bodies(s)["application/x-www-form-urlencoded"]
    head = (
        f"POST /includes/api.php HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    assert b'"newbalance":"1000.00"' in raw_request(server.port, head, body, "whole")


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "application/json"])
def test_disconnect_mid_body_in_process(
    app: App, seeded: Seed, book: creditbook.Creditbook, ctype: str
) -> None:
    """The app sends nothing and changes nothing when the body stops short."""
    fields = {**auth(seeded), "action": "AddCredit", "clientid": seeded.client_id}
    fields |= {"description": "t", "amount": "1000"}
    body = urlencode(fields).encode() if "form" in ctype else json.dumps(fields).encode()
    headers = {"content-type": ctype, "content-length": str(len(body))}
    for cut in (len(body) - 2, len(body) // 2, 0):
        response = asgi(app, data=body, headers=headers, chunk=7, cut=cut)
        assert response.status == 0
    # Fewer bytes than declared, even without a disconnect, is not a request either.
    short = asgi(app, data=body[:-2], headers=headers)
    assert short.status == 0
    assert entries(book, seeded.client_id) == []


# --- 2. parsing is linear, bounded and comes before expensive work -----------------------------


def test_list_appends_are_linear_and_php_numbered() -> None:
    """x[]= appends take the next free index (PHP's rule), in one pass."""
    params = parse_query("a[5]=p&a[]=q&b[]=1&b[]=2&b[x]=3&b[]=4")
    assert params["a"] == {"5": "p", "6": "q"}
    assert params["b"] == {"0": "1", "1": "2", "x": "3", "2": "4"}
    many = parse_query("&".join(["x[]=v"] * 1000))
    assert isinstance(many["x"], dict) and list(many["x"]) == [str(i) for i in range(1000)]


def test_parameter_and_depth_limits(app: App, seeded: Seed) -> None:
    """Over 1,000 parameters or 64 levels: a clear 400 in the requested type, nothing parsed."""
    over = "&".join(["x[]="] * 1001).encode()
    response = asgi(
        app,
        data=over,
        query="responsetype=xml",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 400
    root = ET.fromstring(response.body)
    assert root.findtext("message") == "Too many parameters: the limit is 1000"
    deep = "a" + "[b]" * 64 + "=1"
    response = asgi(
        app, data=deep.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert (response.status, response.json()["message"]) == (
        400,
        "Parameters nested too deeply: the limit is 64 levels",
    )
    ok = asgi(app, data={**auth(seeded), "action": "GetClients", "a" + "[b]" * 63: "1"})
    assert ok.json()["result"] == "success"
    as_json = json.dumps({f"k{i}": "v" for i in range(1001)}).encode()
    response = asgi(app, data=as_json, headers={"content-type": "application/json"})
    assert response.json()["message"] == "Too many parameters: the limit is 1000"
    multipart = httpx.Request("POST", "http://x/", data={f"k{i}": "v" for i in range(1001)})
    response = asgi(
        app, data=multipart.read(), headers={"content-type": multipart.headers["content-type"]}
    )
    assert response.json()["message"] == "Too many parameters: the limit is 1000"


@pytest.mark.slow
def test_a_megabyte_of_list_appends_is_refused_at_once(
    server: Server, book: creditbook.Creditbook
) -> None:
    """24,000 and 200,000 x[]= pairs (the probe's bodies) are refused without parsing.

    The quadratic parser took 12.9 s for the first; the client's 10 s timeout guards the fix.
    """
    s = seed(book)
    for pairs in (24_000, 200_000):
        body = "&".join(["x[]="] * pairs)
        response = httpx.post(
            server.api,
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert response.status_code == 400
        assert response.json()["message"] == "Too many parameters: the limit is 1000"
    ok = httpx.post(server.api, data={**auth(s), "action": "GetClients"}, timeout=10)
    assert ok.json()["result"] == "success"


# --- 3. raw UTF-8 in form bodies ----------------------------------------------------------------


def test_raw_utf8_form_body(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """Raw (not percent-encoded) UTF-8 is read as UTF-8; invalid bytes become U+FFFD."""
    prefix = urlencode({**auth(seeded), "action": "AddCredit", "clientid": seeded.client_id})
    for raw, stored in (
        ("café €".encode(), "café €"),
        (b"bad \xff\xfe end", "bad \ufffd\ufffd end"),
    ):
        body = prefix.encode() + b"&amount=1&description=" + raw
        response = asgi(
            app, data=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.json()["result"] == "success"
        _, _, rows = book.ledger.get_credits(str(seeded.client_id))
        assert list(rows)[-1].description == stored


# --- 4. X-Forwarded-For behind a trusted proxy -------------------------------------------------


def test_forwarded_hops_with_ports_and_unreadable_hops(
    app: App, seeded: Seed, database: str
) -> None:
    """Ports are read; an unreadable hop is an unknown client, refused, and bans nobody."""

    def call(forwarded: str, **extra: str) -> tuple[int, str]:
        data = {**auth(seeded), "action": "GetAdminDetails", **extra}
        response = asgi(app, data=data, headers={"x-forwarded-for": forwarded})
        return response.status, response.json().get("message", "ok")

    assert main(["config", "set", "trusted_proxies", "127.0.0.1", "--database", database]) == 0
    assert call("8.8.8.8:1234") == (403, "Invalid IP 8.8.8.8")
    assert call("[2001:db8::1]:443") == (403, "Invalid IP 2001:db8::1")
    main(["ip", "allow", "8.8.8.8", "--database", database])
    main(["ip", "allow", "2001:db8::/32", "--database", database])
    assert call("8.8.8.8:1234") == (200, "ok")
    assert call("[2001:db8::1]:443, 127.0.0.1") == (200, "ok")
    assert call("2001:db8::1") == (200, "ok")
    for hop in ("unknown", "_hidden", "", "8.8.8.8:99999", "[::1", "8.8.8.8, garbage"):
        assert call(hop) == (403, "Invalid IP unknown"), hop
    for _ in range(5):
        assert call("_hidden", secret="wrong")[0] == 403
    # The proxy's own address was never charged with those failures.
    assert asgi(app, data={**auth(seeded), "action": "GetAdminDetails"}).status == 200
    assert call("8.8.8.8") == (200, "ok")


@pytest.mark.parametrize("broad", ["0.0.0.0/0", "::/0", "0.0.0.0/1", "127.0.0.1,::/8"])
def test_trusting_every_address_as_a_proxy_is_refused(
    database: str, broad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """trusted_proxies 0.0.0.0/0 (or ::/0, or any range broader than /8 or /16) is refused."""
    assert main(["config", "set", "trusted_proxies", broad, "--database", database]) == 1
    assert "too broad for trusted proxies" in capsys.readouterr().err


# --- 5. admin logins: same work for every username, off the event loop -----------------------


def test_legacy_login_hashes_off_the_loop_for_known_and_unknown_users(
    app: App, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong password costs one slow hash on the hashing thread, whether the user exists."""
    threads: list[str] = []
    real = security._scrypt

    def spy(md5_form: str, salt: bytes) -> bytes:
        threads.append(threading.current_thread().name)
        return real(md5_form, salt)

    security.dummy_hash()  # created once per process, before the spy counts
    monkeypatch.setattr(security, "_scrypt", spy)
    wrong = md5_hex("not the password")
    for username in ("alice", "nobody-here"):
        response = asgi(
            app, data={"action": "GetAdminDetails", "username": username, "password": wrong}
        )
        assert (response.status, response.json()["message"]) == (403, "Authentication Failed")
    assert len(threads) == 2 and all(t.startswith("creditbook-hash") for t in threads)
    right = asgi(
        app, data={"action": "GetAdminDetails", "username": "alice", "password": md5_hex(PASSWORD)}
    )
    assert right.json()["result"] == "success"
    again = asgi(
        app, data={"action": "GetAdminDetails", "username": "alice", "password": md5_hex(PASSWORD)}
    )
    assert again.json()["result"] == "success" and len(threads) == 3  # the success is cached


def test_login_flood_is_bounded(app: App, seeded: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the hashing queue full, a login is refused at once (503) and not counted as failed."""
    monkeypatch.setattr(security, "MAX_PENDING", 0)
    data = {"action": "GetAdminDetails", "username": "alice", "password": md5_hex("x")}
    response = asgi(app, data=data)
    assert (response.status, response.json()["message"]) == (
        503,
        "Too many logins in progress, try again",
    )


def test_disabled_admin_login(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """A disabled admin with the right password is told so (after the same slow check)."""
    book.ledger.set_admin_disabled("alice", True, actor=ACTOR)
    data = {"action": "GetAdminDetails", "username": "alice", "password": md5_hex(PASSWORD)}
    assert asgi(app, data=data).json()["message"] == "Administrator Account Disabled"


# --- 6 and 7. XML and NVP round-trips ----------------------------------------------------------


def test_cr_survives_xml(app: App, seeded: Seed) -> None:
    """A description "a\\r\\nb" is sent as a&#13;\\nb and parses back exactly."""
    data = {**auth(seeded), "clientid": seeded.client_id}
    asgi(app, data={**data, "action": "AddCredit", "amount": "1", "description": "a\r\nb"})
    body = asgi(app, data={**data, "action": "GetCredits", "responsetype": "xml"}).body
    assert b"a&#13;\nb" in body
    assert ET.fromstring(body).findtext("credits/credit/description") == "a\r\nb"


@pytest.mark.parametrize("company", ["p+q", "a b", "x;y=z", "50% & more", "é+ü"])
def test_nvp_values_round_trip_with_form_decoding(
    app: App, seeded: Seed, book: creditbook.Creditbook, company: str
) -> None:
    """NVP values decode back exactly with standard form decoding."""
    client = book.ledger.add_client(
        firstname="N", lastname="V", email="nvp@example.com", companyname=company, actor=ACTOR
    )
    data = {**auth(seeded), "action": "GetClientsDetails", "clientid": client.client_id}
    text = asgi(app, data={**data, "responsetype": "nvp"}).text
    pairs = dict(parse_qsl(text.replace(";", "&"), keep_blank_values=True))
    assert pairs["companyname"] == company


# --- 8. JSON bodies do not coerce types --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", True, "Amount must be in decimal format: ### or ###.##"),
        ("amount", False, "Amount must be in decimal format: ### or ###.##"),
        ("amount", [1], "Amount must be in decimal format: ### or ###.##"),
        ("description", {"a": 1}, "The description contains characters that are not allowed"),
        ("description", ["x"], "The description contains characters that are not allowed"),
        ("clientid", True, "Client ID Not Found"),
        ("type", {}, "Type can only be add or remove"),
        ("date", True, "Date Format is not Valid"),
    ],
)
def test_json_non_scalars_are_refused(
    app: App, seeded: Seed, book: creditbook.Creditbook, field: str, value: Any, message: str
) -> None:
    """A boolean, object or array where a scalar belongs gets the field's usual message."""
    fields: dict[str, Any] = {**auth(seeded), "action": "AddCredit", "clientid": seeded.client_id}
    fields |= {"amount": "5.5", "description": "d", field: value}
    response = asgi(
        app, data=json.dumps(fields).encode(), headers={"content-type": "application/json"}
    )
    assert response.json() == {"result": "error", "message": message}
    assert entries(book, seeded.client_id) == []


# --- 9. the CLI: one clear line and exit status 2 for a bad value ------------------------------


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["credit", "add", "1", "5", "--description", "x"], {"TIMEZONE": "Mars/Base"}, "timezone"),
        (["log", "--limit", "99999999999999999999999"], {}, "--limit"),
        (["serve", "--port", "99999"], {}, "--port"),
        (["serve", "--port", "-1"], {}, "--port"),
        (["serve", "--workers", "0"], {}, "--workers"),
        (["client", "list", "--offset", "-5"], {}, "--offset"),
        (["client", "list"], {"PORT": "eighty"}, "CREDITBOOK_PORT"),
        (["serve"], {"PORT": "99999"}, "port"),
    ],
)
def test_cli_bad_values(
    database: str,
    args: list[str],
    env: dict[str, str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad flags and environment values: exit 2, one line on stderr, no traceback."""
    for name, value in env.items():
        monkeypatch.setenv(f"CREDITBOOK_{name}", value)
    try:
        status = main([*args, "--database", database])
    except SystemExit as exc:  # argparse exits
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and expected in err and "Traceback" not in err


def test_client_list_keeps_one_row_per_client(
    book: creditbook.Creditbook, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name holding a newline is shown escaped; the table keeps one line per client."""
    book.ledger.add_client(
        firstname="Line\nBreak", lastname="Tab\there", email="nl@example.com", actor=ACTOR
    )
    capsys.readouterr()
    assert main(["client", "list", "--database", database]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "Line\\nBreak Tab\\there" in lines[1]


# --- 10. slow clients --------------------------------------------------------------------------


@pytest.mark.slow
def test_slow_clients_are_cut_off_and_capped(server: Server, book: creditbook.Creditbook) -> None:
    """Stalled headers and trickled bodies are closed after the deadline, never acted on;
    connections past the cap get a 503 envelope; a normal client is served throughout."""
    s = seed(book)
    body = urlencode(
        {
            **auth(s),
            "action": "AddCredit",
            "clientid": s.client_id,
            "amount": "7",
            "description": "t",
        }
    ).encode()
    head = (
        "POST /includes/api.php HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    closed: list[float] = []
    lock = threading.Lock()

    def trickle(data: bytes) -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            try:
                for i in range(len(data)):
                    sock.sendall(data[i : i + 1])
                    time.sleep(0.25)
                    if i > 40:
                        break
                sock.settimeout(5)
                sock.recv(1024)
            except OSError:
                pass
        with lock:
            closed.append(time.monotonic() - started)

    slow = [threading.Thread(target=trickle, args=(head,)) for _ in range(4)]
    body_slow = threading.Thread(target=lambda: _slow_body(server.port, head, body, closed, lock))
    for t in [*slow, body_slow]:
        t.start()
    time.sleep(0.3)
    ok = httpx.post(server.api, data={**auth(s), "action": "GetClients"}, timeout=5)
    assert ok.json()["result"] == "success"
    for t in [*slow, body_slow]:
        t.join()
    assert len(closed) == 5 and max(closed) < 5  # each cut off near the 1 s deadline
    assert entries(book, s.client_id) == []
    # The cap: 12 connections per worker; the 13th is answered 503 and closed.
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(12)]
    try:
        time.sleep(0.1)
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        answer = extra.recv(4096)
        extra.close()
    finally:
        for sock in held:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 503")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"] == (
        "Too many connections, try again later"
    )


def _slow_body(
    port: int, head: bytes, body: bytes, closed: list[float], lock: threading.Lock
) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body[:10])
        try:
            for i in range(10, len(body) - 1):
                sock.sendall(body[i : i + 1])
                time.sleep(0.25)
        except OSError:
            pass
    with lock:
        closed.append(time.monotonic() - started)


# --- while the database cannot be written, bans still work -------------------------------------


def test_bans_work_while_failures_cannot_be_recorded(
    app: App, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failures the database refuses are counted in memory: the third bans the address."""

    def refuse(*args: object) -> None:
        raise errors.StoreError("disk full")

    monkeypatch.setattr(app.store, "record_auth_failure", refuse)
    wrong = {"identifier": seeded.identifier, "secret": "wrong", "action": "GetAdminDetails"}
    for _ in range(3):
        assert asgi(app, data=wrong).json()["message"] == "Authentication Failed"
    right = asgi(app, data={**auth(seeded), "action": "GetAdminDetails"})
    assert (right.status, right.json()["message"]) == (403, "IP Banned")
    other = asgi(app, data={**auth(seeded), "action": "GetAdminDetails"}, client="::1")
    assert other.status == 200
