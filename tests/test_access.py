"""Access control and API roles (spec section 4, roles): allow-list, access key, bans, proxies."""

from __future__ import annotations

from typing import Any

import pytest

import creditbook
from creditbook.cli import main
from creditbook.http import App
from helpers import ACTOR, Seed, asgi


def call(
    app: App,
    s: Seed,
    client: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    **params: Any,
) -> tuple[int, dict[str, Any]]:
    data = {"identifier": s.identifier, "secret": s.secret, "action": "GetAdminDetails", **params}
    response = asgi(app, data=data, client=client, headers=headers)
    return response.status, response.json()


def cli(database: str, *args: str) -> int:
    return main([*args, "--database", database])


def test_loopback_only_by_default(app: App, seeded: Seed) -> None:
    """A fresh install answers loopback (v4, v6, v4-mapped) and nothing else."""
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert call(app, seeded, client=address)[0] == 200
    assert call(app, seeded, client="10.1.2.3") == (
        403,
        {"result": "error", "message": "Invalid IP 10.1.2.3"},
    )
    assert call(app, seeded, client="2001:db8::7")[1]["message"] == "Invalid IP 2001:db8::7"


def test_allow_list_changes_apply_without_restart(
    app: App, seeded: Seed, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """ip allow/deny with addresses and CIDR ranges take effect on the running app."""
    assert cli(database, "ip", "allow", "10.0.0.0/8") == 0
    assert cli(database, "ip", "allow", "192.0.2.7") == 0
    assert cli(database, "ip", "allow", "2001:db8::/32") == 0
    assert call(app, seeded, client="10.200.3.4")[0] == 200
    assert call(app, seeded, client="192.0.2.7")[0] == 200
    assert call(app, seeded, client="192.0.2.8")[0] == 403
    assert call(app, seeded, client="2001:db8::1")[0] == 200
    assert cli(database, "ip", "deny", "10.0.0.0/8") == 0
    assert call(app, seeded, client="10.200.3.4")[0] == 403
    capsys.readouterr()
    assert cli(database, "ip", "list", "--json") == 0
    assert "192.0.2.7" in capsys.readouterr().out
    assert cli(database, "ip", "allow", "not-an-ip") == 1
    assert cli(database, "ip", "deny", "203.0.113.9") == 1
    assert "Not an IP address" in capsys.readouterr().err


def test_access_key_bypasses_the_ip_check(
    app: App, seeded: Seed, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A matching accesskey gets in from anywhere; a wrong one is Invalid Access Key."""
    assert call(app, seeded, client="198.51.100.1", accesskey="whatever") == (
        403,
        {"result": "error", "message": "Invalid Access Key"},
    )
    assert cli(database, "config", "set", "api_access_key", "s3cret-key") == 0
    assert call(app, seeded, client="198.51.100.1", accesskey="s3cret-key")[0] == 200
    assert call(app, seeded, client="198.51.100.2", accesskey="wrong-key")[1]["message"] == (
        "Invalid Access Key"
    )
    capsys.readouterr()
    cli(database, "config", "get", "api_access_key")
    shown = capsys.readouterr().out
    assert "s3cret-key" not in shown and "stored hashed" in shown


def test_repeated_failures_ban_the_address(app: App, seeded: Seed, database: str) -> None:
    """3 failures ban an address for 15 minutes, even with right credentials; others go on."""
    for _ in range(3):
        assert call(app, seeded, client="::1", secret="bad")[1]["message"] == (
            "Authentication Failed"
        )
    assert call(app, seeded, client="::1") == (403, {"result": "error", "message": "IP Banned"})
    assert call(app, seeded, client="127.0.0.1")[0] == 200
    now = app.api.policy.clock()
    app.api.policy.clock = lambda: now + 15 * 60 + 1
    assert call(app, seeded, client="::1")[0] == 200


def test_ban_settings(app: App, seeded: Seed, database: str) -> None:
    """ban_failures and ban_minutes are read from the database by the running app."""
    assert cli(database, "config", "set", "ban_failures", "1") == 0
    assert cli(database, "config", "set", "ban_minutes", "1") == 0
    call(app, seeded, secret="bad")
    assert call(app, seeded)[1]["message"] == "IP Banned"
    now = app.api.policy.clock()
    app.api.policy.clock = lambda: now + 61
    assert call(app, seeded)[0] == 200
    assert cli(database, "config", "set", "ban_failures", "zero") == 1
    assert cli(database, "config", "set", "no_such_setting", "1") == 1


def test_forwarded_for_only_from_trusted_proxies(app: App, seeded: Seed, database: str) -> None:
    """X-Forwarded-For is believed only when the peer is a named trusted proxy."""
    forwarded = {"x-forwarded-for": "203.0.113.50, 10.0.0.2"}
    assert call(app, seeded, client="127.0.0.1", headers=forwarded)[0] == 200
    assert cli(database, "config", "set", "trusted_proxies", "127.0.0.1,10.0.0.0/24") == 0
    assert call(app, seeded, client="127.0.0.1", headers=forwarded)[1]["message"] == (
        "Invalid IP 203.0.113.50"
    )
    cli(database, "ip", "allow", "203.0.113.50")
    assert call(app, seeded, client="127.0.0.1", headers=forwarded)[0] == 200
    # A hop that cannot be read never borrows the proxy's own (allowed) address.
    assert call(app, seeded, client="127.0.0.1", headers={"x-forwarded-for": "garbage"}) == (
        403,
        {"result": "error", "message": "Invalid IP unknown"},
    )


def test_config_list_and_unset(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """config list shows every setting with its default; unset restores the default."""
    import json

    cli(database, "config", "set", "ban_minutes", "30")
    capsys.readouterr()
    cli(database, "config", "list", "--json")
    listed = json.loads(capsys.readouterr().out)
    assert listed["ban_minutes"] == "30" and listed["ban_failures"] == "3"
    cli(database, "config", "unset", "ban_minutes")
    capsys.readouterr()
    cli(database, "config", "get", "ban_minutes")
    assert capsys.readouterr().out == "15\n"


# --- roles --------------------------------------------------------------------------------------


def test_roles_grant_actions(
    app: App,
    seeded: Seed,
    book: creditbook.Creditbook,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A credential with roles may call only what some role grants."""
    import json

    assert cli(database, "role", "add", "reader", "--allow", "GetCredits,getadmindetails") == 0
    assert cli(database, "role", "add", "writer", "--allow", "addcredit") == 0
    assert cli(database, "role", "add", "bad", "--allow", "deleteeverything") == 1
    capsys.readouterr()
    cli(database, "credential", "add", "alice", "--role", "reader", "--json")
    reader = json.loads(capsys.readouterr().out)
    cli(database, "credential", "add", "alice", "--role", "reader", "--role", "writer", "--json")
    both = json.loads(capsys.readouterr().out)
    assert cli(database, "credential", "add", "alice", "--role", "ghost") == 1

    def as_(cred: dict[str, str], action: str) -> tuple[int, dict[str, Any]]:
        data = {
            "identifier": cred["identifier"],
            "secret": cred["secret"],
            "action": action,
            "clientid": str(seeded.client_id),
            "amount": "1",
            "description": "x",
        }
        response = asgi(app, data=data)
        return response.status, response.json()

    assert as_(reader, "GetCredits")[0] == 200
    assert as_(reader, "AddCredit") == (
        403,
        {
            "result": "error",
            "message": 'Invalid Permissions: API action "addcredit" is not allowed',
        },
    )
    assert as_(reader, "Add_Client")[1]["message"] == (
        'Invalid Permissions: API action "addclient" is not allowed'
    )
    assert as_(both, "AddCredit")[1]["result"] == "success"
    assert as_(both, "GetAdminDetails")[1]["allowedpermissions"] == (
        "addcredit,getadmindetails,getcredits"
    )
    full = call(app, seeded)[1]["allowedpermissions"].split(",")
    assert "addclient" in full and "getclients" in full
    cli(database, "role", "add", "reader", "--allow", "addcredit,getcredits")
    assert as_(reader, "AddCredit")[1]["result"] == "success"
    capsys.readouterr()
    cli(database, "role", "list", "--json")
    assert json.loads(capsys.readouterr().out)["reader"] == ["addcredit", "getcredits"]


def test_credential_without_role_says_full_access(
    database: str, seeded: Seed, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI says a role-less credential has full access."""
    capsys.readouterr()
    cli(database, "credential", "add", "alice")
    assert "full access" in capsys.readouterr().out


def test_role_denials_are_not_ban_failures(
    app: App, seeded: Seed, book: creditbook.Creditbook, database: str
) -> None:
    """Permission denials do not count towards a ban."""
    book.ledger.put_role("none", ["getcredits"], actor=ACTOR)
    ident, secret = book.ledger.add_credential("alice", roles=["none"], actor=ACTOR)
    for _ in range(5):
        response = asgi(app, data={"identifier": ident, "secret": secret, "action": "addclient"})
        assert response.status == 403
    assert call(app, seeded)[0] == 200
