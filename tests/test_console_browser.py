"""The web console in a real Chromium (Debian's package, driven by Playwright), on both stores.

Set ``CREDITBOOK_SCREENSHOTS=DIR`` to keep the screenshots ``docs/console.md`` shows.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import creditbook
from creditbook.model import Actor
from helpers import Server, missing

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"
ACTOR = Actor("test")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def find_chromium() -> str | None:
    """Debian's Chromium, if installed."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for this module: Playwright's synchronous API keeps an event loop
    running on the main thread while it is open, which later tests' ``asyncio.run`` refuses."""
    path = find_chromium()
    if path is None:
        missing("BROWSER", "Chromium not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def site(database: str, tmp_path: Path) -> Iterator[tuple[Server, creditbook.Creditbook, int]]:
    """A running ``creditbook serve`` with an owner, a manager, a viewer, a disabled admin and a
    client holding some history."""
    book = creditbook.open(database)
    for name, level in (("owner", "owner"), ("manager", "manager"), ("viewer", "viewer")):
        book.ledger.add_admin(name, PASSWORD, access=level, actor=ACTOR)
    book.ledger.add_admin("gone", PASSWORD, actor=ACTOR)
    book.ledger.set_admin_disabled("gone", True, actor=ACTOR)
    client = book.ledger.add_client(
        firstname="Ann", lastname="Lee", email="ann@example.com", companyname="Lee Ltd", actor=ACTOR
    ).client_id
    book.ledger.add_client(firstname="Bo", lastname="Ng", email="bo@example.com", actor=ACTOR)
    for day, amount in ((3, "40.00"), (9, "15.00"), (20, "7.50")):
        book.ledger.add_credit(
            clientid=str(client),
            amount=amount,
            description=f"Prepayment {day}",
            date=f"2026-10-{day:02d}",
            actor=ACTOR,
        )
    server = Server(database, "--workers", "1", env={"CREDITBOOK_WEBHOOKS": "0"}).start()
    try:
        yield server, book, client
    finally:
        server.stop()
        book.close()


def new_page(chromium: Any) -> Any:
    context = chromium.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def log_in(page: Any, server: Server, username: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    # The form posts to /admin/ itself: wait for that page, or the next step races it.
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def balance(page: Any) -> str:
    return str(page.get_by_test_id("balance").inner_text())


def test_log_in_good_wrong_disabled_throttled(chromium: Any, site: Any) -> None:
    server, book, _ = site
    page = new_page(chromium)
    # keyboard only: the username field has focus, Tab to the password, Enter submits
    page.goto(server.url + "/admin")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("owner")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Overview", "Clients", "Activity", "API access"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    nav.get_by_role("button", name="Log out").click()
    assert page.get_by_role("button", name="Log in").is_visible()
    page.goto(server.url + "/admin/clients")
    assert page.url.startswith(server.url + "/admin/login")  # logging out ended the session

    log_in(page, server, "nobody")
    assert page.get_by_role("alert").inner_text() == "Wrong username or password"
    log_in(page, server, "gone")  # disabled: told as a wrong password is, never confirmed
    assert page.get_by_role("alert").inner_text() == "Wrong username or password"
    for _ in range(2):
        log_in(page, server, "manager", "wrong password")
    alert = page.get_by_role("alert").inner_text()
    assert alert.endswith("One more failed login blocks logins for 15 minutes.")  # warned
    log_in(page, server, "manager", "wrong password")
    log_in(page, server, "manager")  # three failures of this username here: throttled
    assert page.get_by_role("alert").inner_text().startswith("Too many failed logins: try again")
    page.context.close()


def test_find_a_client_change_credit_and_reverse(chromium: Any, site: Any) -> None:
    server, book, client = site
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients").click()
    page.get_by_label("Search").fill("lee ltd")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="Ann Lee").click()
    assert balance(page) == "62.50"
    chart = page.get_by_role("img", name=f"Balance of client {client} over time")
    assert "62.50" in str(chart.locator("desc").text_content())

    page.get_by_label("Add credit").check()
    page.get_by_label("Amount").fill("12.25")
    page.get_by_label("Description").fill("Goodwill for the outage")
    page.get_by_label("Date").fill("2026-11-02")
    page.get_by_role("button", name="Save").click()
    assert balance(page) == "74.75"
    first_row = page.locator("#history-table tbody tr").first
    assert "Goodwill for the outage" in first_row.inner_text()
    assert "74.75" in first_row.inner_text()  # running balance
    assert "2026-11-02" in first_row.inner_text()
    assert "74.75" in str(chart.locator("desc").text_content())

    page.get_by_label("Remove credit").check()
    page.get_by_label("Amount").fill("500.00")
    page.get_by_label("Description").fill("Too much")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("alert").inner_text() == "Amount exceeds customer credit balance"
    assert balance(page) == "74.75"

    page.get_by_label("Remove credit").check()
    page.get_by_label("Amount").fill("4.75")
    page.get_by_label("Description").fill("Applied to invoice 7")
    page.get_by_role("button", name="Save").click()
    assert balance(page) == "70.00"

    # two tabs on the same page: reverse in one, then the stale other tries again
    stale = page.context.new_page()
    stale.goto(page.url)
    row = page.locator("#history-table tbody tr", has_text="Applied to invoice 7")
    row.get_by_role("button", name="Reverse").click()
    assert balance(page) == "74.75"
    reversal = page.locator("#history-table tbody tr").first
    assert "Reversal of entry #" in reversal.inner_text()
    stale_row = stale.locator("#history-table tbody tr", has_text="Applied to invoice 7")
    stale_row.get_by_role("button", name="Reverse").click()
    assert stale.get_by_role("alert").inner_text() == "This entry has already been reversed"
    assert balance(stale) == "74.75"
    assert book.ledger.get_client(str(client)).balance_cents == 7475
    page.context.close()


def test_bulk_preview_then_apply_twice_credits_once(
    chromium: Any, site: Any, tmp_path: Path
) -> None:
    """The preview applies nothing; Apply applies the valid rows and offers the rejected ones
    as a CSV file; the same rows re-saved by a spreadsheet are recognised and left out unless
    ticked in (hardening item 4)."""
    server, book, client = site
    data = tmp_path / "credits.csv"
    rows = [
        "clientid,email,amount,description",
        f"{client},,5.00,Loyalty bonus",
        ",bo@example.com,2.50,Loyalty bonus",
        "424242,,1.00,Nobody",
        f"{client},,-999.00,Too much",
    ]
    data.write_text("\n".join(rows) + "\n")
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.goto(server.url + "/admin/bulk")
    page.get_by_label("CSV file").set_input_files(str(data))
    page.get_by_role("button", name="Preview").click()
    assert (
        page.locator("#preview-summary")
        .inner_text()
        .startswith("4 rows: 2 can be applied, 2 have errors")
    )
    assert page.locator("#preview-totals").inner_text() == "Total to apply: 7.50 USD"
    table = page.locator("#preview-table").inner_text()
    assert "Client Not Found" in table
    assert "Amount exceeds customer credit balance (available: 67.50)" in table
    assert book.ledger.get_client(str(client)).balance_cents == 6250  # nothing applied
    _screenshot(page, "bulk-preview.png", tmp_path)
    page.get_by_role("button", name="Apply 2 rows").click()
    assert page.locator("#bulk-summary").inner_text().startswith("Done: 2 applied")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the 2 rejected rows").click()
    rejected = tmp_path / "rejected.csv"
    info.value.save_as(rejected)
    assert info.value.suggested_filename == "credits-rejected-rows.csv"
    got = list(csv.DictReader(io.StringIO(rejected.read_text())))
    assert [(r["clientid"], r["description"]) for r in got] == [
        ("424242", "Nobody"),
        (str(client), "Too much"),
    ]
    # The same rows re-saved by a spreadsheet: recognised, left out unless ticked in.
    data.write_text("\r\n".join(rows).replace("clientid", "ClientID") + "\r\n\r\n")
    page.goto(server.url + "/admin/bulk")
    page.get_by_label("CSV file").set_input_files(str(data))
    page.get_by_role("button", name="Preview").click()
    summary = page.locator("#preview-summary").inner_text()
    assert "2 were already applied and are left out" in summary
    today = book.ledger.today()
    assert (
        f"already applied on {today} from credits.csv"
        in page.locator("#preview-table").inner_text()
    )
    page.get_by_role("row", name="bo@example.com").get_by_label("apply again").check()
    page.get_by_role("button", name="Apply 0 rows").click()
    assert page.locator("#bulk-summary").inner_text().startswith("Done: 1 applied")
    assert book.ledger.get_client(str(client)).balance_cents == 6750
    assert book.ledger.get_client(email="bo@example.com").balance_cents == 500
    page.context.close()


def test_export_matches_the_filtered_history(chromium: Any, site: Any, tmp_path: Path) -> None:
    server, book, client = site
    page = new_page(chromium)
    log_in(page, server, "viewer")
    page.goto(f"{server.url}/admin/clients/{client}")
    page.get_by_label("From", exact=True).fill("2026-10-05")
    page.get_by_label("To", exact=True).fill("2026-10-31")
    page.get_by_role("button", name="Filter").click()
    shown = [
        row.get_attribute("data-entry")
        for row in page.locator("#history-table tbody tr[data-entry]").all()
    ]
    assert len(shown) == 2
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    path = tmp_path / "export.csv"
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["id"] for r in rows] == shown
    assert [r["description"] for r in rows] == ["Prepayment 20", "Prepayment 9"]
    page.context.close()


def test_viewer_cannot_change_anything(chromium: Any, site: Any) -> None:
    server, book, client = site
    page = new_page(chromium)
    log_in(page, server, "viewer")
    page.goto(f"{server.url}/admin/clients/{client}")
    assert page.get_by_role("button", name="Reverse").count() == 0
    assert page.get_by_role("button", name="Save").count() == 0
    assert page.get_by_role("link", name="API access").count() == 0
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    response = page.request.post(
        f"{server.url}/admin/clients/{client}/credit",
        form={"csrf": token, "type": "add", "amount": "1.00", "description": "sneaky"},
        headers={"origin": server.url},
    )
    assert response.status == 403
    assert book.ledger.get_client(str(client)).balance_cents == 6250
    page.context.close()


def test_screenshots(chromium: Any, site: Any, tmp_path: Path) -> None:
    """The overview and a client page, for docs/console.md (kept with CREDITBOOK_SCREENSHOTS)."""
    server, book, client = site
    for i, (first, last, company) in enumerate(
        (("Cara", "Diaz", "Diaz Hosting"), ("Dev", "Iyer", ""), ("Eli", "Moss", "Moss & Co"))
    ):
        other = book.ledger.add_client(
            firstname=first,
            lastname=last,
            email=f"{first.lower()}@example.com",
            companyname=company,
            actor=ACTOR,
        ).client_id
        book.ledger.add_credit(
            clientid=str(other), amount=f"{(i + 1) * 23}.40", description="Prepayment", actor=ACTOR
        )
    for day, amount, kind in ((4, "8.00", "remove"), (12, "30.00", "add"), (25, "11.20", "remove")):
        book.ledger.add_credit(
            clientid=str(client),
            amount=amount,
            type=kind,
            description="Applied to invoice" if kind == "remove" else "Goodwill credit",
            date=f"2026-11-{day:02d}",
            actor=Actor("console:manager", 2, "192.0.2.7"),
        )
    page = new_page(chromium)
    log_in(page, server, "owner")
    # Waits: the login form posts to /admin/ too, so the URL alone does not say the overview
    # has loaded (an immediate check failed once under CI load).
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    _screenshot(page, "overview.png", tmp_path)
    page.goto(f"{server.url}/admin/clients/{client}")
    _screenshot(page, "client.png", tmp_path)
    phone = chromium.new_context(viewport={"width": 390, "height": 844})
    small = phone.new_page()
    small.goto(page.url)
    small.context.add_cookies(page.context.cookies())
    small.goto(f"{server.url}/admin/clients/{client}")
    assert small.get_by_test_id("balance").is_visible()
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width  # readable on a phone: no sideways scrolling of the page
    phone.close()
    page.context.close()


def _screenshot(page: Any, name: str, tmp_path: Path) -> None:
    folder = os.environ.get("CREDITBOOK_SCREENSHOTS")
    target = Path(folder) if folder else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)
