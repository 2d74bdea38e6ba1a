"""The Reports page in a real Chromium: a viewer reads October's roll-forward, by category, the
late entries and the monthly chart, and exports it as CSV; a bad period is said, not a 500."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from test_console_browser import _screenshot, chromium, log_in, new_page, site

__all__ = ["chromium", "site"]
pytestmark = pytest.mark.slow


def test_a_viewer_reads_the_rollforward(chromium: Any, site: Any, tmp_path: Path) -> None:
    server, book, client = site
    page = new_page(chromium)
    log_in(page, server, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.get_by_label("From (YYYY-MM-DD)").fill("2026-10-01")
    page.get_by_label("To (YYYY-MM-DD)").fill("2026-10-31")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_test_id("closing-USD-all").inner_text() == "62.50"
    row = page.locator("#rollforward tbody tr").first.inner_text()
    assert "0.00" in row and "62.50" in row  # opening 0.00, added 62.50
    assert page.locator("#checked").inner_text().startswith("Checked: opening + added")
    # The fixture's October entries were recorded after October ended (today).
    assert page.locator("#late-entries tbody tr").count() == 3
    assert "Closing USD credit, month by month" in (
        page.locator("svg title").first.text_content() or ""
    )
    assert "2026-10-31" in page.locator("figcaption").first.inner_text()
    page.get_by_label("A row per credit category").check()
    page.get_by_role("button", name="Show").click()
    assert page.get_by_test_id("closing-USD-paid").inner_text() == "62.50"
    assert page.get_by_test_id("closing-USD-promotional").inner_text() == "0.00"
    _screenshot(page, "reports.png", tmp_path)
    with page.expect_download() as info:
        page.get_by_role("button", name="Export CSV").click()
    target = tmp_path / "r.csv"
    info.value.save_as(target)
    assert info.value.suggested_filename == "rollforward-2026-10-01-to-2026-10-31-category.csv"
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows[0]["category"] == "paid" and rows[0]["closing"] == "62.50"
    assert rows[0]["clients"] == "1"
    page.get_by_label("From (YYYY-MM-DD)").fill("2026-11-31")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_role("alert").inner_text() == "--from must be a date, YYYY-MM-DD"
    assert book.store.get_client(client) is not None
    page.context.close()
