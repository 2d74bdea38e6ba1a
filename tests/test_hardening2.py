"""The second hardening round: one regression test (or more) per defect the review found.

Each test names the item of the issue it covers. Browser-visible parts are in
``test_console_browser.py``, the request layer's in ``test_request_layer.py``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import creditbook
from creditbook import money, security
from creditbook.cli import main
from creditbook.http import App
from creditbook.importer.sources import parse_amount
from creditbook.whmcs.actions import ACTIONS
from creditbook.whmcs.levels import LEVEL_OF_ACTION, actions_for
from helpers import ACTOR, PASSWORD, Seed, asgi

# --- 1. importers read amounts as the money module does ------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1.5", 150),
        ("1.50", 150),
        ("12", 1200),
        ("$1,234.56", 123456),
        ("-£5.00", -500),
        ("(5.00)", -500),
        ("1.234,56 EUR", 123456),
        ("12,50", 1250),
        ("1.234.567", 123456700),
        ("USD 7.25", 725),
    ],
)
def test_item1_displayed_amounts_that_read_one_way(text: str, cents: int) -> None:
    """Plain amounts parse as the money module parses them; unambiguous displayed forms too."""
    assert parse_amount(text) == cents


@pytest.mark.parametrize(
    "text", ["1.567", "1,234", "1e3", "abc", "", " ", "1.2.3", "--5", "(5.00", "Infinity", "1,2345"]
)
def test_item1_anything_else_is_refused(text: str) -> None:
    """Sub-cent, ambiguous, exponent, empty and non-numeric amounts are errors, never 0.00."""
    with pytest.raises(creditbook.CreditError):
        parse_amount(text)


@pytest.mark.parametrize("text", ["-1.5", "0.05", "7", "-99999999999999.99"])
def test_item1_money_parses_signed_amounts(text: str) -> None:
    """The money module's signed parser is exact."""
    assert money.parse_cents(text) == money.to_cents(money.parse_amount(text.lstrip("-"))) * (
        -1 if text.startswith("-") else 1
    )


@pytest.mark.parametrize("text", ["1.234", "Infinity", "NaN", "1e3", "+5", "100000000000000000"])
def test_item1_money_refuses_signed_nonsense(text: str) -> None:
    """Three decimals, specials, exponents, plus signs and the out-of-range are refused."""
    with pytest.raises(ValueError):
        money.parse_cents(text)


def _credits_file(path: Path, rows: list[str]) -> Path:
    path.write_text(
        "Credit ID,Client ID,Client Name,Date,Description,Amount,Admin User\n"
        + "".join(r + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


def _client(database: str, email: str = "ann@example.com") -> int:
    with creditbook.open(database) as book:
        return book.ledger.add_client(
            firstname="Ann", lastname="Able", email=email, actor=ACTOR
        ).client_id


def _balance(database: str, client_id: int) -> str:
    with creditbook.open(database) as book:
        reply = book.local_api("GetClientsDetails", {"clientid": client_id})
        return str(reply["credit"])


def test_item1_credits_csv_reads_amounts_exactly(
    database: str, tmp_path: Path, capsys: Any
) -> None:
    """1.5 is 1.50 (not 15.00); a file re-saved by a spreadsheet credits what it says."""
    ann = _client(database)
    path = _credits_file(
        tmp_path / "c.csv",
        [f"1,{ann},Ann,2026-01-02,a,1.5,", f'2,{ann},Ann,2026-01-03,b,"$1,234.56",'],
    )
    assert main(["import", "credits-csv", str(path), "--database", database, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"]
    assert _balance(database, ann) == "1236.06"


def test_item1_a_bad_row_imports_nothing_unless_skipped(
    database: str, tmp_path: Path, capsys: Any
) -> None:
    """1.567, 1e3, abc and an empty amount are per-row errors; the file applies nothing."""
    ann = _client(database)
    path = _credits_file(
        tmp_path / "c.csv",
        [
            f"1,{ann},Ann,2026-01-02,good,10.00,",
            f"2,{ann},Ann,2026-01-02,sub-cent,1.567,",
            f"3,{ann},Ann,2026-01-02,exponent,1e3,",
            f"4,{ann},Ann,2026-01-02,words,abc,",
            f"5,{ann},Ann,2026-01-02,empty,,",
        ],
    )
    args = ["import", "credits-csv", str(path), "--database", database]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "4 row(s) cannot be imported, so nothing was imported" in err
    for line in (3, 4, 5, 6):
        assert f"csv line {line}: the amount" in err
    assert _balance(database, ann) == "0.00"
    assert main([*args, "--skip-bad-rows", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["credits"]["imported"] == 1 and len(report["skipped"]) == 4
    assert _balance(database, ann) == "10.00"


def test_item1_import_csv_refuses_sub_cent_and_infinity(
    database: str, tmp_path: Path, capsys: Any
) -> None:
    """Creditbook's own export back in: 1.234 and Infinity are row errors, not rounded."""
    clients = tmp_path / "clients.csv"
    clients.write_text(
        "id,firstname,lastname,companyname,email,status,currency,balance,created_at,details\n"
        "1,Ann,Able,,ann@example.com,Active,USD,1.23,2026-01-01T00:00:00Z,{}\n",
        encoding="utf-8",
    )
    credits = tmp_path / "credits.csv"
    credits.write_text(
        "id,client_id,date,description,amount,balance,admin_id,relid,created_at,actor,hash\n"
        "1,1,2026-01-01,a,1.234,1.23,0,0,x,y,z\n"
        "2,1,2026-01-01,b,Infinity,1.23,0,0,x,y,z\n",
        encoding="utf-8",
    )
    assert main(["import", "csv", str(clients), str(credits), "--database", database]) == 1
    err = capsys.readouterr().err
    assert "credits line 2: the amount '1.234'" in err
    assert "credits line 3: the amount 'Infinity'" in err
    assert "Traceback" not in err
    with creditbook.open(database) as book:
        assert book.ledger.list_clients().total == 0


# --- 3. a back-dated removal keeps every later day's balance at zero or more ---------------


def _history(book: creditbook.Creditbook) -> int:
    cid = book.ledger.add_client(
        firstname="Dee", lastname="Date", email="dee@example.com", actor=ACTOR
    ).client_id
    for amount, date in (("100.00", "2026-09-02"), ("40.11", "2026-12-01")):
        reply = book.local_api(
            "AddCredit", {"clientid": cid, "amount": amount, "description": "in", "date": date}
        )
        assert reply["result"] == "success"
    return cid


def _remove(book: creditbook.Creditbook, cid: int, amount: str, date: str, **extra: str) -> Any:
    params = {"clientid": cid, "amount": amount, "description": "out", "type": "remove"}
    return book.local_api("AddCredit", {**params, "date": date, **extra})


def test_item3_backdated_removal_refused_when_a_past_day_would_go_negative(
    book: creditbook.Creditbook,
) -> None:
    """110.00 dated 2026-09-03 is refused (that day held 100.00), by the lone path, the keyed
    path and credit_many; 100.00 fits and is accepted; no day's balance is ever negative."""
    cid = _history(book)
    expected = (
        "Amount exceeds customer credit balance on 2026-09-03: a removal dated 2026-09-03 "
        "must leave the balance at zero or more at the end of every day from 2026-09-03 on, "
        "and the balance at the end of 2026-09-03 is 100.00"
    )
    assert _remove(book, cid, "110.00", "2026-09-03") == {"result": "error", "message": expected}
    keyed = _remove(book, cid, "110.00", "2026-09-03", idempotencykey="k1")
    assert keyed == {"result": "error", "message": expected}
    many = book.credit_many(
        [
            {"clientid": cid, "amount": "5", "description": "x", "date": "2026-09-10"},
            {"clientid": cid, "amount": "110", "description": "y", "type": "remove",
             "date": "2026-09-03"},
        ]
    )  # fmt: skip
    assert many[1] == {"result": "error", "message": expected}
    assert _remove(book, cid, "100.00", "2026-09-03") == {"result": "success",
                                                          "newbalance": "45.11"}  # fmt: skip
    # 2026-09-04 now holds 0.00: another removal dated before 2026-09-10 cannot fit there.
    refused = _remove(book, cid, "0.01", "2026-09-05")
    assert "on 2026-09-05" in refused["message"] and "is 0.00" in refused["message"]
    for day in ("2026-09-02", "2026-09-03", "2026-09-09", "2026-09-10", "2026-12-01"):
        asof = book.local_api("GetClientsDetails", {"clientid": cid, "asof": day})
        assert not asof["credit"].startswith("-"), day


def test_item3_removal_today_among_future_dated_credit(book: creditbook.Creditbook) -> None:
    """A removal dated today is checked against a credit dated in the future too."""
    cid = book.ledger.add_client(
        firstname="Fay", lastname="Future", email="fay@example.com", actor=ACTOR
    ).client_id
    book.local_api(
        "AddCredit", {"clientid": cid, "amount": "50", "description": "later", "date": "2099-01-01"}
    )
    today = book.ledger.today()
    refused = _remove(book, cid, "10.00", today)
    assert refused["message"].startswith(f"Amount exceeds customer credit balance on {today}")
    assert _remove(book, cid, "10.00", "2099-01-02")["result"] == "success"


# --- 2. an admin's access level holds on the API too -----------------------------------------


def test_item2_a_viewer_reads_through_the_api_and_writes_nothing(
    app: App, book: creditbook.Creditbook
) -> None:
    """Legacy login, a credential and local_api of a viewer: reads pass, writes are refused,
    GetAdminDetails names only the reads."""
    book.ledger.add_admin("vera", "viewer password", access="viewer", actor=ACTOR)
    identifier, secret = book.ledger.add_credential("vera", actor=ACTOR)
    cid = _client(book.store.url)
    legacy = {"username": "vera", "password": security.md5_hex("viewer password")}
    for auth in (legacy, {"identifier": identifier, "secret": secret}):
        reply = asgi(app, data={**auth, "action": "GetCredits", "clientid": cid})
        assert reply.json()["result"] == "success"
        for action, extra in (
            ("AddCredit", {"clientid": cid, "amount": "5", "description": "x"}),
            ("AddClient", {"firstname": "a", "lastname": "b", "email": "ab@example.com"}),
        ):
            refused = asgi(app, data={**auth, "action": action, **extra})
            assert refused.status == 403
            assert refused.json()["message"] == (
                f'Invalid Permissions: API action "{action.lower()}" is not allowed'
            )
        details = asgi(app, data={**auth, "action": "GetAdminDetails"}).json()
        assert details["allowedpermissions"] == (
            "getadmindetails,getclients,getclientsdetails,getcredits"
        )
    local = book.local_api(
        "AddCredit", {"clientid": cid, "amount": "5", "description": "x"}, admin_username="vera"
    )
    assert local["message"] == 'Invalid Permissions: API action "addcredit" is not allowed'
    assert (
        book.credit_many([{"clientid": cid, "amount": "5"}], admin_username="vera")[0]["message"]
        == 'Invalid Permissions: API action "addcredit" is not allowed'
    )
    assert _balance(book.store.url, cid) == "0.00"


def test_item2_every_action_has_a_level_and_none_changes_api_access() -> None:
    """Each API action names the level it needs; no API action is owner-only, because none
    changes API access (credentials, roles, the allow-list): a manager cannot through the API."""
    assert set(ACTIONS) <= set(LEVEL_OF_ACTION)
    assert set(LEVEL_OF_ACTION.values()) == {"viewer", "manager"}
    assert actions_for("viewer") < actions_for("manager") == actions_for("owner")


# --- 8. login throttling reserves the attempt before the slow hash ---------------------------


def test_item8_simultaneous_api_guesses_are_refused_before_hashing(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """40 simultaneous legacy logins from one address: 3 are checked (the limit), 37 are
    refused at once; the right password after them is refused too."""
    body = {"action": "GetClients", "username": "alice", "password": security.md5_hex("wrong")}
    data = urlencode(body).encode()

    async def call() -> dict[str, Any]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/includes/api.php",
            "query_string": b"",
            "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
            "client": ("127.0.0.1", 5),
        }
        await app(scope, receive, send)
        return dict(json.loads(b"".join(m.get("body", b"") for m in sent[1:])))

    async def flood() -> list[dict[str, Any]]:
        return await asyncio.gather(*(call() for _ in range(40)))

    replies = asyncio.run(flood())
    messages = sorted(r["message"] for r in replies)
    assert messages.count("Authentication Failed") == 3
    assert messages.count("IP Banned") == 37
    right = {"action": "GetClients", "username": "alice", "password": security.md5_hex(PASSWORD)}
    assert asgi(app, data=right).json()["message"] == "IP Banned"


def test_item8_the_api_counts_failed_logins_per_username_too(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """Guesses for one username from many addresses: after ``ban_user_failures`` the username
    is refused from everywhere (``Too many failed logins for this username``)."""
    book.ledger.store.allow_ip("10.0.0.0/8", ACTOR, book.ledger.now())
    book.ledger.store.set_setting("ban_user_failures", "4", ACTOR, book.ledger.now())
    wrong = {"action": "GetClients", "username": "alice", "password": security.md5_hex("nope")}
    for n in range(4):
        assert asgi(app, data=wrong, client=f"10.0.0.{n}").json()["message"] == (
            "Authentication Failed"
        )
    right = {**wrong, "password": security.md5_hex(PASSWORD)}
    assert asgi(app, data=right, client="10.0.0.9").json()["message"] == (
        "Too many failed logins for this username, try again later"
    )
    assert main(["admin", "unban", "alice", "--database", book.store.url]) == 0
    assert asgi(app, data=right, client="10.0.0.9").json()["result"] == "success"


# --- 11. one office, one typo storm: bans per username, warnings, unban -----------------------


def test_item11_console_bans_count_per_username_and_address(
    app: App, book: creditbook.Creditbook, capsys: Any
) -> None:
    """Spraying many usernames from one address stops at ``ban_address_failures``; one
    username guessed from many addresses at ``ban_user_failures``; ``admin unban`` lifts both."""
    from console_client import ConsoleClient

    book.ledger.add_admin("owner", PASSWORD, access="owner", actor=ACTOR)
    book.ledger.store.set_setting("ban_address_failures", "5", ACTOR, book.ledger.now())
    sprayer = ConsoleClient(app, ip="10.5.5.5")
    alerts = [sprayer.login(f"user{n}", "guess").alerts()[0] for n in range(6)]
    assert alerts[:3] == ["Wrong username or password"] * 3
    assert alerts[3].endswith("One more failed login blocks logins for 15 minutes.")
    assert alerts[4].startswith("Wrong username or password. Logins are now blocked")
    assert alerts[5].startswith("Too many failed logins: try again after")
    for n in range(10):
        ConsoleClient(app, ip=f"10.6.6.{n}").login("owner", "guess")
    refused = ConsoleClient(app, ip="10.7.7.7").login("owner", PASSWORD)
    assert refused.alerts()[0].startswith("Too many failed logins")
    assert main(["admin", "unban", "owner", "--database", book.store.url]) == 0
    assert "Lifted the login bans of owner" in capsys.readouterr().out
    assert ConsoleClient(app, ip="10.7.7.7").login("owner", PASSWORD).status == 303
    assert main(["admin", "unban", "10.5.5.5", "--database", book.store.url]) == 0
    assert ConsoleClient(app, ip="10.5.5.5").login("owner", PASSWORD).status == 303
    assert main(["admin", "unban", "no such thing!", "--database", book.store.url]) == 1


def test_item11_owners_see_and_lift_bans_in_the_console(
    app: App, book: creditbook.Creditbook
) -> None:
    """The API access page lists the bans in force, with a button that lifts each."""
    from console_client import ConsoleClient

    book.ledger.add_admin("owner", PASSWORD, access="owner", actor=ACTOR)
    book.ledger.add_admin("clerk", PASSWORD, access="manager", actor=ACTOR)
    for _ in range(3):
        ConsoleClient(app, ip="10.8.8.8").login("clerk", "typo")
    owner = ConsoleClient(app)
    assert owner.login("owner", PASSWORD).status == 303
    page = owner.get("/admin/access")
    assert "console login of clerk from 10.8.8.8" in page.text
    done = owner.post("/admin/access/unban", {"csrf": page.csrf(), "target": "clerk"})
    assert done.status == 303
    after = owner.get("/admin/access")
    assert "Login bans of clerk lifted." in after.text
    assert "No login is blocked." in after.text
    assert ConsoleClient(app, ip="10.8.8.8").login("clerk", PASSWORD).status == 303


# --- 12. bad input gets a message, never a traceback ------------------------------------------


def test_item12_console_reads_of_odd_input_are_not_500s(
    app: App, book: creditbook.Creditbook
) -> None:
    """A last day, a deeply nested or surrogate ``after=`` key: a page or a 400, never a 500."""
    import base64

    from console_client import ConsoleClient

    book.ledger.add_admin("viewer", PASSWORD, access="viewer", actor=ACTOR)
    viewer = ConsoleClient(app)
    assert viewer.login("viewer", PASSWORD).status == 303
    assert viewer.get("/admin/activity?to=9999-12-31").status == 200
    assert viewer.get("/admin/activity.csv?to=9999-12-31").status == 200
    for key in ("[" * 100_000 + "1" + "]" * 100_000, '["\\ud800", "x", 1]'):
        after = base64.urlsafe_b64encode(key.encode()).decode()
        assert viewer.get(f"/admin/clients?sort=name&after={after}").status == 400


def test_item12_cli_bad_input_is_one_line(database: str, tmp_path: Path, capsys: Any) -> None:
    """export --to 9999-12-31 works; an unterminated quote and out-of-range ids in a credits
    file are clear errors, and nothing is committed."""
    ann = _client(database)
    assert main(["export", "credits", "--to", "9999-12-31", "--database", database]) == 0
    capsys.readouterr()
    quoted = tmp_path / "q.csv"
    quoted.write_text(
        "Credit ID,Client ID,Client Name,Date,Description,Amount,Admin User\n"
        f'1,{ann},Ann,2026-01-02,"unterminated,1.00,\n',
        encoding="utf-8",
    )
    assert main(["import", "credits-csv", str(quoted), "--database", database]) == 1
    err = capsys.readouterr().err
    assert "is not valid CSV (line" in err and "Traceback" not in err
    ids = _credits_file(
        tmp_path / "ids.csv",
        [f"{i},{ann},Ann,2026-01-02,x,1.00," for i in
         ("0", "-5", "4294967296", "9223372036854775807", "12345678901234567890")]
        + [f"7,{ann},Ann,2026-01-02,fine,1.00,"],
    )  # fmt: skip
    assert main(["import", "credits-csv", str(ids), "--database", database, "--json"]) == 1
    bad = json.loads(capsys.readouterr().out)["bad_rows"]
    assert [b["id"] for b in bad] == [2, 3, 4, 5, 6]
    assert all("is not a whole number from 1 to 4294967295" in b["reason"] for b in bad)
    assert _balance(database, ann) == "0.00"
    args = ["import", "credits-csv", str(ids), "--database", database, "--skip-bad-rows"]
    assert main(args) == 0
    assert _balance(database, ann) == "1.00"


# --- 13. small things that said too much, or too little ---------------------------------------


def test_item13_copy_into_a_store_that_is_not_empty_says_so(
    sqlite_database: str, tmp_path: Path, capsys: Any
) -> None:
    """A target holding only an activity line is not empty: said in those words."""
    target = f"sqlite:///{tmp_path}/target.db"
    with creditbook.open(target) as book:
        book.ledger.store.allow_ip("10.0.0.1", ACTOR, book.ledger.now())  # one activity line
    _client(sqlite_database)
    assert main(["copy", sqlite_database, target]) == 1
    err = capsys.readouterr().err
    assert "The target store is not empty" in err and "UNIQUE" not in err


def test_item13_verify_seal_never_echoes_a_file(
    sqlite_database: str, tmp_path: Path, capsys: Any
) -> None:
    """A --seal file that holds no digest is refused without showing what it holds."""
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2-password-line\nmore\n", encoding="utf-8")
    assert main(["verify", "--seal", str(secret), "--database", sqlite_database]) == 1
    err = capsys.readouterr().err
    assert "hunter2" not in err and "64 hexadecimal characters" in err


def test_item13_unknown_yes_no_values_are_errors() -> None:
    """CREDITBOOK_WEBHOOKS=enabled is refused, not read as off."""
    from creditbook.config import Settings, SettingsError

    with pytest.raises(SettingsError, match="CREDITBOOK_WEBHOOKS must be one of"):
        Settings.from_env({"CREDITBOOK_WEBHOOKS": "enabled"})
    assert Settings.from_env({"CREDITBOOK_WEBHOOKS": "Off"}).webhooks is False


def test_item13_one_password_rule_everywhere(
    sqlite_database: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The CLI refuses a short password with the console's rule and words."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    args = ["admin", "add", "ann", "--password-stdin", "--database", sqlite_database]
    assert main(args) == 1
    assert capsys.readouterr().err == "error: Passwords are at least 10 characters\n"


def test_item13_a_closed_pipe_ends_the_cli_quietly(sqlite_database: str) -> None:
    """``creditbook log | head -1`` prints no error."""
    import subprocess
    import sys

    with creditbook.open(sqlite_database) as book:
        for n in range(300):
            book.ledger.store.allow_ip(f"10.0.{n // 250}.{n % 250}", ACTOR, book.ledger.now())
    command = (
        f"{sys.executable} -m creditbook log --limit 300 --database {sqlite_database} | head -1"
    )
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    assert run.stderr == "" and len(run.stdout.splitlines()) == 1


# --- 14. files holding hashes and client data are private -------------------------------------


def test_item14_database_wal_and_backup_are_created_0600(tmp_path: Path) -> None:
    """Under the usual umask, the database, its WAL and a backup are readable by their owner
    only."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "private.db"
        with creditbook.open(f"sqlite:///{path}") as book:
            _client(book.store.url)
            backup = tmp_path / "backup.db"
            assert main(["backup", str(backup), "--database", str(path)]) == 0
            for file in (path, Path(f"{path}-wal"), backup):
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        os.umask(old)


# --- 17. there is always an enabled owner -------------------------------------------------------


def test_item17_the_last_owner_cannot_be_demoted_or_disabled(
    book: creditbook.Creditbook, capsys: Any
) -> None:
    """Demoting or disabling the last enabled owner is refused (the library, so every
    transport); with a second owner it is allowed."""
    book.ledger.add_admin("olga", PASSWORD, access="owner", actor=ACTOR)
    book.ledger.add_admin("otto", PASSWORD, access="owner", actor=ACTOR)
    book.ledger.set_admin_disabled("otto", True, actor=ACTOR)
    for change in (
        lambda: book.ledger.set_admin_access("olga", "manager", actor=ACTOR),
        lambda: book.ledger.set_admin_disabled("olga", True, actor=ACTOR),
    ):
        with pytest.raises(creditbook.CreditError, match="at least one enabled owner"):
            change()
    url = book.store.url
    assert main(["admin", "set-access", "olga", "viewer", "--database", url]) == 1
    assert "at least one enabled owner" in capsys.readouterr().err
    book.ledger.set_admin_disabled("otto", False, actor=ACTOR)
    book.ledger.set_admin_access("olga", "manager", actor=ACTOR)
    assert book.ledger.admin("olga").access == "manager"


# --- 16. import credits-csv reports each row with its own reason, and round trips ------------


def test_item16_each_bad_row_has_its_own_reason(database: str, tmp_path: Path, capsys: Any) -> None:
    """A row that would take a balance below zero is refused alone (its client's other rows
    go in); a Credit ID given twice with other values is an error on both lines."""
    ann = _client(database)
    path = _credits_file(
        tmp_path / "c.csv",
        [
            f"1,{ann},Ann,2026-01-01,in,5.00,",
            f"2,{ann},Ann,2026-01-02,too much,-9.00,",
            f"3,{ann},Ann,2026-01-03,fine,-5.00,",
            f"4,{ann},Ann,2026-01-04,twice,1.00,",
            f"4,{ann},Ann,2026-01-04,twice,2.00,",
        ],
    )
    args = ["import", "credits-csv", str(path), "--database", database, "--json"]
    assert main(args) == 1
    bad = {b["id"]: b["reason"] for b in json.loads(capsys.readouterr().out)["bad_rows"]}
    assert set(bad) == {5, 6}
    assert "Credit ID 4 is also on line 5 with other values" in bad[6]
    assert "Credit ID 4 appears again with other values" in bad[5]
    assert main([*args, "--skip-bad-rows"]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {s["id"]: s["reason"] for s in report["skipped"]}
    assert reasons[2] == (f"it would take client {ann}'s balance from 5.00 to -4.00, below zero")
    assert report["credits"]["imported"] == 2 and _balance(database, ann) == "0.00"


def test_item16_export_then_import_gives_back_the_same_text(
    sqlite_database: str, tmp_path: Path, capsys: Any
) -> None:
    """Descriptions starting with ``'=``, ``=``, ``''+`` and ``'`` survive the round trip."""
    texts = ["'=quoted formula", "=SUM(A1)", "''+two quotes", "'plain quote", "-5 minus"]
    with creditbook.open(sqlite_database) as book:
        cid = book.ledger.add_client(
            firstname="'=Eve", lastname="Q", email="eve@example.com", actor=ACTOR
        ).client_id
        for text in texts:
            book.local_api("AddCredit", {"clientid": cid, "amount": "1", "description": text})
    clients, credits = tmp_path / "clients.csv", tmp_path / "credits.csv"
    for table, out in (("clients", clients), ("credits", credits)):
        args = ["export", table, "--output", str(out), "--database", sqlite_database]
        assert main(args) == 0
    target = f"sqlite:///{tmp_path}/back.db"
    assert main(["import", "csv", str(clients), str(credits), "--database", target]) == 0
    capsys.readouterr()
    with creditbook.open(target) as book:
        log = book.local_api("GetCredits", {"clientid": cid})["credits"]["credit"]
        assert [e["description"] for e in log] == texts
        assert book.ledger.get_client(str(cid)).firstname == "'=Eve"
