"""The web console over HTTP (no browser): sessions, CSRF, headers, escaping, changes, exports."""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from markupsafe import escape

import creditbook
from console_client import ConsoleClient, Page
from creditbook.config import Settings
from creditbook.http import App, create_app
from creditbook.model import Actor
from creditbook.rules import fold

PASSWORD = "correct horse battery"
ACTOR = Actor("test")


@dataclass
class Desk:
    """A console on a fresh database: an owner, a manager, a viewer and one client."""

    app: App
    book: creditbook.Creditbook
    client_id: int

    def client(self, ip: str = "127.0.0.1") -> ConsoleClient:
        return ConsoleClient(self.app, ip=ip)

    def logged_in(self, username: str = "owner", ip: str = "127.0.0.1") -> ConsoleClient:
        browser = self.client(ip)
        page = browser.login(username, PASSWORD)
        assert page.status == 303, page.text
        return browser

    def balance(self) -> str:
        return self.book.ledger.get_client(str(self.client_id)).balance_cents.__str__()

    def cents(self) -> int:
        return self.book.ledger.get_client(str(self.client_id)).balance_cents

    def credit(self, amount: str, description: str = "seed", **kw: str) -> None:
        self.book.ledger.add_credit(
            clientid=str(self.client_id), amount=amount, description=description, actor=ACTOR, **kw
        )


@pytest.fixture
def desk(database: str) -> Iterator[Desk]:
    book = creditbook.open(database)
    for name, level in (("owner", "owner"), ("manager", "manager"), ("viewer", "viewer")):
        book.ledger.add_admin(name, PASSWORD, access=level, actor=ACTOR)
    client = book.ledger.add_client(
        firstname="Ann", lastname="Lee", email="ann@example.com", companyname="Lee Ltd", actor=ACTOR
    )
    app = create_app(Settings(database=database, access_log=False, pg_listen=False, webhooks=False))
    try:
        yield Desk(app, book, client.client_id)
    finally:
        app.store.close()
        book.close()


def page_of(desk: Desk, browser: ConsoleClient) -> Page:
    page = browser.get(f"/admin/clients/{desk.client_id}")
    assert page.status == 200, page.text
    return page


def shown_balance(page: Page) -> str:
    found = re.search(r'data-testid="balance">([^<]*)<', page.text)
    assert found
    return found.group(1)


# --- logging in -------------------------------------------------------------------------------


def test_admin_redirects_and_login_required(desk: Desk) -> None:
    browser = desk.client()
    assert browser.get("/admin").status == 308
    page = browser.get("/admin/clients?q=ann")
    assert page.status == 303
    assert page.location == "/admin/login?next=%2Fadmin%2Fclients%3Fq%3Dann"
    login = browser.get("/admin/login")
    assert login.status == 200
    assert '<label for="username">Username</label>' in login.text
    # after logging in, the browser goes where it was going (a console path only)
    done = browser.post(
        "/admin/login",
        {"username": "owner", "password": PASSWORD, "next": "/admin/clients?q=ann"},
    )
    assert done.location == "/admin/clients?q=ann"
    other = desk.client()
    evil = other.post(
        "/admin/login",
        {"username": "owner", "password": PASSWORD, "next": "https://evil.example/admin/"},
    )
    assert evil.location == "/admin/"


def test_wrong_username_and_wrong_password_read_the_same(desk: Desk) -> None:
    wrong_user = desk.client("10.0.0.1").login("nobody", PASSWORD)
    wrong_pass = desk.client("10.0.0.2").login("owner", "not the password")
    assert wrong_user.status == wrong_pass.status == 403
    assert wrong_user.alerts() == wrong_pass.alerts() == ["Wrong username or password"]
    assert "creditbook_session" not in wrong_pass.headers.get("set-cookie", "")


def test_disabled_admin_cannot_log_in_and_disabling_ends_sessions(desk: Desk) -> None:
    browser = desk.logged_in("manager")
    assert browser.get("/admin/").status == 200
    desk.book.ledger.set_admin_disabled("manager", True, actor=ACTOR)
    assert browser.get("/admin/").status == 303  # the session ended at once
    page = desk.client().login("manager", PASSWORD)
    assert page.status == 403
    assert page.alerts() == ["Wrong username or password"]  # as a wrong password: item 13


def test_failed_logins_are_throttled_per_username_at_an_address(desk: Desk) -> None:
    """Item 11: three typos ban that username at that address, with a warning before the last;
    a colleague behind the same address, and the same username elsewhere, still log in."""
    attacker = desk.client("10.9.9.9")
    alerts = [attacker.login("owner", "guess").alerts()[0] for _ in range(3)]
    assert alerts[0] == "Wrong username or password"
    assert alerts[1] == (
        "Wrong username or password. One more failed login blocks logins for 15 minutes."
    )
    assert alerts[2].startswith("Wrong username or password. Logins are now blocked for 15")
    # the right password from that address is refused now, and the form says when to retry
    page = attacker.login("owner", PASSWORD)
    assert page.status == 403
    assert page.alerts()[0].startswith("Too many failed logins: try again after ")
    assert desk.client("10.9.9.9").login("manager", PASSWORD).status == 303
    assert desk.client("10.1.1.1").login("owner", PASSWORD).status == 303
    # console failures do not ban the address from the API
    assert not desk.app.api.policy.is_banned("10.9.9.9")


def test_session_id_rotates_at_login_and_logout_ends_it(desk: Desk) -> None:
    browser = desk.logged_in("owner")
    first = browser.cookies["creditbook_session"]
    browser.login("owner", PASSWORD)
    second = browser.cookies["creditbook_session"]
    assert first != second
    stale = desk.client()
    stale.cookies["creditbook_session"] = first
    assert stale.get("/admin/").status == 303  # the old session ended
    page = browser.get("/admin/")
    logout = browser.post("/admin/logout", {"csrf": page.csrf()})
    assert logout.status == 303
    assert (
        "Max-Age=0" in logout.headers["set-cookie"]
        or "max-age=0" in logout.headers["set-cookie"].lower()
    )
    replay = desk.client()
    replay.cookies["creditbook_session"] = second
    assert replay.get("/admin/").status == 303


def test_cookie_flags(desk: Desk) -> None:
    page = desk.client().login("owner", PASSWORD)
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie
    secure = desk.client().request(
        "POST",
        "/admin/login",
        f"username=owner&password={PASSWORD.replace(' ', '+')}".encode(),
        {"content-type": "application/x-www-form-urlencoded"},
        scheme="https",
    )
    assert "Secure" in secure.headers["set-cookie"]
    # X-Forwarded-Proto counts only from a trusted proxy
    body = f"username=owner&password={PASSWORD.replace(' ', '+')}".encode()
    headers = {"content-type": "application/x-www-form-urlencoded", "x-forwarded-proto": "https"}
    untrusted = desk.client("10.5.5.5").request("POST", "/admin/login", body, headers)
    assert "Secure" not in untrusted.headers["set-cookie"]
    desk.book.ledger.store.set_setting("trusted_proxies", "10.5.5.5", ACTOR, "now")
    trusted = desk.client("10.5.5.5").request("POST", "/admin/login", body, headers)
    assert "Secure" in trusted.headers["set-cookie"]


def test_sessions_expire_when_idle_and_after_the_absolute_limit(desk: Desk) -> None:
    browser = desk.logged_in("owner")
    assert desk.app.console is not None
    sessions = desk.app.console.web.sessions
    start = time.time()
    sessions.clock = lambda: start + 29 * 60
    assert browser.get("/admin/").status == 200  # 29 minutes idle: still on (and touched)
    sessions.clock = lambda: start + 29 * 60 + 31 * 60
    assert browser.get("/admin/").status == 303  # 31 minutes idle: ended
    # the absolute limit, with requests every few minutes
    sessions.clock = time.time
    browser = desk.logged_in("owner")
    start = time.time()
    for minutes in range(20, 12 * 60, 20):
        sessions.clock = lambda m=minutes: start + m * 60  # type: ignore[misc]
        assert browser.get("/admin/").status == 200, minutes
    sessions.clock = lambda: start + 12 * 3600 + 60
    assert browser.get("/admin/").status == 303
    # both are settings shared by every process
    sessions.clock = time.time
    desk.book.ledger.store.set_setting("console_idle_minutes", "5", ACTOR, "now")
    browser = desk.logged_in("owner")
    start = time.time()
    sessions.clock = lambda: start + 6 * 60
    assert browser.get("/admin/").status == 303


# --- CSRF, origins, headers ---------------------------------------------------------------------


def test_posts_need_the_sessions_csrf_token(desk: Desk) -> None:
    desk.credit("10.00")
    browser = desk.logged_in("manager")
    path = f"/admin/clients/{desk.client_id}/credit"
    form = {"type": "add", "amount": "5.00", "description": "x"}
    assert browser.post(path, form).status == 403
    assert browser.post(path, {**form, "csrf": "0" * 64}).status == 403
    other = desk.logged_in("owner")
    foreign = other.get("/admin/").csrf()
    assert browser.post(path, {**form, "csrf": foreign}).status == 403  # another session's
    assert desk.cents() == 1000
    ok = browser.post(path, {**form, "csrf": page_of(desk, browser).csrf()})
    assert ok.status == 303
    assert desk.cents() == 1500


def test_cross_site_requests_are_refused(desk: Desk) -> None:
    browser = desk.logged_in("manager")
    token = page_of(desk, browser).csrf()
    path = f"/admin/clients/{desk.client_id}/credit"
    form = {"type": "add", "amount": "5.00", "description": "x", "csrf": token}
    for headers in (
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "null"},
    ):
        page = browser.post(path, form, headers)
        assert page.status == 403, headers
        assert "Cross-site requests are refused" in page.text
    login = desk.client().post(
        "/admin/login",
        {"username": "owner", "password": PASSWORD},
        {"origin": "https://evil.example"},
    )
    assert login.status == 403
    assert desk.cents() == 0
    same = browser.post(
        path, form, {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    )
    assert same.status == 303


def test_security_headers_on_every_console_response(desk: Desk) -> None:
    browser = desk.client()
    responses = [browser.get("/admin/login"), browser.get("/admin/"), browser.get("/admin/nope")]
    browser = desk.logged_in("owner")
    responses += [
        browser.get(p)
        for p in (
            "/admin/",
            "/admin/clients",
            f"/admin/clients/{desk.client_id}",
            f"/admin/clients/{desk.client_id}/export.csv",
            "/admin/activity",
            "/admin/access",
            "/admin/bulk",
            "/admin/static/console.css",
            "/admin/clients/999999",
        )
    ]
    for page in responses:
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "form-action 'self'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
    for page in responses[3:-2]:
        assert page.headers["cache-control"] == "no-store"
    assert "style=" not in "".join(p.text for p in responses)  # the CSP forbids inline styles
    assert "<script" not in "".join(p.text for p in responses)


def test_hostile_text_is_escaped(desk: Desk) -> None:
    hostile = "<script>alert(1)</script> \"quoted\" 'single' <img src=x onerror=alert(2)>"
    desk.credit("10.00", hostile)
    desk.book.ledger.add_client(
        firstname='"><script>alert(3)</script>',
        lastname="<b>Bold</b>",
        email="x@example.com",
        actor=ACTOR,
    )
    browser = desk.logged_in("owner")
    pages = [
        page_of(desk, browser),
        browser.get("/admin/"),
        browser.get("/admin/clients?q=%3Cscript%3E"),
        browser.get("/admin/clients"),
        browser.get("/admin/activity"),
    ]
    for page in pages:
        assert "<script>" not in page.text
        assert "<img src=x" not in page.text
        assert "<b>Bold" not in page.text
    assert str(escape(hostile)) in pages[0].text
    assert 'value="&lt;script&gt;"' in pages[2].text


# --- credit, reversal, permissions ------------------------------------------------------------


def _form(page: Page) -> dict[str, str]:
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None
    return {"csrf": page.csrf(), "token": token.group(1)}


def test_add_and_remove_credit_through_the_form(desk: Desk) -> None:
    """The form says what it saved, once; a double click applies once; refusals say what to do
    and mark the field."""
    browser = desk.logged_in("manager")
    path = f"/admin/clients/{desk.client_id}/credit"
    first = _form(page_of(desk, browser))
    form = {**first, "type": "add", "amount": "25.50", "description": "Goodwill"}
    done = browser.post(path, {**form, "date": "2026-01-31"})
    assert done.location == f"/admin/clients/{desk.client_id}"
    page = page_of(desk, browser)
    assert shown_balance(page) == "25.50"
    assert "Added 25.50 USD to Ann Lee: the balance is now 25.50 USD." in page.text
    assert "Added 25.50" not in page_of(desk, browser).text  # said once
    assert "Goodwill" in page.text and "2026-01-31" in page.text and "console:manager" in page.text
    again = browser.post(path, {**form, "date": "2026-01-31"})  # the same form sent twice
    assert again.status == 303 and desk.cents() == 2550
    assert "already sent: the change was saved once" in page_of(desk, browser).text
    fresh = _form(page_of(desk, browser))
    form = {**fresh, "type": "add", "amount": "25.50", "description": "Goodwill"}
    refused = browser.post(path, {**form, "type": "remove", "amount": "100.00"})
    assert refused.status == 409
    assert refused.alerts() == ["Amount exceeds customer credit balance: 25.50 USD is available"]
    assert 'value="100.00"' in refused.text  # the form keeps what was typed
    assert re.search(r'id="amount"[^>]*aria-invalid="true"[^>]*autofocus', refused.text)
    for bad, message, field in (
        ({"amount": ""}, "No Amount Provided", "amount"),
        ({"amount": "1.234"}, "Amount must be in decimal format: ### or ###.##", "amount"),
        (
            {"amount": "12,50"},
            "Amount must be in decimal format: ### or ###.##: use a dot for decimals: 12.50",
            "amount",
        ),
        ({"description": ""}, "No Description Provided", "description"),
        ({"date": "31/01/2026"}, "Date Format is not Valid", "date"),
        ({"type": "steal"}, "Type can only be add or remove", ""),
    ):
        page = browser.post(path, {**form, **bad, "token": f"t-{field}-{len(bad)}-{message}"})
        assert page.status == 400, bad
        assert page.alerts() == [message]
        if field:
            assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page.text), field
    used = browser.post(
        path, {**_form(page_of(desk, browser)), "type": "remove", "amount": "5.50",
               "description": "Used"}
    )  # fmt: skip
    assert used.status == 303 and desk.cents() == 2000
    line = desk.book.ledger.activity(desk.client_id, 1)[0]
    assert line.actor == "console:manager" and line.ip == "127.0.0.1"


def test_reverse_an_entry_once(desk: Desk) -> None:
    """Reverse asks first (the entry, the balance after, a required reason); the reason is in
    the reversal's description; the two entries link both ways; a second reversal is refused."""
    desk.credit("30.00", "Prepayment")
    desk.credit("20.00", "Refund", type="remove")
    browser = desk.logged_in("manager")
    page = page_of(desk, browser)
    entries = re.findall(r"/admin/entries/(\d+)/reverse", page.text)
    first, removal = sorted(int(e) for e in entries)
    confirm = browser.get(f"/admin/entries/{removal}/reverse")
    assert confirm.status == 200 and "Confirm reversal" in confirm.text
    assert 'data-testid="balance-after">30.00 USD' in confirm.text
    assert "gives what this removal took back to the credit it came from" in confirm.text
    token = confirm.csrf()
    # reversing the 30.00 credit takes back what remains of it (10.00): the rest was spent
    grant = browser.get(f"/admin/entries/{first}/reverse")
    assert 'data-testid="reversal-amount">-10.00 USD' in grant.text
    assert "10.00 of 30.00: what was spent stays spent" in grant.text
    no_reason = browser.post(f"/admin/entries/{removal}/reverse", {"csrf": token, "reason": ""})
    assert no_reason.status == 400 and no_reason.alerts() == ["Give the reason for the reversal"]
    done = browser.post(
        f"/admin/entries/{removal}/reverse", {"csrf": token, "reason": "Charged by mistake"}
    )
    assert done.status == 303
    assert desk.cents() == 3000
    page = page_of(desk, browser)
    assert f"Reversal of entry #{removal}: Charged by mistake" in page.text
    reversal = int(re.search(rf"Entry #{removal} reversed by entry #(\d+)", page.text).group(1))
    assert f'Reversed by <a href="/admin/entries/{reversal}">' in page.text
    assert f'Reverses <a href="/admin/entries/{removal}">' in page.text
    again = browser.post(f"/admin/entries/{removal}/reverse", {"csrf": token, "reason": "x"})
    assert again.status == 409
    assert again.alerts() == [
        f"Entry #{removal} cannot be reversed: This entry has already been reversed"
    ]
    assert desk.cents() == 3000
    missing = browser.post("/admin/entries/999999/reverse", {"csrf": token, "reason": "x"})
    assert missing.status == 404


def test_a_refused_reversal_or_bulk_row_claims_nothing_even_in_a_shared_commit(
    desk: Desk,
) -> None:
    """Concurrent writes share commits (group commit): a refused reversal or bulk row in such a
    batch must leave no claim behind, so it can be applied later."""
    import threading

    from creditbook.bulk import Bulk
    from creditbook.staff import Staff

    desk.credit("30.00", "Prepayment")
    desk.credit("25.00", "Used", type="remove")
    ledger = desk.book.ledger
    entry = list(ledger.get_credits(str(desk.client_id))[2])[1].id  # the removal
    client = ledger.get_client(str(desk.client_id))
    ledger.update_client(client, {"status": "Closed"}, actor=ACTOR)  # nothing can be given back
    staff = Staff(ledger)
    bulks = Bulk(ledger, desk.book.store.bulk)
    bulk = bulks.read(
        f"clientid,amount,description\n{desk.client_id},-40.00,Too much\n".encode(), actor=ACTOR
    )
    assert bulk.rows[0].error == "Amount exceeds customer credit balance (available: 5.00)"
    bulk.rows[0].error = ""  # as if the balance had moved since the preview: the store refuses
    outcomes: list[str] = []
    start = threading.Barrier(24)

    def reverse() -> None:
        start.wait()
        try:
            staff.reverse_credit(entry, reason="race", actor=ACTOR)
            outcomes.append("reversed")
        except creditbook.CreditError as exc:
            outcomes.append(exc.message)

    def bulk_row() -> None:
        start.wait()
        outcomes.extend(outcome for _, outcome, _ in bulks.apply(bulk))

    def credit() -> None:
        start.wait()
        desk.credit("0.01", "Noise", type="remove")

    threads = [threading.Thread(target=f) for f in [reverse] * 8 + [bulk_row] * 8 + [credit] * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcomes) == {"Amount exceeds customer credit balance", "Client is closed"}
    ledger.update_client(ledger.get_client(str(desk.client_id)), {"status": "Active"}, actor=ACTOR)
    desk.credit("100.00", "Top up")
    staff.reverse_credit(entry, reason="now", actor=ACTOR)  # not claimed by the refusals
    assert [o for _, o, _ in bulks.apply(bulk)] == ["applied"]
    assert desk.cents() == 3000 - 2500 - 8 + 10000 + 2500 - 4000


def test_viewer_sees_everything_and_changes_nothing(desk: Desk) -> None:
    desk.credit("10.00")
    viewer = desk.logged_in("viewer")
    page = page_of(desk, viewer)
    assert "Reverse</button>" not in page.text
    assert ">Save</button>" not in page.text
    assert "Bulk credit" not in page.text and "API access" not in page.text
    token = page.csrf()
    entry = desk.book.ledger.get_credits(str(desk.client_id))[2].__next__().id
    form = {"csrf": token, "type": "add", "amount": "5", "description": "x"}
    assert viewer.post(f"/admin/clients/{desk.client_id}/credit", form).status == 403
    assert viewer.post(f"/admin/entries/{entry}/reverse", {"csrf": token}).status == 403
    assert viewer.upload("/admin/bulk/preview", {"csrf": token}, "file", b"x").status == 403
    assert viewer.get("/admin/access").status == 403
    assert desk.cents() == 1000
    manager = desk.logged_in("manager")
    assert manager.get("/admin/access").status == 403
    assert manager.get("/admin/bulk").status == 200


# --- export ---------------------------------------------------------------------------------


def test_export_is_exactly_the_filtered_history(desk: Desk) -> None:
    for day in range(1, 29):
        desk.credit(f"{day}.00", f"Day {day}", date=f"2026-02-{day:02d}")
    desk.credit("1.00", '=HYPERLINK("http://evil")', date="2026-02-10")
    desk.credit("1.00", "@SUM(A1)", type="remove", date="2026-02-11")
    browser = desk.logged_in("viewer")
    view = browser.get(f"/admin/clients/{desk.client_id}?from=2026-02-05&to=2026-02-12")
    shown = re.findall(r'<tr data-entry="(\d+)"', view.text)
    assert "export.csv?from=2026-02-05&amp;to=2026-02-12" in view.text
    export = browser.get(
        f"/admin/clients/{desk.client_id}/export.csv?from=2026-02-05&to=2026-02-12"
    )
    assert export.status == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["id"] for r in rows] == shown
    assert len(rows) == 10
    assert all("2026-02-05" <= r["date"] <= "2026-02-12" for r in rows)
    texts = {r["description"] for r in rows}
    assert '\'=HYPERLINK("http://evil")' in texts and "'@SUM(A1)" in texts
    removal = next(r for r in rows if r["description"] == "'@SUM(A1)")
    assert removal["amount"] == "-1.00"  # amounts stay numbers
    bad = browser.get(f"/admin/clients/{desk.client_id}/export.csv?from=yesterday")
    assert bad.status == 400


def test_history_pages_newest_first_with_running_balance(desk: Desk) -> None:
    for i in range(1, 121):
        desk.credit("1.00", f"n{i}")
    browser = desk.logged_in("viewer")
    seen: list[str] = []
    path = f"/admin/clients/{desk.client_id}"
    pages = []
    while path:
        page = browser.get(path)
        pages.append(path)
        seen += re.findall(r'<td class="text">(n\d+)', page.text)
        older = re.search(r'href="([^"]+)" rel="next">Older entries', page.text)
        path = html.unescape(older.group(1)) if older else ""
    assert seen == [f"n{i}" for i in range(120, 0, -1)]
    first = browser.get(f"/admin/clients/{desk.client_id}")
    balances = re.findall(
        r'<td class="num">([0-9.,-]+)</td>\s*<td class="wide nowrap">test', first.text
    )
    assert balances[:3] == ["120.00", "119.00", "118.00"]
    assert 'role="img"' in first.text and "<title" in first.text
    # the last page's Newer link leads back up, with the same balances as going down
    last = browser.get(pages[-1])
    newer = re.search(r'href="([^"]+)" rel="prev">Newer entries', last.text)
    assert newer is not None
    up = browser.get(html.unescape(newer.group(1)))
    assert re.findall(r'<td class="text">(n\d+)', up.text) == [f"n{i}" for i in range(70, 20, -1)]
    down = browser.get(pages[1])
    assert re.findall(r'<td class="num">([0-9.,-]+)</td>\s*<td class="wide', up.text) == (
        re.findall(r'<td class="num">([0-9.,-]+)</td>\s*<td class="wide', down.text)
    )


def test_a_date_filtered_history_pages_by_date_and_exports_the_same(desk: Desk) -> None:
    # entered out of date order, as backdated credits are
    for i in range(1, 131):
        desk.credit("1.00", f"d{i}", date=f"2026-{1 + i * 7 % 12:02d}-{1 + i % 28:02d}")
    browser = desk.logged_in("viewer")
    base = f"/admin/clients/{desk.client_id}?from=2026-03-01&to=2026-10-31"
    seen: list[str] = []
    path = base
    while path:
        page = browser.get(path)
        assert page.status == 200
        seen += re.findall(r'<tr data-entry="(\d+)"', page.text)
        older = re.search(r'href="([^"]+)" rel="next">Older entries', page.text)
        path = html.unescape(older.group(1)) if older else ""
    entries = list(desk.book.ledger.get_credits(str(desk.client_id))[2])
    expected = sorted(
        (e for e in entries if "2026-03-01" <= e.date <= "2026-10-31"),
        key=lambda e: (e.date, e.id),
        reverse=True,
    )
    assert seen == [str(e.id) for e in expected]
    assert len(seen) > 50  # more than one page
    query = base.partition("?")[2]
    export = browser.get(f"/admin/clients/{desk.client_id}/export.csv?{query}")
    assert [r["id"] for r in csv.DictReader(io.StringIO(export.text))] == seen
    assert browser.get(base + "&before=garbage").status == 400


# --- bulk -------------------------------------------------------------------------------------


def test_bulk_preview_applies_nothing_then_apply_once(desk: Desk) -> None:
    other = desk.book.ledger.add_client(
        firstname="Bo", lastname="Ng", email="bo@example.com", actor=ACTOR
    ).client_id
    data = (
        "clientid,email,amount,type,description,date\n"
        f"{desk.client_id},,10.00,,Bulk goodwill,2026-03-01\n"
        f",bo@example.com,5.00,add,By e-mail,\n"
        f"{desk.client_id},,-4.00,,Signed removal,\n"
        f"{desk.client_id},,100.00,remove,Too much,\n"
        "999999,,1.00,,No such client,\n"
        f"{desk.client_id},,abc,,Bad amount,\n"
        f"{desk.client_id},,1.00,,,\n"
        f"{desk.client_id},,1.00,,Bad date,2026-13-01\n"
    ).encode()
    browser = desk.logged_in("manager")
    token = browser.get("/admin/bulk").csrf()
    preview = browser.upload("/admin/bulk/preview", {"csrf": token}, "file", data)
    assert preview.status == 200, preview.text
    assert "8 rows: 3 can be applied, 5 have errors" in preview.text
    for message in (
        "Amount exceeds customer credit balance",
        "Client Not Found",
        "Amount must be in decimal format: ### or ###.##",
        "No Description Provided",
        "Date Format is not Valid",
    ):
        assert message in preview.text
    assert desk.cents() == 0
    carried = html.unescape(re.search(r'name="csv" value="([^"]*)"', preview.text).group(1))
    applied = browser.post("/admin/bulk/apply", {"csrf": token, "csv": carried})
    assert "Done: 3 applied, 0 already applied before, 0 refused, 5 invalid rows" in applied.text
    assert desk.cents() == 600
    assert desk.book.ledger.get_client(str(other)).balance_cents == 500
    # the same file again, uploaded again or carried again: nobody is credited twice
    again = browser.upload("/admin/bulk/preview", {"csrf": token}, "file", data)
    assert "3 were already applied and are left out" in again.text
    assert again.text.count("already applied on ") == 3
    twice = browser.post("/admin/bulk/apply", {"csrf": token, "csv": carried.replace("\n", "\r\n")})
    assert "Done: 0 applied, 0 already applied before" in twice.text
    assert "3 left out as applied before" in twice.text
    assert desk.cents() == 600
    entry = desk.book.ledger.get_credits(str(desk.client_id))[2].__next__()
    assert entry.description == "Bulk goodwill" and entry.date == "2026-03-01"


def test_bulk_refuses_unusable_files(desk: Desk) -> None:
    browser = desk.logged_in("manager")
    token = browser.get("/admin/bulk").csrf()
    for data, message in (
        (b"name,value\nx,1\n", "The first line must name the columns"),
        (b"\xff\xfe\x00bad", "The file is not UTF-8 text"),
    ):
        page = browser.upload("/admin/bulk/preview", {"csrf": token}, "file", data)
        assert page.status == 400
        assert message in page.text
    big = b"clientid,amount,description\n" + b"1,1.00,x\n" * 400_000
    assert browser.upload("/admin/bulk/preview", {"csrf": token}, "file", big).status == 413


# --- lists ------------------------------------------------------------------------------------


def test_client_list_search_filter_sort_and_keyset_pages(desk: Desk) -> None:
    for i in range(60):
        desk.book.ledger.add_client(
            firstname=f"F{i:02d}",
            lastname=f"L{59 - i:02d}",
            email=f"c{i}@example.org",
            companyname="Acme" if i % 10 == 0 else "",
            actor=ACTOR,
        )
    browser = desk.logged_in("viewer")
    names: list[str] = []
    path = "/admin/clients?sort=name"
    while path:
        page = browser.get(path)
        assert page.status == 200
        names += re.findall(r'/admin/clients/\d+">([^<]+)</a>', page.text)
        after = re.search(r'href="([^"]+)" rel="next"', page.text)
        path = html.unescape(after.group(1)) if after else ""
    assert len(names) == 61 and len(set(names)) == 61
    assert [n.lower() for n in names] == sorted(n.lower() for n in names)  # first name first
    acme = browser.get("/admin/clients?q=acme")
    assert "6 clients match" in acme.text
    by_mail = browser.get("/admin/clients?q=C7%40EXAMPLE")
    assert "1 client match" in by_mail.text and "c7@example.org" in by_mail.text
    full_name = browser.get("/admin/clients?q=ann+lee")
    assert "1 client match" in full_name.text and "ann@example.com" in full_name.text
    many = browser.get("/admin/clients?q=example")
    assert "More clients match than one page shows" in many.text
    desk.credit("9.00")
    top = browser.get("/admin/clients?sort=-balance")
    assert re.findall(r'/admin/clients/(\d+)"', top.text)[0] == str(desk.client_id)
    assert browser.get("/admin/clients?sort=name&after=garbage").status == 400


def test_client_list_and_activity_export_exactly_their_filtered_lists(desk: Desk) -> None:
    for i in range(2500):
        desk.book.ledger.add_client(
            firstname=f"F{i}",
            lastname="=cmd" if i == 7 else f"L{i:04d}",
            email=f"x{i}@{'acme' if i % 2 else 'other'}.example",
            actor=ACTOR,
        )
    desk.credit("3.50", "-minus first")
    browser = desk.logged_in("viewer")
    page = browser.get("/admin/clients?q=acme&sort=-name")
    link = re.search(r'href="(/admin/clients\.csv\?[^"]+)" download>Export CSV', page.text)
    assert link
    export = browser.get(html.unescape(link.group(1)))
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 1250 and all("@acme." in r["email"] for r in rows)
    names = [f"{r['firstname']} {r['lastname']}".lower() for r in rows]
    assert names == sorted(names, reverse=True)  # the list's own order, every page of it
    shown = re.findall(r'/admin/clients/(\d+)">', page.text)
    assert [r["id"] for r in rows[: len(shown)]] == shown
    everyone = list(csv.DictReader(io.StringIO(browser.get("/admin/clients.csv").text)))
    assert len(everyone) == 2501
    assert any(r["lastname"] == "'=cmd" for r in everyone)
    assert next(r for r in everyone if r["id"] == str(desk.client_id))["balance"] == "3.50"
    activity = browser.get(f"/admin/activity.csv?client={desk.client_id}")
    lines = list(csv.DictReader(io.StringIO(activity.text)))
    assert [r["action"] for r in lines] == ["addcredit", "addclient"]
    assert lines[0]["detail"] == "Added credit 3.50: -minus first"
    all_lines = list(csv.DictReader(io.StringIO(browser.get("/admin/activity.csv").text)))
    # clients, the client, the credit, the admins, the viewer's login
    assert len(all_lines) == 2500 + 1 + 1 + 3 + 1


def test_overview_and_activity(desk: Desk) -> None:
    desk.credit("12.34", "Opening")
    eur = desk.book.ledger.add_client(
        firstname="E", lastname="U", email="eu@example.com", currency="EUR", actor=ACTOR
    ).client_id
    desk.book.ledger.add_credit(clientid=str(eur), amount="5.00", description="E", actor=ACTOR)
    browser = desk.logged_in("manager")
    overview = browser.get("/admin/")
    assert 'data-testid="total-USD">12.34 USD' in overview.text
    assert 'data-testid="total-EUR">5.00 EUR' in overview.text
    assert "1 of 1 clients hold credit" in overview.text
    assert overview.text.count('role="img"') == 2
    token = page_of(desk, browser).csrf()
    browser.post(
        f"/admin/clients/{desk.client_id}/credit",
        {"csrf": token, "type": "add", "amount": "1", "description": "From the console"},
    )
    mine = browser.get("/admin/activity?admin=manager")
    assert "From the console" in mine.text and "Opening" not in mine.text
    by_client = browser.get(f"/admin/activity?client={eur}")
    assert "Added credit 5.00: E" in by_client.text and "From the console" not in by_client.text
    assert "Nothing recorded" in browser.get("/admin/activity?to=2000-01-01").text


def test_owner_manages_api_access(desk: Desk) -> None:
    browser = desk.logged_in("owner")
    token = browser.get("/admin/access").csrf()
    made = browser.post(
        "/admin/access/credential", {"csrf": token, "admin": "owner", "description": "billing"}
    )
    identifier = re.search(r'data-testid="new-identifier">([^<]+)<', made.text).group(1)
    secret = re.search(r'data-testid="new-secret">([^<]+)<', made.text).group(1)
    result = desk.book.local_api("GetClients", {})
    assert result["result"] == "success"
    assert secret not in browser.get("/admin/access").text  # shown once
    assert desk.book.ledger.credential(identifier) is not None
    browser.post("/admin/access/revoke", {"csrf": token, "identifier": identifier})
    assert desk.book.ledger.credential(identifier) is None
    browser.post("/admin/access/role", {"csrf": token, "name": "reader", "actions": "getcredits"})
    assert [r.name for r in desk.book.ledger.list_roles()] == ["reader"]
    bad = browser.post("/admin/access/role", {"csrf": token, "name": "x", "actions": "dropall"})
    assert bad.status == 400
    browser.post("/admin/access/allow", {"csrf": token, "entry": "192.0.2.0/24"})
    assert "192.0.2.0/24" in desk.book.ledger.store.list_ips()
    browser.post("/admin/access/setting", {"csrf": token, "name": "ban_failures", "value": "5"})
    assert desk.book.ledger.store.get_settings()["ban_failures"] == "5"
    browser.post(
        "/admin/access/admin-access", {"csrf": token, "username": "viewer", "access": "manager"}
    )
    assert desk.book.ledger.admin("viewer").access == "manager"
    self_disable = browser.post("/admin/access/admin-disable", {"csrf": token, "username": "owner"})
    assert self_disable.status == 400
    added = browser.post(
        "/admin/access/admin",
        {"csrf": token, "username": "newbie", "password": "long enough pw", "access": "viewer"},
    )
    assert added.status == 303
    assert desk.book.ledger.admin("newbie").access == "viewer"


def test_reversals_and_bulk_rows_travel_with_a_copy(desk: Desk, tmp_path: object) -> None:
    from creditbook.backup import copy

    desk.credit("10.00", "Prepayment")
    browser = desk.logged_in("manager")
    page = page_of(desk, browser)
    entry = re.findall(r"/admin/entries/(\d+)/reverse", page.text)[0]
    assert (
        browser.post(f"/admin/entries/{entry}/reverse", {"csrf": page.csrf(), "reason": "r"}).status
        == 303
    )
    target = f"sqlite:///{tmp_path}/copy.db"
    assert copy(desk.book.store.url, target).ok
    with creditbook.open(target) as restored:
        from creditbook.staff import Staff

        with pytest.raises(creditbook.CreditError, match="already been reversed"):
            Staff(restored.ledger).reverse_credit(entry, reason="again", actor=ACTOR)
        assert restored.ledger.admin("owner").access == "owner"


# --- bounded input, the hot path ------------------------------------------------------------


def test_oversized_and_broken_requests(desk: Desk) -> None:
    browser = desk.client()
    big = browser.post("/admin/login", {"username": "x" * 100_000, "password": "y"})
    assert big.status == 413
    logged = desk.logged_in("owner")
    token = logged.get("/admin/").csrf()
    bad_utf8 = logged.request(
        "POST",
        f"/admin/clients/{desk.client_id}/credit",
        b"csrf=" + token.encode() + b"&description=%FF",
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert bad_utf8.status in (400, 403)
    form = f"csrf={token}&amount=5&description=cut".encode()
    cut = logged.request(
        "POST",
        f"/admin/clients/{desk.client_id}/credit",
        form,
        {"content-type": "application/x-www-form-urlencoded", "content-length": "9999"},
    )
    assert cut.status == 400 and "did not arrive whole" in cut.text
    assert desk.cents() == 0


def test_hostile_input_never_gives_a_server_error(desk: Desk) -> None:
    desk.credit("10.00")
    browser = desk.logged_in("owner")
    token = browser.get("/admin/").csrf()
    huge = "9" * 30
    for path in (
        f"/admin/clients/{huge}",
        f"/admin/clients/{huge}/export.csv",
        f"/admin/clients/{desk.client_id}?before={huge}",
        f"/admin/clients/{desk.client_id}?from=2026-02-30",
        f"/admin/clients/{desk.client_id}?from=2026-01-01&before=2026-01-01_{huge}",
        "/admin/clients?q=%00",
        "/admin/clients?q=" + "%25" * 50 + "&status=%00",
        "/admin/clients?sort=name&after=WzE5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ==",
        "/admin/clients?sort=id&after=WzE5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ==",
        "/admin/clients?sort=-balance&after=WyJ4IiwxXQ==",
        "/admin/clients?sort=-balance&after=%FF",
        f"/admin/activity?client={huge}&admin=%00&from=x",
        "/admin/activity?admin=" + "a" * 1000,
        "/admin/static/../../../etc/passwd",
    ):
        page = browser.get(path)
        assert page.status < 500, (path, page.status, page.text[:300])
    for path, form in (
        (f"/admin/clients/{huge}/credit", {"amount": "1", "description": "x"}),
        (f"/admin/clients/{desk.client_id}/credit", {"amount": "1", "description": "a\x00b"}),
        (f"/admin/clients/{desk.client_id}/credit", {"amount": huge, "description": "x"}),
        (f"/admin/clients/{desk.client_id}/credit", {"amount": "1", "date": "0000-00-00"}),
        (f"/admin/entries/{huge}/reverse", {}),
        ("/admin/access/revoke", {"identifier": "a\x00"}),
        ("/admin/access/deny", {"entry": "not an address"}),
        ("/admin/access/setting", {"name": "ban_failures", "value": huge}),
        ("/admin/access/nothing", {}),
        ("/admin/bulk/apply", {"csv": "clientid,amount,description\n" + huge + ",1,x\n"}),
    ):
        page = browser.post(path, {"csrf": token, **form})
        assert page.status < 500, (path, page.status, page.text[:300])
    raw = browser.request(
        "POST",
        "/admin/access/deny",
        b"csrf=" + token.encode() + b"&entry=%ED%A0%80",
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert raw.status == 400  # not UTF-8
    assert desk.cents() == 1000


@pytest.mark.slow
def test_sessions_work_across_worker_processes(desk: Desk) -> None:
    """A session made by one worker is known to the other; logging out ends it for both."""
    import httpx

    from helpers import Server

    url = desk.book.store.url
    with Server(url, "--workers", "2", env={"CREDITBOOK_WEBHOOKS": "0"}) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            login = http.post("/admin/login", data={"username": "manager", "password": PASSWORD})
            assert login.status_code == 303
            pages = [http.get(f"/admin/clients/{desk.client_id}") for _ in range(30)]
            assert {p.status_code for p in pages} == {200}
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', pages[-1].text)
            assert token
            for _ in range(10):
                done = http.post(
                    f"/admin/clients/{desk.client_id}/credit",
                    data={"csrf": token.group(1), "amount": "1.00", "description": "w"},
                    headers={"origin": server.url},
                )
                assert done.status_code == 303
            cookie = http.cookies["creditbook_session"]
            with httpx.Client(base_url=server.url, timeout=30) as copy:
                copy.cookies.set("creditbook_session", cookie, path="/admin")
                assert {copy.get("/admin/").status_code for _ in range(10)} == {200}
            http.post(
                "/admin/logout", data={"csrf": token.group(1)}, headers={"origin": server.url}
            )
        with httpx.Client(base_url=server.url, timeout=30) as replay:
            replay.cookies.set("creditbook_session", cookie, path="/admin")
            assert replay.get("/admin/").status_code == 303  # ended for every worker
            after = [replay.get("/admin/").status_code for _ in range(10)]
            assert set(after) == {303}
    assert desk.cents() == 1000


def test_the_api_never_loads_the_console(database: str) -> None:
    creditbook.open(database).close()
    code = f"""
import sys, asyncio
from creditbook.config import Settings
from creditbook.http import create_app
app = create_app(Settings(database={database!r}, access_log=False, webhooks=False))
sent = []
async def receive():
    return {{"type": "http.request", "body": b"action=GetClients&responsetype=json"}}
async def send(m):
    sent.append(m)
scope = {{"type": "http", "method": "POST", "path": "/includes/api.php", "query_string": b"",
         "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
         "client": ("127.0.0.1", 1)}}
asyncio.run(app(scope, receive, send))
assert sent[0]["status"] == 403, sent
loaded = [m for m in sys.modules if m.startswith(("creditbook.console", "jinja2"))]
assert not loaded, loaded
app.store.close()
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- hardening, second round (the issue's items by number) ----------------------------------


def _preview(browser: ConsoleClient, token: str, data: bytes) -> Page:
    page = browser.upload("/admin/bulk/preview", {"csrf": token}, "file", data)
    assert page.status == 200, page.text
    return page


def _apply(browser: ConsoleClient, token: str, page: Page, **extra: str) -> Page:
    carried = html.unescape(re.search(r'name="csv" value="([^"]*)"', page.text).group(1))
    name = html.unescape(re.search(r'name="name" value="([^"]*)"', page.text).group(1))
    return browser.post("/admin/bulk/apply", {"csrf": token, "csv": carried, "name": name, **extra})


def test_item4_bulk_rows_are_known_by_content_not_by_the_files_bytes(desk: Desk) -> None:
    """The same rows with a trailing newline, another header case and extra spaces are
    recognised as applied ("already applied on <date> from <file>") and left out."""
    browser = desk.logged_in("manager")
    token = browser.get("/admin/bulk").csrf()
    first = f"clientid,amount,description\n{desk.client_id},10.00,Goodwill\n".encode()
    applied = _apply(browser, token, _preview(browser, token, first))
    assert "Done: 1 applied" in applied.text and desk.cents() == 1000
    today = desk.book.ledger.today()
    for variant in (
        first + b"\n",
        f"ClientID,AMOUNT,Description\n{desk.client_id},10.00,Goodwill\n".encode(),
        f" clientid , amount , description\n {desk.client_id} , 10.00 , Goodwill \n".encode(),
        f"Client ID;Amount;Description\n{desk.client_id};10.00;Goodwill\n".encode(),
    ):
        page = _preview(browser, token, variant)
        assert "1 were already applied and are left out" in page.text, variant
        assert f"already applied on {today} from credits.csv" in page.text
        done = _apply(browser, token, page)
        assert "Done: 0 applied" in done.text and "1 left out as applied before" in done.text
    assert desk.cents() == 1000


def test_item4_a_corrected_file_applies_only_the_fixed_rows(desk: Desk) -> None:
    """The preview's "fix the rows and upload again" path: the rows applied from the first
    upload are left out, the fixed ones applied; the rejected rows come back as a CSV file."""
    browser = desk.logged_in("manager")
    token = browser.get("/admin/bulk").csrf()
    rows = [f"{desk.client_id},5.00,First", f"{desk.client_id},12,50,Comma", "999999,1,Nobody"]
    bad = ('clientid,amount,description\n' + "\n".join(rows[:1]) +
           f'\n{desk.client_id},"12,50",Comma\n' + rows[2] + "\n").encode()  # fmt: skip
    page = _preview(browser, token, bad)
    assert "use a dot for decimals: 12.50" in page.text
    done = _apply(browser, token, page)
    assert "Done: 1 applied" in done.text and desk.cents() == 500
    rejected = html.unescape(re.search(r'name="rejected" value="([^"]*)"', done.text).group(1))
    download = browser.post(
        "/admin/bulk/rejected", {"csrf": token, "name": "credits.csv", "rejected": rejected}
    )
    assert download.status == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="credits-rejected-rows.csv"' in download.headers["content-disposition"]
    got = list(csv.reader(io.StringIO(download.text)))
    assert got[0] == ["clientid", "amount", "description", "error"]
    assert [r[:3] for r in got[1:]] == [[str(desk.client_id), "12,50", "Comma"],
                                        ["999999", "1", "Nobody"]]  # fmt: skip
    fixed = (f"clientid,amount,description\n{desk.client_id},5.00,First\n"
             f"{desk.client_id},12.50,Comma\n").encode()  # fmt: skip
    again = _preview(browser, token, fixed)
    assert "1 were already applied and are left out" in again.text
    assert "Done: 1 applied" in _apply(browser, token, again).text
    assert desk.cents() == 1750


def test_item4_a_row_applied_before_can_be_ticked_in(desk: Desk) -> None:
    """Ticking "apply again" applies a recognised row once more, deliberately."""
    browser = desk.logged_in("manager")
    token = browser.get("/admin/bulk").csrf()
    data = f"clientid,amount,description\n{desk.client_id},3.00,Monthly\n".encode()
    _apply(browser, token, _preview(browser, token, data))
    page = _preview(browser, token, data + b"\n")
    assert 'name="again-2"' in page.text  # row 2: the spreadsheet's numbering
    done = _apply(browser, token, page, **{"again-2": "1"})
    assert "Done: 1 applied" in done.text and desk.cents() == 600
    twice = _apply(browser, token, page, **{"again-2": "1"})  # the same upload again
    assert "1 already applied before" in twice.text and desk.cents() == 600


def test_item4_the_recognition_window_is_a_setting(desk: Desk) -> None:
    """Rows applied longer ago than ``bulk_repeat_days`` are not recognised."""
    from creditbook.bulk import Bulk

    data = f"clientid,amount,description\n{desk.client_id},1.00,Fee\n".encode()
    recent = Bulk(desk.book.ledger, desk.book.store.bulk, repeat_days=30)
    list(recent.apply(recent.read(data, actor=ACTOR, name="a.csv")))
    assert recent.read(data + b"\n", actor=ACTOR).seen == 1
    stale = Bulk(desk.book.ledger, desk.book.store.bulk, repeat_days=30)
    stale._since = lambda: "9999"  # type: ignore[method-assign]  # everything is older
    assert stale.read(data + b"\n", actor=ACTOR).seen == 0


def test_item15_idle_time_counts_from_the_last_request(desk: Desk) -> None:
    """With a one-minute idle limit, an admin active at 55 s is still in at 62 s (7 s idle),
    and out a minute after the last request."""
    desk.book.store.set_setting("console_idle_minutes", "1", ACTOR, desk.book.ledger.now())
    browser = desk.logged_in("viewer")
    start = time.time()
    now = [start]
    assert desk.app.console is not None
    desk.app.console.web.sessions.clock = lambda: now[0]
    now[0] = start + 55
    assert browser.get("/admin/").status == 200
    now[0] = start + 62
    assert browser.get("/admin/").status == 200
    now[0] = start + 62 + 61
    assert browser.get("/admin/").status == 303


def test_item17_the_last_owner_cannot_demote_or_disable_themselves(desk: Desk) -> None:
    """The one-click self-demotion of the last owner is refused with a reason."""
    browser = desk.logged_in("owner")
    token = browser.get("/admin/access").csrf()
    page = browser.post(
        "/admin/access/admin-access", {"csrf": token, "username": "owner", "access": "viewer"}
    )
    assert page.status == 400
    assert page.alerts() == [
        "Creditbook needs at least one enabled owner: make another admin an owner first"
    ]
    assert desk.book.ledger.admin("owner").access == "owner"


# --- the console's second pass -----------------------------------------------------------------


def _rows(page: Page) -> list[tuple[str, str, str, str]]:
    """The history's rows: (dated, description, amount, balance)."""
    return re.findall(
        r'<td class="nowrap">(\d{4}-\d\d-\d\d)</td>\s*<td class="text">([^<\n]*)'
        r'.*?<td class="num">([0-9.,-]+)</td>\s*<td class="num">([0-9.,-]+)</td>',
        page.text,
        re.S,
    )


def _cents(text: str) -> int:
    return int(round(float(text.replace(",", "")) * 100))


def test_second_pass_history_in_date_order_adds_up_in_every_view(desk: Desk) -> None:
    """After a back-dated entry the history is listed by date with the balance after each entry
    in that order, filtered or not; each last balance of a day is that day's as-of balance; the
    chart is a step chart on a date axis whose summary names the whole range."""
    for amount, date, kind in (
        ("100.00", "2026-09-02", "add"),
        ("40.11", "2026-12-01", "add"),
        ("10.11", "2026-09-20", "add"),
        ("110.00", "2026-11-03", "remove"),
    ):
        desk.credit(amount, f"{kind} on {date}", date=date, type=kind)
    browser = desk.logged_in("viewer")
    for query in ("", "?from=2026-09-01&to=2026-11-30", "?to=2026-11-03", "?from=2026-09-21"):
        page = browser.get(f"/admin/clients/{desk.client_id}{query}")
        rows = _rows(page)
        assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True), query
        for upper, lower in itertools.pairwise(rows):
            assert _cents(upper[3]) - _cents(upper[2]) == _cents(lower[3]), (query, rows)
        for date, _, _, balance in rows:
            asof = desk.book.local_api(
                "GetClientsDetails", {"clientid": desk.client_id, "asof": date}
            )
            assert _cents(asof["credit"]) == _cents(balance), (query, date)
    page = browser.get(f"/admin/clients/{desk.client_id}")
    assert "Recorded" in page.text and "Dated" in page.text
    assert re.search(r'<td class="nowrap wide">\d{4}-\d\d-\d\d \d\d:\d\d</td>', page.text)
    assert ">Date</text>" in page.text and ">Balance (USD)</text>" in page.text
    today = desk.book.ledger.today()
    assert f"Balance from 2026-09-02 to {max(today, '2026-12-01')}: 100.00 USD at the end of " \
        "2026-09-02" in html.unescape(page.text)  # fmt: skip
    assert "lowest 0.11 on 2026-11-03" in page.text


def test_second_pass_a_done_link_says_nothing_and_a_missing_client_is_a_404(desk: Desk) -> None:
    """Reopening an old ``?done=`` link shows no message; a missing client is a 404 page titled
    "Client not found"; logging out says so."""
    browser = desk.logged_in("viewer")
    assert "notice" not in browser.get(f"/admin/clients/{desk.client_id}?done=credit").text
    missing = browser.get("/admin/clients/424242")
    assert missing.status == 404 and "<title>Client not found · Creditbook</title>" in missing.text
    page = browser.get("/admin/")
    out = browser.post("/admin/logout", {"csrf": page.csrf()})
    assert browser.get(out.location).text.count("You have been logged out.") == 1


def test_second_pass_search_ignores_case_and_accents_and_finds_ids(desk: Desk) -> None:
    """ "angstrom" and "ÅNGSTRÖM" find Ångström, "muller" Müller, a number the client with that
    id, e-mail and company still match; names sort as shown, Å with A and Ø with O."""
    ids = {}
    for first, last, company in (
        ("Åsa", "Ångström", ""),
        ("Jörg", "Müller", "Søren & Co"),
        ("Øyvind", "Berg", ""),
        ("Zed", "Adams", "Acme"),
        ("Anna", "Zorn", ""),
    ):
        ids[last] = desk.book.ledger.add_client(
            firstname=first, lastname=last, email=f"{fold(last)}@example.com",
            companyname=company, actor=ACTOR,
        ).client_id  # fmt: skip
    browser = desk.logged_in("viewer")

    def found(query: str) -> list[str]:
        page = browser.get(f"/admin/clients?q={urllib.parse.quote(query)}")
        return re.findall(r'/admin/clients/\d+">([^<]+)</a>', page.text)

    assert found("angstrom") == found("ÅNGSTRÖM") == ["Åsa Ångström"]
    assert found("muller") == ["Jörg Müller"]
    assert found("soren") == ["Jörg Müller"]  # the company
    assert found("ADAMS@EXAMPLE") == ["Zed Adams"]
    assert found(str(ids["Berg"])) == ["Øyvind Berg"]
    names = re.findall(r'/admin/clients/\d+">([^<]+)</a>', browser.get("/admin/clients").text)
    assert names == ["Ann Lee", "Anna Zorn", "Åsa Ångström", "Jörg Müller", "Øyvind Berg",
                     "Zed Adams"]  # fmt: skip
    api = desk.book.local_api("GetClients", {"search": "MULLER"})
    assert [c["lastname"] for c in api["clients"]["client"]] == ["Müller"]


def test_second_pass_balance_highest_first_groups_by_currency(desk: Desk) -> None:
    """Balances sort within their currency, currencies in order."""
    for name, code, amount in (("e1", "EUR", "5"), ("e2", "EUR", "50"), ("u2", "USD", "20")):
        cid = desk.book.ledger.add_client(
            firstname=name, lastname="X", email=f"{name}@x.com", currency=code, actor=ACTOR
        ).client_id
        desk.book.ledger.add_credit(clientid=str(cid), amount=amount, description="d", actor=ACTOR)
    desk.credit("7.00")
    browser = desk.logged_in("viewer")
    page = browser.get("/admin/clients?sort=-balance")
    shown = re.findall(r'<td class="num">([0-9.,]+) ([A-Z]{3})</td>', page.text)
    assert shown == [("50.00", "EUR"), ("5.00", "EUR"), ("20.00", "USD"), ("7.00", "USD")]


def test_second_pass_new_and_edited_clients_with_the_activity_log(desk: Desk) -> None:
    """A manager creates a client and edits it; each change names old and new values in the
    activity log; the currency is fixed once the client has entries; closing stops additions."""
    browser = desk.logged_in("manager")
    form = browser.get("/admin/clients/new")
    assert form.status == 200
    values = {"csrf": form.csrf(), "firstname": "Kari", "lastname": "Nordmann",
              "email": "kari@example.no", "currency": "NOK", "status": "Active",
              "city": "Oslo", "country": "NO"}  # fmt: skip
    bad = browser.post("/admin/clients/new", {**values, "email": "not-an-email"})
    assert bad.status == 400 and bad.alerts() == ["The email address you entered was not valid"]
    assert re.search(r'id="f-email"[^>]*aria-invalid="true"', bad.text)
    created = browser.post("/admin/clients/new", values)
    assert created.status == 303
    cid = int(created.location.rsplit("/", 1)[1])
    client = desk.book.ledger.get_client(str(cid))
    assert (client.currency_code, client.details["city"]) == ("NOK", "Oslo")
    edit = browser.get(f"/admin/clients/{cid}/edit")
    changes = {**values, "csrf": edit.csrf(), "city": "Bergen", "currency": "EUR"}
    changed = browser.post(f"/admin/clients/{cid}/edit", changes)
    assert changed.status == 303
    assert "Client " + str(cid) + " updated: city, currency." in browser.get(changed.location).text
    line = desk.book.ledger.activity(cid, 1)[0]
    assert line.action == "updateclient"
    assert line.detail == "Updated client: city: 'Oslo' -> 'Bergen'; currency: 'NOK' -> 'EUR'"
    desk.book.ledger.add_credit(clientid=str(cid), amount="5", description="d", actor=ACTOR)
    locked = browser.post(f"/admin/clients/{cid}/edit", {**values, "csrf": edit.csrf(),
                                                         "currency": "USD"})  # fmt: skip
    assert locked.status == 409
    assert locked.alerts() == [
        "The currency can change only while the client has no credit entries"
    ]
    closing = {**values, "csrf": edit.csrf(), "currency": "EUR", "status": "Closed"}
    closed = browser.post(f"/admin/clients/{cid}/edit", closing)
    assert closed.status == 303
    with pytest.raises(creditbook.CreditError, match="Client is closed"):
        desk.book.ledger.add_credit(clientid=str(cid), amount="1", description="d", actor=ACTOR)
    desk.book.ledger.add_credit(
        clientid=str(cid), amount="5", description="refund", type="remove", actor=ACTOR
    )
    viewer = desk.logged_in("viewer")
    assert viewer.get("/admin/clients/new").status == 403


def test_second_pass_activity_in_words_with_names_and_both_ways(desk: Desk) -> None:
    """Removals and reversals are labelled as such; a credential shows its description (its
    identifier in a title); the client's name shows; a client can be filtered by name."""
    _, secret = desk.book.ledger.add_credential("manager", description="Billing robot", actor=ACTOR)
    desk.credit("30.00", "Prepayment")
    desk.credit("5.00", "Used", type="remove")
    browser = desk.logged_in("viewer")
    page = browser.get("/admin/activity")
    assert "<td>Credit removed</td>" in page.text and "<td>Credit added</td>" in page.text
    assert "<td>Credential created</td>" in page.text
    assert ">Ann Lee</a>" in page.text
    by_name = browser.get("/admin/activity?client=ann+lee")
    assert by_name.text.count(">Ann Lee</a>") >= 2 and "Credential created" not in by_name.text
    for i in range(60):
        desk.book.store.allow_ip(f"10.1.0.{i}", ACTOR, desk.book.ledger.now())
    first = browser.get("/admin/activity")
    older = html.unescape(re.search(r'href="([^"]+)" rel="next">Older', first.text).group(1))
    second = browser.get(older)
    newer = html.unescape(re.search(r'href="([^"]+)" rel="prev">Newer', second.text).group(1))
    assert re.findall(r"<tr>\s*<td", browser.get(newer).text) == re.findall(
        r"<tr>\s*<td", first.text
    )


def test_second_pass_exports_name_their_filter_and_carry_currency_and_name(desk: Desk) -> None:
    """The history export has the currency and the client's name, a file name that says the
    filter, and a UTF-8 BOM when asked (or set)."""
    desk.credit("3.00", "x", date="2026-09-15")
    browser = desk.logged_in("viewer")
    path = f"/admin/clients/{desk.client_id}/export.csv?from=2026-09-01&to=2026-10-31"
    export = browser.get(path)
    assert (f'filename="client-{desk.client_id}-credits-2026-09-01-to-2026-10-31.csv"'
            in export.headers["content-disposition"])  # fmt: skip
    row = next(csv.DictReader(io.StringIO(export.text)))
    assert (row["currency"], row["client"], row["balance"]) == ("USD", "Ann Lee", "3.00")
    assert not export.text.startswith("\ufeff")
    assert browser.get(path + "&bom=1").text.startswith("\ufeff")
    desk.book.store.set_setting("csv_bom", "yes", ACTOR, desk.book.ledger.now())
    assert browser.get("/admin/activity.csv?from=2026-01-01").text.startswith("\ufeff")
    activity = browser.get("/admin/activity.csv?from=2026-01-01")
    assert 'filename="activity-from-2026-01-01.csv"' in activity.headers["content-disposition"]


def test_second_pass_currencies_are_a_configured_list(desk: Desk, capsys: Any) -> None:
    """An unknown code is refused with the list; ``currency add`` allows one more."""
    from creditbook.cli import main

    url = desk.book.store.url
    refused = desk.book.local_api(
        "AddClient", {"firstname": "a", "lastname": "b", "email": "x@y.zz", "currency": "XYZ"}
    )
    assert refused["message"] == "Unknown currency XYZ: use one of the ISO 4217 codes"
    assert main(["client", "add", "--firstname", "a", "--lastname", "b", "--email", "x@y.zz",
                 "--currency", "XYZ", "--database", url]) == 1  # fmt: skip
    assert "Unknown currency XYZ" in capsys.readouterr().err
    assert main(["currency", "add", "XYZ", "--database", url]) == 0
    assert "the ISO 4217 codes and XYZ" in capsys.readouterr().out
    accepted = desk.book.local_api(
        "AddClient", {"firstname": "a", "lastname": "b", "email": "x@y.zz", "currency": "XYZ"}
    )
    assert accepted["result"] == "success"
    assert main(["config", "set", "currencies", "USD,EUR", "--database", url]) == 0
    capsys.readouterr()
    refused = desk.book.local_api(
        "AddClient", {"firstname": "a", "lastname": "b", "email": "v@y.zz", "currency": "GBP"}
    )
    assert refused["message"] == "Unknown currency GBP: use one of USD, EUR"


def test_second_pass_owner_pages_speak_in_words_and_keep_a_failed_setting(desk: Desk) -> None:
    """ "Address 10.0.0.0/8 allowed." once; a refused setting names itself and keeps the chosen
    setting and the typed value; "Last used" to the minute."""
    identifier, secret = desk.book.ledger.add_credential("owner", actor=ACTOR)
    from helpers import asgi

    asgi(desk.app, data={"action": "GetClients", "identifier": identifier, "secret": secret})
    browser = desk.logged_in("owner")
    page = browser.get("/admin/access")
    done = browser.post("/admin/access/allow", {"csrf": page.csrf(), "entry": "10.0.0.0/8"})
    assert done.status == 303
    after = browser.get("/admin/access")
    assert after.text.count("Address 10.0.0.0/8 allowed.") == 1
    assert "Address 10.0.0.0/8 allowed." not in browser.get("/admin/access").text
    assert re.search(r'data-label="Last used">\d{4}-\d\d-\d\d \d\d:\d\d</td>', after.text)
    bad = browser.post(
        "/admin/access/setting", {"csrf": page.csrf(), "name": "ban_minutes", "value": "soon"}
    )
    assert bad.status == 400
    assert bad.alerts() == ["ban_minutes: Expected a whole number of at least 1"]
    assert "<option selected>ban_minutes</option>" in bad.text
    assert 'value="soon"' in bad.text
