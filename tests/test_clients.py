"""Clients: UpdateClient and CloseClient on the API (spec section 7), the rules they share
with the console, and the CLI's wording about clients and credit."""

from __future__ import annotations

from typing import Any

import pytest

import creditbook
from creditbook.cli import main
from creditbook.http import App
from helpers import ACTOR, Seed, asgi


def call(app: App, s: Seed, action: str, **params: Any) -> tuple[int, dict[str, Any]]:
    reply = asgi(
        app, data={"action": action, "identifier": s.identifier, "secret": s.secret, **params}
    )
    return reply.status, reply.json()


def test_update_client_changes_only_what_is_given(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """UpdateClient by id or by e-mail; empty parameters count as absent; WHMCS's other
    parameters are accepted and ignored; the activity log names old and new values."""
    status, reply = call(
        app, seeded, "UpdateClient", clientid=seeded.client_id, city="Oslo", lastname="",
        password2="ignored", customfields="x",
    )  # fmt: skip
    assert (status, reply) == (200, {"result": "success", "clientid": str(seeded.client_id)})
    client = book.ledger.get_client(str(seeded.client_id))
    assert client.details["city"] == "Oslo" and client.lastname == "Client"
    by_mail = call(app, seeded, "UpdateClient", clientemail=client.email, companyname="New Co")
    assert by_mail[1]["result"] == "success"
    assert book.ledger.get_client(str(seeded.client_id)).companyname == "New Co"
    line = book.ledger.activity(seeded.client_id, 1)[0]
    assert line.detail == "Updated client: companyname: '' -> 'New Co'"
    details = book.local_api("GetClientsDetails", {"clientid": seeded.client_id})
    assert details["city"] == "Oslo"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Either clientid Or email Is Required"),
        ({"clientid": "999"}, "Client Not Found"),
        ({"clientemail": "nobody@example.com"}, "Client Not Found"),
        ({"clientid": "1", "email": "bad"}, "The email address you entered was not valid"),
        ({"clientid": "1", "status": "Gone"}, "The status is Active, Inactive or Closed"),
        ({"clientid": "1", "country": "Norway"}, "The country is a two-letter ISO code, e.g. NO"),
        (
            {"clientid": "1", "currency": "XYZ"},
            "Unknown currency XYZ: use one of the ISO 4217 codes",
        ),
    ],
)
def test_update_client_refusals(
    app: App, seeded: Seed, params: dict[str, str], message: str
) -> None:
    """UpdateClient's messages (GetClientsDetails's for a missing client)."""
    assert call(app, seeded, "UpdateClient", **params)[1] == {"result": "error", "message": message}


def test_update_client_keeps_emails_unique_and_currencies_fixed(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """Another client's e-mail is refused; the currency changes only without entries."""
    other = book.ledger.add_client(
        firstname="O", lastname="T", email="other@example.com", actor=ACTOR
    ).client_id
    taken = call(app, seeded, "UpdateClient", clientid=other, email=book.ledger.get_client(
        str(seeded.client_id)).email.upper())  # fmt: skip
    assert taken[1]["message"] == "A user already exists with that email address"
    assert call(app, seeded, "UpdateClient", clientid=other, currency="EUR")[1]["result"] == (
        "success"
    )
    book.ledger.add_credit(clientid=str(other), amount="1", description="d", actor=ACTOR)
    locked = call(app, seeded, "UpdateClient", clientid=other, currency="USD")
    assert locked[1]["message"] == (
        "The currency can change only while the client has no credit entries"
    )


def test_close_client_stops_additions_not_refunds(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """CloseClient: closed (twice is fine); credit cannot be added, only removed."""
    cid = seeded.client_id
    call(app, seeded, "AddCredit", clientid=cid, amount="10", description="in")
    assert call(app, seeded, "CloseClient", clientid=cid) == (
        200, {"result": "success", "clientid": str(cid)}
    )  # fmt: skip
    assert call(app, seeded, "CloseClient", clientid=cid)[1]["result"] == "success"
    assert book.ledger.get_client(str(cid)).status == "Closed"
    refused = call(app, seeded, "AddCredit", clientid=cid, amount="1", description="more")
    assert refused[1] == {"result": "error", "message": "Client is closed"}
    many = book.credit_many([{"clientid": cid, "amount": "1", "description": "more"}])
    assert many == [{"result": "error", "message": "Client is closed"}]
    refund = call(app, seeded, "AddCredit", clientid=cid, amount="4", description="refund",
                  type="remove")  # fmt: skip
    assert refund[1] == {"result": "success", "newbalance": "6.00"}
    assert call(app, seeded, "CloseClient")[1]["message"] == "Either clientid Or email Is Required"
    reopened = call(app, seeded, "UpdateClient", clientid=cid, status="Active")
    assert reopened[1]["result"] == "success"


def test_a_viewer_cannot_update_or_close(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """UpdateClient and CloseClient need manager access, like the other writes."""
    book.ledger.add_admin("vera", "viewer password", access="viewer", actor=ACTOR)
    identifier, secret = book.ledger.add_credential("vera", actor=ACTOR)
    for action in ("UpdateClient", "CloseClient"):
        reply = asgi(app, data={"action": action, "identifier": identifier, "secret": secret,
                                "clientid": seeded.client_id, "city": "X"})  # fmt: skip
        assert reply.status == 403


def test_cli_wording(
    book: creditbook.Creditbook, seeded: Seed, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "(1 entry)", admin names and cut descriptions marked in ``credits``; column headers in
    ``balances``; ``ip remove`` (``ip deny`` still works, with a note); ``local_api`` writes name
    their caller."""
    book.local_api(
        "AddCredit",
        {"clientid": seeded.client_id, "amount": "1", "description": "x" * 80},
        admin_username="alice",
    )
    capsys.readouterr()
    assert main(["credits", str(seeded.client_id), "--database", database]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("(1 entry)") and " alice " in out and "x" * 57 + "..." in out
    assert main(["balances", "--asof", "2099-01-01", "--database", database]) == 0
    assert "CLIENT           BALANCE CUR  NAME  EMAIL" in capsys.readouterr().out
    assert main(["ip", "allow", "10.9.9.9", "--database", database]) == 0
    assert main(["ip", "remove", "10.9.9.9", "--database", database]) == 0
    assert main(["ip", "allow", "10.9.9.9", "--database", database]) == 0
    assert main(["ip", "deny", "10.9.9.9", "--database", database]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("Removed 10.9.9.9 from the allow-list") == 2
    assert "'ip deny' is now 'ip remove'" in captured.err
    assert book.ledger.activity(seeded.client_id, 1)[0].actor == "local:alice"
