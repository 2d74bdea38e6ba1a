"""Four-eyes approval and two-factor login in a real Chromium, on both stores: a manager's large
credit waits, the manager cannot approve it, an owner approves it and the balance moves once; a
rejection with a reason; two approvers on two servers at once; TOTP enrolment and login with a
code, a wrong one, a replayed one and a recovery code; ``console_require_2fa``."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from creditbook.approvals import Approvals
from creditbook.model import Actor
from helpers import Server
from test_console_browser import PASSWORD, _screenshot, chromium, log_in, new_page, site

__all__ = ["chromium", "site"]
pytestmark = pytest.mark.slow


def balance_of(book: Any, client: int) -> int:
    return int(book.ledger.get_client(str(client)).balance_cents)


def test_a_large_credit_waits_for_a_second_person(chromium: Any, site: Any, tmp_path: Path) -> None:
    server, book, client = site
    page = new_page(chromium)  # the owner sets the rule on Credit settings
    log_in(page, server, "owner")
    page.goto(f"{server.url}/admin/credit-settings")
    page.locator("#rule-currency").fill("usd")
    page.locator("#rule-above").fill("500")
    page.get_by_role("button", name="Set rule").click()
    assert "USD changes above 500.00 now wait" in page.get_by_role("status").first.inner_text()
    assert "500.00" in page.locator("#rules-table").inner_text()
    page.context.close()
    before = balance_of(book, client)
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.goto(f"{server.url}/admin/clients/{client}")
    page.get_by_label("Add credit").check()
    page.get_by_label("Amount").fill("750.00")
    page.get_by_label("Description").fill("Annual prepayment")
    page.get_by_role("button", name="Save").click()
    assert "Sent for approval (request #1)" in page.get_by_role("status").first.inner_text()
    pending = page.locator("#pending-table").inner_text()
    assert "750.00 USD" in pending and "console:manager" in pending
    assert balance_of(book, client) == before
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    row = page.locator("#approvals-table tr[data-request='1']")
    assert "You asked for this change" in row.inner_text()
    assert row.get_by_role("button", name="Approve").count() == 0
    _screenshot(page, "approvals-requester.png", tmp_path)
    # A crafted POST from the requester is refused.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(f"{server.url}/admin/approvals/1/approve", form={"csrf": csrf},
                                headers={"origin": server.url})  # fmt: skip
    assert refused.status == 403 and balance_of(book, client) == before
    page.context.close()

    page = new_page(chromium)
    log_in(page, server, "owner")
    page.goto(f"{server.url}/admin/approvals")
    _screenshot(page, "approvals.png", tmp_path)
    page.locator("#approvals-table tr[data-request='1']").get_by_role(
        "button", name="Approve"
    ).click()
    assert "approved and applied" in page.get_by_role("status").first.inner_text()
    assert balance_of(book, client) == before + 75000
    assert page.get_by_test_id("status-1").inner_text() == "Approved"
    # A second request, rejected with a reason.
    manager = book.ledger.find_admin("manager")
    Approvals(book.ledger).request_credit(
        {"client": str(client), "amount": "900.00", "description": "Too much"},
        Actor("console:manager", manager.id),
    )
    page.goto(f"{server.url}/admin/approvals")
    row = page.locator("#approvals-table tr[data-request='2']")
    row.get_by_label("Reason for rejecting #2").fill("Not agreed with finance")
    row.get_by_role("button", name="Reject").click()
    assert page.get_by_test_id("status-2").inner_text() == "Rejected"
    assert "Not agreed with finance" in page.locator("#decided-table").inner_text()
    assert balance_of(book, client) == before + 75000
    # A request nobody decided in time expires: listed as such, with nothing to press.
    stale = Approvals(book.ledger).request_credit(
        {"client": str(client), "amount": "800.00", "description": "Forgotten"},
        Actor("console:manager", manager.id),
        days=0,
    )
    page.goto(f"{server.url}/admin/approvals")
    assert page.get_by_test_id(f"status-{stale.id}").inner_text() == "Expired"
    assert page.locator(f"#approvals-table tr[data-request='{stale.id}']").count() == 0
    assert balance_of(book, client) == before + 75000
    page.context.close()


def test_two_approvers_on_two_servers_one_decision_wins(
    chromium: Any, site: Any, database: str
) -> None:
    server, book, client = site
    other = Server(database, "--workers", "1", env={"CREDITBOOK_WEBHOOKS": "0"}).start()
    try:
        approvals = Approvals(book.ledger)
        approvals.set_rule("USD", "1.00", False, Actor("test"))
        manager = book.ledger.find_admin("manager")
        book.ledger.add_admin("boss", PASSWORD, access="owner", actor=Actor("test"))
        before = balance_of(book, client)
        request = approvals.request_credit(
            {"client": str(client), "amount": "10.00", "description": "race"},
            Actor("console:manager", manager.id),
        )
        pages = []
        for who, srv in (("owner", server), ("boss", other)):
            page = new_page(chromium)
            log_in(page, srv, who)
            page.goto(f"{srv.url}/admin/approvals")
            pages.append(page)
        barrier = threading.Barrier(2)
        statuses: list[int] = []
        forms = []
        for page, srv in zip(pages, (server, other), strict=True):
            csrf = page.locator("input[name=csrf]").first.get_attribute("value")
            cookies = {c["name"]: c["value"] for c in page.context.cookies()}
            forms.append((srv, csrf, cookies))

        def decide(srv: Any, csrf: str, cookies: dict[str, str], verb: str) -> None:
            with httpx.Client(cookies=cookies, headers={"origin": srv.url}) as http:
                barrier.wait()
                r = http.post(f"{srv.url}/admin/approvals/{request.id}/{verb}",
                              data={"csrf": csrf, "reason": "race"})  # fmt: skip
                statuses.append(r.status_code)

        threads = [threading.Thread(target=decide, args=(*forms[0], "approve")),
                   threading.Thread(target=decide, args=(*forms[1], "reject"))]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [303, 409]
        final = approvals.store.get(request.id)
        assert final is not None and final.status in ("approved", "rejected")
        moved = balance_of(book, client) - before
        assert moved == (1000 if final.status == "approved" else 0)
        for page in pages:
            page.context.close()
    finally:
        other.stop()


def test_totp_enrol_and_log_in_with_codes(chromium: Any, site: Any, tmp_path: Path) -> None:
    server, book, client = site
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Set up an authenticator app").click()
    assert page.locator("figure.qr svg").count() == 1
    secret = page.locator("#totp-secret").inner_text()
    _screenshot(page, "account-totp.png", tmp_path)
    totp = pyotp.TOTP(secret)
    page.get_by_label("Authentication code").fill("123456" if totp.now() != "123456" else "654321")
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_role("alert").inner_text().startswith("That code is not right")
    page.get_by_label("Authentication code").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.context.close()

    page = new_page(chromium)
    log_in(page, server, "manager")
    assert page.url.endswith("/admin/login/code")
    _screenshot(page, "login-code.png", tmp_path)
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    assert "not right" in page.get_by_role("alert").inner_text()
    later = totp.at(dt.datetime.now(dt.UTC).timestamp() + totp.interval)
    page.get_by_label("Authentication code").fill(later)
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("heading", name="Overview").is_visible()
    page.context.close()

    page = new_page(chromium)  # the same code again: refused; a recovery code, once
    log_in(page, server, "manager")
    page.get_by_label("Authentication code").fill(later)
    page.get_by_role("button", name="Continue").click()
    assert "used already" in page.get_by_role("alert").inner_text()
    page.get_by_label("Authentication code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("heading", name="Overview").is_visible()
    page.context.close()
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.get_by_label("Authentication code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("alert").is_visible()
    page.context.close()


def test_require_2fa_sends_an_admin_without_one_to_enrol(
    chromium: Any, site: Any, database: str
) -> None:
    server, book, client = site
    book.store.set_setting("console_require_2fa", "yes", Actor("test"), book.ledger.now())
    page = new_page(chromium)
    log_in(page, server, "viewer")
    assert page.url.endswith("/admin/account")
    assert "needs a second factor" in page.get_by_role("alert").inner_text()
    page.goto(f"{server.url}/admin/clients")
    assert page.url.endswith("/admin/account")  # nothing else until enrolled
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    assert page.locator("#recovery-codes code").count() == 10
    page.get_by_role("link", name="Continue").click()
    assert page.get_by_role("heading", name="Overview").is_visible()
    page.context.close()


def test_a_passkey_through_chromiums_virtual_authenticator(
    chromium: Any, site: Any, tmp_path: Path
) -> None:
    """WebAuthn needs a host name (an address is no relying party): the console is reached at
    localhost. A passkey is registered on the Account page, then used after the password, then
    (an owner's setting) instead of it."""
    server, book, client = site
    base = server.url.replace("127.0.0.1", "localhost")
    page = new_page(chromium)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {"options": {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                     "hasUserVerification": True, "isUserVerified": True,
                     "automaticPresenceSimulation": True}},
    )  # fmt: skip

    def password_login() -> None:
        page.goto(base + "/admin/login")
        page.get_by_label("Username").fill("manager")
        page.get_by_label("Password").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()

    password_login()
    page.goto(base + "/admin/account")
    page.get_by_label("Passkey name").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_selector("#passkeys-table")
    assert "Test laptop" in page.locator("#passkeys-table").inner_text()
    _screenshot(page, "account-passkeys.png", tmp_path)
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    password_login()
    assert page.url.endswith("/admin/login/code")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(base + "/admin/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    book.store.set_setting("console_passkey_login", "yes", Actor("test"), book.ledger.now())
    page.goto(base + "/admin/login")
    page.get_by_label("Username").fill("manager")
    page.get_by_role("button", name="Log in with a passkey").click()
    page.wait_for_url(base + "/admin/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    actions = [a.detail for a in book.ledger.activity() if a.action in ("login", "2fa-enrolled")]
    assert "Passkey 'Test laptop' registered for manager" in actions
    assert "Console login: passkey" in actions
    page.context.close()
