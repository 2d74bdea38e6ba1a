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
    key = str(tmp_path / "secret.key")  # two-factor secrets (PostgreSQL names no file itself)
    env = {"CREDITBOOK_WEBHOOKS": "0", "CREDITBOOK_SECRET_KEY_FILE": key}
    server = Server(database, "--workers", "1", env=env).start()
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
    chart = page.get_by_role("img", name="Balance of Ann Lee (USD)")
    assert "62.50" in str(chart.locator("desc").text_content())

    page.get_by_label("Add credit").check()
    page.get_by_label("Amount").fill("12.25")
    page.get_by_label("Description").fill("Goodwill for the outage")
    page.get_by_label("Date").fill("2026-11-02")
    page.get_by_role("button", name="Save").click()
    assert balance(page) == "74.75"
    assert page.get_by_role("status").first.inner_text() == (
        "Added 12.25 USD to Ann Lee: the balance is now 74.75 USD."
    )
    first_row = page.locator("#history-table tbody tr").first
    assert "Goodwill for the outage" in first_row.inner_text()
    assert "74.75" in first_row.inner_text()  # running balance
    assert "2026-11-02" in first_row.inner_text()
    assert "74.75" in str(chart.locator("desc").text_content())

    page.get_by_label("Remove credit").check()
    page.get_by_label("Amount").fill("500.00")
    page.get_by_label("Description").fill("Too much")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("alert").inner_text() == (
        "Amount exceeds customer credit balance: 74.75 USD is available"
    )
    assert page.evaluate("document.activeElement.id") == "amount"  # the field in error
    assert page.get_by_label("Amount").get_attribute("aria-invalid") == "true"
    assert balance(page) == "74.75"

    page.get_by_label("Remove credit").check()
    page.get_by_label("Amount").fill("4.75")
    page.get_by_label("Description").fill("Applied to invoice 7")
    page.get_by_role("button", name="Save").click()
    assert balance(page) == "70.00"

    # two tabs on the same entry: reverse in one, then the stale other tries again
    row = page.locator("#history-table tbody tr", has_text="Applied to invoice 7")
    row.get_by_role("button", name="Reverse").click()
    stale = page.context.new_page()
    stale.goto(page.url)
    assert page.get_by_test_id("balance-after").inner_text() == "74.75 USD"
    page.get_by_label("Reason").fill("Invoice 7 was cancelled")
    page.get_by_role("button", name="Confirm reversal").click()
    assert balance(page) == "74.75"
    reversal = page.locator("#history-table tbody tr").first  # dated today: the newest
    assert "Reversal of entry #" in reversal.inner_text()
    assert "Invoice 7 was cancelled" in reversal.inner_text()
    stale.get_by_label("Reason").fill("again")
    stale.get_by_role("button", name="Confirm reversal").click()
    assert (
        stale.get_by_role("alert")
        .inner_text()
        .endswith("cannot be reversed: This entry has already been reversed")
    )
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
    assert page.get_by_role("link", name="Edit client").count() == 0
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


def _more_clients(book: creditbook.Creditbook) -> None:
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


def test_screenshots(chromium: Any, site: Any, tmp_path: Path) -> None:
    """The overview and a client page with a back-dated entry, for docs/console.md (kept with
    CREDITBOOK_SCREENSHOTS); the history reads in date order and adds up."""
    server, book, client = site
    _more_clients(book)
    for day, amount, kind in ((4, "8.00", "remove"), (25, "11.20", "remove"), (12, "30.00", "add")):
        book.ledger.add_credit(
            clientid=str(client),
            amount=amount,
            type=kind,
            description="Applied to invoice" if kind == "remove" else "Goodwill credit, back-dated",
            date=f"2026-11-{day:02d}",
            actor=Actor("console:manager", 2, "192.0.2.7"),
        )
    page = new_page(chromium)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, server, "owner")
    # Waits: the login form posts to /admin/ too, so the URL alone does not say the overview
    # has loaded (an immediate check failed once under CI load).
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    _screenshot(page, "overview.png", tmp_path)
    page.goto(f"{server.url}/admin/clients/{client}")
    rows = page.locator("#history-table tbody tr").all()
    dated = [r.locator("td").nth(2).inner_text() for r in rows]
    assert dated == sorted(dated, reverse=True)  # in date order, the back-dated one included
    amounts = [float(r.locator("td.num").nth(0).inner_text().replace(",", "")) for r in rows]
    balances = [float(r.locator("td.num").nth(1).inner_text().replace(",", "")) for r in rows]
    for i in range(len(rows) - 1):
        assert round(balances[i] - amounts[i], 2) == balances[i + 1]  # adds up down the page
    chart = page.get_by_role("img", name="Balance of Ann Lee (USD)")
    assert chart.locator("text", has_text="Balance (USD)").count() == 1
    assert chart.locator("text", has_text="Date").count() == 1
    _screenshot(page, "client.png", tmp_path)
    page.context.close()


def test_phone_width_needs_no_sideways_scrolling(chromium: Any, site: Any, tmp_path: Path) -> None:
    """At 390 px the history's amounts and balances, and the API access page, fit."""
    server, book, client = site
    book.ledger.add_credential("owner", description="Billing robot", actor=ACTOR)
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, server, "owner")
    page.goto(f"{server.url}/admin/clients/{client}")
    assert page.get_by_test_id("balance").is_visible()
    table = page.locator("#history-table")
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")
    for column in ("Amount", "Balance"):
        header = table.get_by_role("columnheader", name=column)
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, (column, box)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    _screenshot(page, "phone.png", tmp_path)
    page.goto(f"{server.url}/admin/access")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    for wrapper in page.locator(".overflow-auto").all():
        assert wrapper.evaluate("w => w.scrollWidth <= w.clientWidth + 1"), wrapper.inner_text()[
            :80
        ]
    context.close()


def test_double_click_saves_once_and_reverse_asks(chromium: Any, site: Any, tmp_path: Path) -> None:
    """A double-clicked Save applies once; Reverse shows the entry, the balance after and a
    required reason (screenshot for docs/console.md); the two entries link both ways."""
    server, book, client = site
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.goto(f"{server.url}/admin/clients/{client}")
    page.get_by_label("Amount").fill("10.00")
    page.get_by_label("Description").fill("Double-clicked")
    page.get_by_role("button", name="Save").dblclick()
    expect(page.get_by_role("status").first).to_contain_text("the balance is")
    assert book.ledger.get_client(str(client)).balance_cents == 7250
    row = page.locator("#history-table tbody tr", has_text="Prepayment 20")
    row.get_by_role("button", name="Reverse").click()
    expect(page.get_by_role("heading", name="Reverse entry")).to_be_visible()
    assert page.get_by_test_id("reversal-amount").inner_text() == "-7.50 USD"
    assert page.get_by_test_id("balance-after").inner_text() == "65.00 USD"
    page.get_by_role("button", name="Confirm reversal").click()  # no reason: the browser asks
    assert page.get_by_label("Reason").evaluate("e => !e.validity.valid")
    page.get_by_label("Reason").fill("Charged twice")
    _screenshot(page, "reverse.png", tmp_path)
    page.get_by_role("button", name="Confirm reversal").click()
    assert balance(page) == "65.00"
    reversal = page.locator("#history-table tbody tr").first
    reversal.get_by_role("link", name="entry #").click()
    expect(page.get_by_role("heading", name="Entry #")).to_be_visible()
    assert "Reversed" in page.locator("dl.facts").inner_text()
    page.context.close()


def test_client_edit_and_new_client(chromium: Any, site: Any, tmp_path: Path) -> None:
    """A manager corrects a client (screenshot) and creates one; a bad e-mail is marked."""
    server, book, client = site
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.goto(f"{server.url}/admin/clients/{client}")
    page.get_by_role("link", name="Edit client").click()
    assert page.get_by_label("Currency").get_attribute("readonly") is not None  # has entries
    page.get_by_label("City").fill("Tromsø")
    page.get_by_label("Phone").fill("+47 22 33 44 55")
    _screenshot(page, "client-edit.png", tmp_path)
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").first).to_have_text(
        f"Client {client} updated: city, phone number."
    )
    assert book.ledger.get_client(str(client)).details["city"] == "Tromsø"
    page.goto(f"{server.url}/admin/clients")
    page.get_by_role("button", name="New client").click()
    page.get_by_label("First name").fill("Ola")
    page.get_by_label("Last name").fill("Nordmann")
    page.get_by_label("E-mail").fill("ann@example.com")  # taken
    page.get_by_role("button", name="Create client").click()
    assert page.get_by_role("alert").inner_text() == "A user already exists with that email address"
    assert page.evaluate("document.activeElement.id") == "f-email"
    page.get_by_label("E-mail").fill("ola@example.no")
    page.get_by_label("Currency").select_option("NOK")
    page.get_by_role("button", name="Create client").click()
    expect(page.get_by_role("heading", name="Ola Nordmann")).to_be_visible()
    assert book.ledger.get_client(email="ola@example.no").currency_code == "NOK"
    page.context.close()


def test_layout_search_focus_and_skip_link(chromium: Any, site: Any) -> None:
    """The client list's filter row is laid out at desktop width, Export CSV apart from the
    buttons; accents are ignored in a search; focus rings show on outline buttons; the skip
    link does not cover the title; the activity log's detail fits at 1280 px."""
    server, book, client = site
    book.ledger.add_client(
        firstname="Åsa", lastname="Ångström", email="asa@example.se", actor=ACTOR
    )
    book.ledger.add_credential("owner", description="Billing robot", actor=ACTOR)
    page = new_page(chromium)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, server, "owner")
    page.goto(f"{server.url}/admin/clients")
    search = page.get_by_label("Search").bounding_box()
    show = page.get_by_role("button", name="Show").bounding_box()
    export = page.get_by_role("link", name="Export CSV").bounding_box()
    assert search is not None and show is not None and export is not None
    assert search["width"] >= 300, search
    assert show["height"] <= 72 and show["width"] <= 200, show  # was a 345x100 block
    assert export["x"] - (show["x"] + show["width"]) >= 40, (show, export)
    page.get_by_label("Search").fill("angstrom")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_role("link", name="Åsa Ångström").is_visible()
    page.goto(f"{server.url}/admin/clients/{client}")
    page.keyboard.press("Tab")  # the skip link
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box, title = skip.bounding_box(), page.get_by_role("heading", level=1).bounding_box()
    assert box is not None and title is not None
    assert box["y"] + box["height"] <= title["y"] or box["x"] > title["x"] + title["width"]
    logout = page.get_by_role("button", name="Log out")
    logout.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # focused from the keyboard: :focus-visible
    width = logout.evaluate("b => parseFloat(getComputedStyle(b).outlineWidth)")
    style = logout.evaluate("b => getComputedStyle(b).outlineStyle")
    assert width >= 2 and style != "none", (width, style)
    book.ledger.add_credit(clientid=str(client), amount="1", description="x", actor=ACTOR)
    page.goto(f"{server.url}/admin/activity")
    detail = page.get_by_role("columnheader", name="Detail").bounding_box()
    assert detail is not None and detail["x"] + detail["width"] <= 1280, detail
    robot = page.get_by_role("cell", name="Billing robot")
    assert robot.count() >= 0
    page.context.close()


def _screenshot(page: Any, name: str, tmp_path: Path) -> None:
    folder = os.environ.get("CREDITBOOK_SCREENSHOTS")
    target = Path(folder) if folder else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)


def test_grants_alerts_and_credit_settings(chromium: Any, site: Any, tmp_path: Path) -> None:
    """A manager adds promotional credit that expires and sees it spent first; the client page
    lists open credit soonest expiry first and takes a low-balance alert; the overview splits
    what is owed by category and shows what expires within 30 days; an owner's credit settings
    add a category and refuse to make paid credit expire unconfirmed."""
    import datetime as dt

    server, book, client = site
    soon = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    page = new_page(chromium)
    log_in(page, server, "manager")
    page.goto(f"{server.url}/admin/clients/{client}")
    page.get_by_label("Add credit").check()
    page.get_by_label("Amount").fill("10.00")
    page.get_by_label("Description").fill("Launch promotion")
    page.get_by_label("Category").select_option("promotional")
    page.get_by_label("Expires").fill(soon)
    page.get_by_role("button", name="Save").click()
    assert balance(page) == "72.50"
    assert page.get_by_test_id("split").inner_text() == "Paid 62.50 · Promotional 10.00"
    first = page.locator("#grants-table tbody tr").first
    assert "Promotional" in first.inner_text() and soon in first.inner_text()
    page.get_by_label("Add credit").check()
    page.get_by_label("Amount").fill("1.00")
    page.get_by_label("Description").fill("Bad date")
    page.get_by_label("Expires").fill("2020-01-01")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("alert").inner_text().startswith("Expiry date must be")
    assert page.evaluate("document.activeElement.id") == "expires"
    page.get_by_label("Remove credit").check()
    page.get_by_label("Amount").fill("12.00")
    page.get_by_label("Description").fill("Invoice 9")
    page.get_by_label("Expires").fill("")
    page.get_by_role("button", name="Save").click()
    assert balance(page) == "60.50"
    row = page.locator("#history-table tbody tr", has_text="Invoice 9")
    assert "From #" in row.inner_text() and "10.00" in row.inner_text()
    assert "Promotional" not in page.locator("#grants-table").inner_text()  # all spent
    page.get_by_label("Alert below (USD)").fill("100")
    page.get_by_role("button", name="Set alert").click()
    assert page.get_by_test_id("threshold").inner_text() == "100.00 USD"
    assert page.get_by_test_id("below-threshold").is_visible()
    _screenshot(page, "grants.png", tmp_path)
    page.goto(f"{server.url}/admin/clients?status=below")
    assert page.get_by_role("link", name="Ann Lee").is_visible()
    assert page.get_by_role("link", name="Bo Ng").count() == 0
    page.context.close()

    page = new_page(chromium)
    log_in(page, server, "owner")
    book.ledger.add_credit(clientid=str(client), amount="3.00", description="Goodwill",
                           category="goodwill", expires=soon, actor=ACTOR)  # fmt: skip
    page.goto(server.url + "/admin/")
    assert page.get_by_test_id("owed-USD-goodwill").inner_text() == "3.00"
    assert page.get_by_test_id("owed-USD-paid").inner_text() == "60.50"
    assert page.get_by_test_id("expiring-USD-goodwill").inner_text() == "3.00"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Credit settings").click()
    page.get_by_label("Category", exact=True).fill("paid")
    page.get_by_label("Expires after (days; 0: never)").fill("30")
    page.get_by_role("button", name="Save category").click()
    assert page.get_by_role("alert").inner_text() == (
        "Paid credit is the client's money: confirm to make it expire"
    )
    page.get_by_label("Category", exact=True).fill("Referral")
    page.get_by_label("Expires after (days; 0: never)").fill("45")
    page.get_by_role("button", name="Save category").click()
    assert (
        "Category referral: its credit expires 45 days"
        in page.get_by_role("status").first.inner_text()
    )
    assert "45 days" in page.locator("#categories-table tr", has_text="Referral").inner_text()
    page.get_by_label("Currency", exact=True).fill("USD")
    page.get_by_label("Alert below").fill("20")
    page.get_by_role("button", name="Set alert").click()
    assert "Every client (default)" in page.locator("#alerts-table").inner_text()
    _screenshot(page, "credit-settings.png", tmp_path)
    page.context.close()
