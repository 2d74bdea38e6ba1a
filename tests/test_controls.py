"""Four-eyes approval and two-factor login over HTTP and the CLI, on both stores: rules, requests,
decisions (never by the requester; one wins), expiry, webhooks events; TOTP enrolment, codes
valid once, recovery codes, throttling, ``console_require_2fa``, the activity log."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

import creditbook
from console_client import ConsoleClient
from creditbook.approvals import AlreadyDecided, Approvals
from creditbook.cli import main
from creditbook.config import Settings
from creditbook.http import create_app
from creditbook.model import Actor
from test_console import PASSWORD, Desk

ACTOR = Actor("test")


@pytest.fixture
def desk(database: str, tmp_path: Path) -> Iterator[Desk]:
    book = creditbook.open(database)
    for name, level in (("owner", "owner"), ("manager", "manager"), ("boss", "manager"),
                        ("viewer", "viewer")):  # fmt: skip
        book.ledger.add_admin(name, PASSWORD, access=level, actor=ACTOR)
    client = book.ledger.add_client(firstname="Ann", lastname="Lee", email="ann@example.com",
                                    actor=ACTOR)  # fmt: skip
    book.ledger.add_credit(clientid=str(client.client_id), amount="100.00", description="seed",
                           actor=ACTOR)  # fmt: skip
    settings = Settings(database=database, access_log=False, pg_listen=False, webhooks=False,
                        secret_key_file=str(tmp_path / "key"))  # fmt: skip
    app = create_app(settings)
    try:
        yield Desk(app, book, client.client_id)
    finally:
        app.store.close()
        book.close()


def send_credit(browser: ConsoleClient, desk: Desk, amount: str, kind: str = "add") -> Any:
    page = browser.get(f"/admin/clients/{desk.client_id}")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    return browser.post(
        f"/admin/clients/{desk.client_id}/credit",
        {"csrf": page.csrf(), "type": kind, "amount": amount, "description": "Big one",
         "token": token.group(1) if token else ""},
    )  # fmt: skip


def test_a_large_change_waits_and_one_other_person_decides(desk: Desk) -> None:
    Approvals(desk.book.ledger).set_rule("usd", "500.00", False, ACTOR)
    manager = desk.logged_in("manager")
    sent = send_credit(manager, desk, "600.00")
    assert sent.status == 303
    page = manager.get(f"/admin/clients/{desk.client_id}")
    assert "Sent for approval (request #1)" in page.text and "Waiting for approval" in page.text
    assert desk.cents() == 10000  # not applied
    assert send_credit(manager, desk, "50.00").status == 303  # below the rule: applied
    assert desk.cents() == 15000
    # The requester sees no buttons, and a crafted POST is refused.
    listing = manager.get("/admin/approvals")
    assert (
        "You asked for this change" in listing.text and "/approvals/1/approve" not in listing.text
    )
    crafted = manager.post("/admin/approvals/1/approve", {"csrf": listing.csrf()})
    assert crafted.status == 403 and desk.cents() == 15000
    viewer = desk.logged_in("viewer")
    assert viewer.get("/admin/approvals").status == 403
    owner = desk.logged_in("owner")
    listing = owner.get("/admin/approvals")
    assert "/approvals/1/approve" in listing.text
    done = owner.post("/admin/approvals/1/approve", {"csrf": listing.csrf()})
    assert done.status == 303 and desk.cents() == 75000
    again = owner.post("/admin/approvals/1/approve", {"csrf": listing.csrf()})
    assert again.status == 409 and desk.cents() == 75000  # applied once
    entries = list(desk.book.ledger.get_credits(str(desk.client_id))[2])
    newest = entries[-1]
    assert newest.description == "Big one (approval #1)"
    actor = desk.book.store.chain_entries(desk.client_id, desk.client_id)
    assert any(e.actor == "console:manager, approved by console:owner" for e in actor)
    log = [a.action for a in desk.book.ledger.activity()]
    assert "approval-requested" in log and "approval-decided" in log


def test_reject_needs_a_reason_and_a_refused_removal_stays_refused(desk: Desk) -> None:
    Approvals(desk.book.ledger).set_rule("USD", "1000.00", True, ACTOR)
    manager = desk.logged_in("manager")
    assert send_credit(manager, desk, "80.00", "remove").status == 303  # every removal waits
    assert send_credit(manager, desk, "70.00", "remove").status == 303
    boss = desk.logged_in("boss")
    listing = boss.get("/admin/approvals")
    no_reason = boss.post("/admin/approvals/1/reject", {"csrf": listing.csrf(), "reason": " "})
    assert no_reason.status == 400 and "reason" in no_reason.text
    assert boss.post("/admin/approvals/1/approve", {"csrf": listing.csrf()}).status == 303
    assert desk.cents() == 2000
    # 70.00 no longer fits the balance of 20.00: approved, refused by the ledger, listed.
    assert boss.post("/admin/approvals/2/approve", {"csrf": listing.csrf()}).status == 303
    request = Approvals(desk.book.ledger).store.get(2)
    assert request is not None and request.status == "refused"
    assert "exceeds" in request.result.lower() and desk.cents() == 2000
    assert send_credit(manager, desk, "5.00", "remove").status == 303
    rejected = boss.post("/admin/approvals/3/reject", {"csrf": listing.csrf(), "reason": "No"})
    assert rejected.status == 303
    page = boss.get("/admin/approvals")
    assert 'data-testid="status-3">Rejected' in page.text
    assert 'data-testid="status-2">Refused' in page.text


def test_a_reversal_above_the_rule_waits_and_requests_expire(desk: Desk) -> None:
    ledger = desk.book.ledger
    approvals = Approvals(ledger)
    approvals.set_rule("USD", "50.00", False, ACTOR)
    entry = list(ledger.get_credits(str(desk.client_id))[2])[0]
    manager = desk.logged_in("manager")
    form = manager.get(f"/admin/entries/{entry.id}/reverse")
    sent = manager.post(f"/admin/entries/{entry.id}/reverse",
                        {"csrf": form.csrf(), "reason": "Duplicate"})  # fmt: skip
    assert sent.status == 303 and desk.cents() == 10000
    found = approvals.store.get(1)
    assert found is not None and (found.kind, found.entry_id) == ("reversal", entry.id)
    # Seven days later nobody can decide it.
    ledger.clock = lambda tz: dt.datetime.now(dt.UTC).astimezone(tz) + dt.timedelta(days=8)
    owner = ledger.find_admin("owner")
    assert owner is not None
    with pytest.raises(AlreadyDecided):
        approvals.decide(1, True, owner, Actor("console:owner", owner.id))
    assert approvals.pending() == [] and approvals.store.get(1).status == "expired"  # type: ignore[union-attr]
    assert desk.cents() == 10000


def test_two_approvers_at_once_one_decision_wins(desk: Desk) -> None:
    ledger = desk.book.ledger
    approvals = Approvals(ledger)
    approvals.set_rule("USD", "1.00", False, ACTOR)
    manager = ledger.find_admin("manager")
    assert manager is not None
    asked = {"client": str(desk.client_id), "amount": "10.00", "description": "x"}
    for _ in range(5):
        approvals.request_credit(asked, Actor("console:manager", manager.id))
    deciders = [ledger.find_admin(n) for n in ("owner", "boss")]
    outcomes: list[str] = []

    def decide(admin: Any, approve: bool, request_id: int) -> None:
        try:
            approvals.decide(request_id, approve, admin, Actor(f"console:{admin.username}",
                             admin.id), "no")  # fmt: skip
            outcomes.append("won")
        except AlreadyDecided:
            outcomes.append("lost")

    for request_id in range(1, 6):
        threads = [threading.Thread(target=decide, args=(a, i == 0, request_id))
                   for i, a in enumerate(deciders)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert outcomes.count("won") == 5 and outcomes.count("lost") == 5
    approved = [approvals.store.get(i).status for i in range(1, 6)]  # type: ignore[union-attr]
    assert desk.cents() == 10000 + 1000 * approved.count("approved")


def test_the_cli_sets_rules_and_lists_requests(desk: Desk, database: str, capsys: Any) -> None:
    assert main(["approval", "set", "--currency", "usd", "--above", "500", "--removals",
                 "--database", database]) == 0  # fmt: skip
    assert "USD console changes above 500.00 and every removal" in capsys.readouterr().out
    assert main(["approval", "set", "--currency", "USD", "--above", "5.555",
                 "--database", database]) == 1  # fmt: skip
    assert "at most two decimals" in capsys.readouterr().err
    manager = desk.logged_in("manager")
    send_credit(manager, desk, "1.00", "remove")
    assert main(["approvals", "--json", "--database", database]) == 0
    pending = json.loads(capsys.readouterr().out)
    assert [(p["id"], p["kind"], p["amount"], p["requester"]) for p in pending] == [
        (1, "remove", "1.00", "console:manager")
    ]
    assert main(["approval", "list", "--json", "--database", database]) == 0
    assert json.loads(capsys.readouterr().out) == [{"currency": "USD", "above": "500.00",
                                                    "removals": True}]  # fmt: skip
    assert main(["approval", "remove", "--currency", "USD", "--database", database]) == 0
    capsys.readouterr()
    # The CLI is the operator: its changes are not subject to rules.
    assert main(["credit", "add", str(desk.client_id), "900", "--description", "op",
                 "--database", database]) == 0  # fmt: skip


def code_now(secret: str, offset: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.at(dt.datetime.now(dt.UTC).timestamp() + offset * totp.interval)


def enrol(browser: ConsoleClient) -> tuple[str, list[str]]:
    page = browser.get("/admin/account")
    page = browser.post("/admin/account/totp/start", {"csrf": page.csrf()})
    page = browser.get("/admin/account")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret and "<svg" in page.text
    done = browser.post("/admin/account/totp/confirm",
                        {"csrf": page.csrf(), "code": code_now(secret.group(1))})  # fmt: skip
    assert done.status == 200, done.text
    codes = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", done.text)
    assert len(codes) == 10
    return secret.group(1), codes


def test_totp_enrol_then_login_asks_for_a_code_once(desk: Desk, tmp_path: Path) -> None:
    manager = desk.logged_in("manager")
    secret, codes = enrol(manager)
    stored = desk.book.store.factors.totp(desk.book.ledger.find_admin("manager").id)  # type: ignore[union-attr]
    assert stored is not None and secret not in stored[0]  # encrypted
    browser = desk.client()
    assert browser.login("manager", PASSWORD).status == 303
    assert browser.get("/admin/").location.endswith("/admin/login/code")
    page = browser.get("/admin/login/code")
    assert "Authentication code" in page.text
    wrong = browser.post("/admin/login/code", {"csrf": page.csrf(), "code": "000000"})
    assert wrong.status == 403 and "not right" in wrong.text
    # The next step is accepted (a phone's clock a little ahead), once; a replay is refused,
    # and so is any code of a step not later than the last one used (enrolment's).
    assert (
        browser.post(
            "/admin/login/code", {"csrf": page.csrf(), "code": code_now(secret, -1)}
        ).status
        == 403
    )
    code = code_now(secret, 1)
    ok = browser.post("/admin/login/code", {"csrf": page.csrf(), "code": code})
    assert ok.status == 303 and browser.get("/admin/").status == 200
    other = desk.client()
    other.login("manager", PASSWORD)
    page = other.get("/admin/login/code")
    replay = other.post("/admin/login/code", {"csrf": page.csrf(), "code": code})
    assert replay.status == 403
    first = other.post("/admin/login/code", {"csrf": page.csrf(), "code": codes[0]})
    assert first.status == 303, first.alerts()
    assert other.get("/admin/").status == 200
    again = desk.client()
    again.login("manager", PASSWORD)
    page = again.get("/admin/login/code")
    assert again.post("/admin/login/code", {"csrf": page.csrf(), "code": codes[0]}).status == 403
    log = [(a.action, a.detail) for a in desk.book.ledger.activity()]
    assert ("2fa-enrolled", "Authenticator enrolled for manager") in log
    assert any(a == "2fa-failed" for a, _ in log) and any(a == "login" for a, _ in log)
    assert not any(secret in d or codes[1] in d for _, d in log)


def test_codes_are_throttled_and_require_2fa_sends_to_enrolment(
    desk: Desk, database: str, capsys: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CREDITBOOK_SECRET_KEY_FILE", str(tmp_path / "key"))
    manager = desk.logged_in("manager")
    enrol(manager)
    browser = desk.client()
    browser.login("manager", PASSWORD)
    page = browser.get("/admin/login/code")
    said = [browser.post("/admin/login/code", {"csrf": page.csrf(), "code": "123456"}).text
            for _ in range(12)]  # fmt: skip
    assert "Too many wrong codes" in said[-1]
    assert main(["config", "set", "console_require_2fa", "yes", "--database", database]) == 0
    viewer = desk.client()
    assert viewer.login("viewer", PASSWORD).status == 303
    assert viewer.get("/admin/clients").location.endswith("/admin/account")
    page = viewer.get("/admin/account")
    assert "needs a second factor" in page.text
    assert viewer.post("/admin/clients/1/credit", {"csrf": page.csrf()}).status == 403
    enrol(viewer)
    assert viewer.get("/admin/clients").status == 200
    # The operator removes a factor, or enrols one from the CLI.
    assert main(["admin", "totp", "disable", "viewer", "--database", database]) == 0
    assert main(["admin", "totp", "enable", "viewer", "--json", "--database", database]) == 0
    out = capsys.readouterr().out
    data = json.loads(out[out.index("{") :])
    assert data["otpauth_uri"].startswith("otpauth://totp/Creditbook:viewer?")
    assert len(data["recovery_codes"]) == 10


def test_a_bulk_file_above_the_rule_waits_as_a_whole(desk: Desk) -> None:
    ledger = desk.book.ledger
    approvals = Approvals(ledger)
    approvals.set_rule("USD", "100.00", False, ACTOR)
    other = ledger.add_client(firstname="Bo", lastname="Ng", email="bo@example.com",
                              actor=ACTOR).client_id  # fmt: skip
    manager = desk.logged_in("manager")
    token = manager.get("/admin/bulk").csrf()
    rows = f"clientid,amount,description\n{desk.client_id},60.00,a\n{other},50.00,b\n"
    applied = manager.post("/admin/bulk/apply", {"csrf": token, "csv": rows, "name": "f.csv"})
    assert (
        applied.status == 303
        and "Sent for approval (request #1)" in manager.get("/admin/bulk").text
    )
    assert desk.cents() == 10000 and ledger.get_client(str(other)).balance_cents == 0
    found = approvals.store.get(1)
    assert found is not None and (found.kind, found.amount_cents) == ("bulk", 11000)
    small = f"clientid,amount,description\n{other},5.00,c\n"
    assert manager.post("/admin/bulk/apply", {"csrf": token, "csv": small}).status == 200
    assert ledger.get_client(str(other)).balance_cents == 500  # below the rule: applied
    owner = desk.logged_in("owner")
    listing = owner.get("/admin/approvals")
    assert "Bulk credit" in listing.text and "(several)" in listing.text
    assert owner.post("/admin/approvals/1/approve", {"csrf": listing.csrf()}).status == 303
    decided = approvals.store.get(1)
    assert decided is not None and decided.status == "approved"
    assert decided.result == "2 rows applied, 0 refused, 0 invalid"
    assert desk.cents() == 16000 and ledger.get_client(str(other)).balance_cents == 5500


def test_disabling_an_admin_ends_sessions_and_keeps_the_second_factor(
    desk: Desk, database: str, monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.setenv("CREDITBOOK_SECRET_KEY_FILE", str(tmp_path / "key"))
    manager = desk.logged_in("manager")
    enrol(manager)
    assert main(["admin", "disable", "manager", "--database", database]) == 0
    assert manager.get("/admin/").location.startswith("/admin/login")
    assert main(["admin", "enable", "manager", "--database", database]) == 0
    browser = desk.client()
    browser.login("manager", PASSWORD)
    assert browser.get("/admin/").location.endswith("/admin/login/code")


def test_requests_and_decisions_are_webhook_events(desk: Desk) -> None:
    book = desk.book
    book.store.add_endpoint("http://127.0.0.1:9/", ("approval.requested", "approval.decided"),
                            "", ACTOR, "2026-01-01T00:00:00Z")  # fmt: skip
    approvals = Approvals(book.ledger)
    approvals.set_rule("USD", "1.00", False, ACTOR)
    manager, owner = book.ledger.find_admin("manager"), book.ledger.find_admin("owner")
    assert manager is not None and owner is not None
    asked = {"client": str(desk.client_id), "amount": "10.00", "description": "x"}
    approvals.request_credit(asked, Actor("console:manager", manager.id))
    approvals.decide(1, False, owner, Actor("console:owner", owner.id), "no")
    store: Any = book.store
    with store._read() as cur:
        rows = store._run(cur, "SELECT type, data FROM events ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["approval.requested", "approval.decided"]
    decided = json.loads(rows[1][1])
    assert (decided["status"], decided["decider"], decided["note"]) == (
        "rejected", "console:owner", "no")  # fmt: skip
