"""The related actions of spec section 7, through local_api and HTTP."""

from __future__ import annotations

import json

import pytest

import creditbook
from creditbook.cli import main
from creditbook.http import App
from helpers import ACTOR, Seed, asgi


def add(book: creditbook.Creditbook, client_id: int, *amounts: str) -> None:
    for amount in amounts:
        kind = "remove" if amount.startswith("-") else "add"
        book.ledger.add_credit(
            clientid=str(client_id),
            amount=amount.lstrip("-"),
            type=kind,
            description=f"d{amount}",
            actor=ACTOR,
        )


def test_get_credits(book: creditbook.Creditbook, seeded: Seed) -> None:
    """GetCredits lists every entry oldest first, with adminid and running balance."""
    add(book, seeded.client_id, "10", "-2.5", "0.05")
    result = book.local_api("GetCredits", {"clientid": seeded.client_id}, "alice")
    assert result["totalresults"] == 3 and result["clientid"] == str(seeded.client_id)
    assert "numreturned" not in result
    credits = result["credits"]["credit"]
    assert [(c["amount"], c["balance"]) for c in credits] == [
        ("10.00", "10.00"),
        ("-2.50", "7.50"),
        ("0.05", "7.55"),
    ]
    base = {"id", "date", "description", "amount", "relid", "adminid", "balance", "kind"}
    assert set(credits[0]) == base | {"category", "expires", "remaining"}
    assert credits[0]["relid"] == "0" and credits[0]["adminid"] == "0"
    # Grants: category, expiry and what is left; a removal: what it took from which grant.
    assert (credits[0]["kind"], credits[0]["category"], credits[0]["expires"]) == (
        "grant",
        "paid",
        "",
    )
    assert credits[0]["remaining"] == "7.50" and credits[2]["remaining"] == "0.05"
    assert set(credits[1]) == base | {"spent"}
    assert credits[1]["spent"] == [{"id": credits[0]["id"], "amount": "2.50"}]


def test_get_credits_paging(book: creditbook.Creditbook, seeded: Seed) -> None:
    """limitstart/limitnum page the history and report startnumber and numreturned."""
    add(book, seeded.client_id, *[str(i) for i in range(1, 8)])
    page = book.local_api(
        "GetCredits", {"clientid": seeded.client_id, "limitstart": 2, "limitnum": 3}
    )
    assert (page["totalresults"], page["startnumber"], page["numreturned"]) == (7, 2, 3)
    assert [c["amount"] for c in page["credits"]["credit"]] == ["3.00", "4.00", "5.00"]
    tail = book.local_api("GetCredits", {"clientid": seeded.client_id, "limitstart": 6})
    assert tail["numreturned"] == 1
    past = book.local_api("GetCredits", {"clientid": seeded.client_id, "limitstart": 70})
    assert past["numreturned"] == 0 and past["credits"]["credit"] == []


def test_get_credits_errors(book: creditbook.Creditbook, seeded: Seed) -> None:
    """An unknown client is Client ID Not Found; a client without entries lists none."""
    assert book.local_api("GetCredits", {"clientid": 999})["message"] == "Client ID Not Found"
    empty = book.local_api("GetCredits", {"clientid": seeded.client_id})
    assert empty["totalresults"] == 0 and empty["credits"] == {"credit": []}


def test_get_credits_streams_large_histories(
    app: App, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """A history larger than one fetch page streams in full and in order."""
    add(book, seeded.client_id, *["0.01"] * 4500)
    response = asgi(
        app,
        data={
            "identifier": seeded.identifier,
            "secret": seeded.secret,
            "action": "GetCredits",
            "clientid": seeded.client_id,
        },
    )
    credits = response.json()["credits"]["credit"]
    assert len(credits) == 4500 and credits[-1]["balance"] == "45.00"
    assert "content-length" not in response.headers


def test_get_clients_details(book: creditbook.Creditbook, seeded: Seed) -> None:
    """By id or e-mail (case-insensitive), fields duplicated at top level; credit has 2 dp."""
    add(book, seeded.client_id, "7.3")
    by_id = book.local_api("GetClientsDetails", {"clientid": seeded.client_id})
    by_email = book.local_api("GetClientsDetails", {"email": "CAROL-alice@example.com"})
    assert by_id == by_email
    assert by_id["client"]["credit"] == by_id["credit"] == "7.30"
    for field in (
        "id",
        "firstname",
        "lastname",
        "companyname",
        "email",
        "status",
        "currency_code",
        "credit",
    ):
        assert by_id["client"][field] == by_id[field]
    assert by_id["client"]["currency_code"] == "USD" and by_id["status"] == "Active"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Either clientid Or email Is Required"),
        ({"clientid": "999"}, "Client Not Found"),
        ({"clientid": "x"}, "Client Not Found"),
        ({"email": "none@example.com"}, "Client Not Found"),
    ],
)
def test_get_clients_details_errors(
    book: creditbook.Creditbook, seeded: Seed, params: dict[str, str], message: str
) -> None:
    """GetClientsDetails errors."""
    assert book.local_api("GetClientsDetails", params) == {"result": "error", "message": message}


def test_add_client(book: creditbook.Creditbook, seeded: Seed) -> None:
    """AddClient returns the new id as a string and stores optional address fields."""
    result = book.local_api(
        "AddClient",
        {
            "firstname": "Dan",
            "lastname": "Doe",
            "email": "dan@example.com",
            "companyname": "D Ltd",
            "currency": "eur",
            "city": "Oslo",
            "phonenumber": "+47 1",
        },
    )
    assert result == {"result": "success", "clientid": str(seeded.client_id + 1)}
    details = book.local_api("GetClientsDetails", {"clientid": result["clientid"]})
    assert (details["companyname"], details["currency_code"], details["city"]) == (
        "D Ltd",
        "EUR",
        "Oslo",
    )
    assert details["phonenumber"] == "+47 1" and details["credit"] == "0.00"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lastname": "b", "email": "a@b.cd"}, "You did not enter your first name"),
        ({"firstname": "a", "email": "a@b.cd"}, "You did not enter your last name"),
        ({"firstname": "a", "lastname": "b"}, "You did not enter your email address"),
        (
            {"firstname": "a", "lastname": "b", "email": "nope"},
            "The email address you entered was not valid",
        ),
        (
            {"firstname": "a", "lastname": "b", "email": "CAROL-ALICE@example.com"},
            "A user already exists with that email address",
        ),
        (
            {"firstname": "a" * 256, "lastname": "b", "email": "z@b.cd"},
            "The first name is too long",
        ),
        (
            {"firstname": "a", "lastname": "b", "email": "z@b.cd", "currency": "dollars"},
            "Unknown currency DOLLARS: use one of the ISO 4217 codes",
        ),
    ],
)
def test_add_client_errors(
    book: creditbook.Creditbook, seeded: Seed, params: dict[str, str], message: str
) -> None:
    """AddClient validation messages, checked in order; nothing is created."""
    assert book.local_api("AddClient", params) == {"result": "error", "message": message}
    assert book.local_api("GetClients", {})["totalresults"] == 1


def test_get_clients(book: creditbook.Creditbook, seeded: Seed) -> None:
    """GetClients pages, searches, filters by status and sorts; counters are numbers."""
    for i in range(30):
        book.local_api(
            "AddClient", {"firstname": f"F{i}", "lastname": "Bulk", "email": f"bulk{i}@example.com"}
        )
    first = book.local_api("GetClients", {})
    assert (first["totalresults"], first["startnumber"], first["numreturned"]) == (31, 0, 25)
    assert set(first["clients"]["client"][0]) == {
        "id",
        "firstname",
        "lastname",
        "companyname",
        "email",
        "datecreated",
        "groupid",
        "status",
    }
    second = book.local_api("GetClients", {"limitstart": 25})
    assert second["numreturned"] == 6
    found = book.local_api("GetClients", {"search": "BULK2"})
    assert {c["email"] for c in found["clients"]["client"]} == {"bulk2@example.com"} | {
        f"bulk2{i}@example.com" for i in range(10)
    }
    desc = book.local_api("GetClients", {"sorting": "DESC", "limitnum": 2})
    assert [c["id"] for c in desc["clients"]["client"]] == ["31", "30"]
    assert book.local_api("GetClients", {"status": "Closed"})["totalresults"] == 0
    assert book.local_api("GetClients", {"search": "%"})["totalresults"] == 31


def test_get_admin_details(book: creditbook.Creditbook, seeded: Seed) -> None:
    """GetAdminDetails describes the acting admin."""
    result = book.local_api("GetAdminDetails", {}, "alice")
    assert result["adminid"] == str(seeded.admin_id) and result["name"] == "Alice Admin"
    assert result["email"] == "alice@example.com"
    assert "addcredit" in result["allowedpermissions"].split(",")
    assert book.local_api("GetAdminDetails", {})["message"] == "Administrator Not Found"


def test_every_change_is_in_the_activity_log(
    app: App,
    book: creditbook.Creditbook,
    seeded: Seed,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Data changes write an activity line with actor and address; creditbook log reads it."""
    auth = {"identifier": seeded.identifier, "secret": seeded.secret}
    asgi(
        app,
        data={
            **auth,
            "action": "AddCredit",
            "clientid": seeded.client_id,
            "amount": "1",
            "description": "api",
        },
        client="::1",
    )
    new = asgi(
        app,
        data={
            **auth,
            "action": "AddClient",
            "firstname": "a",
            "lastname": "b",
            "email": "log@example.com",
        },
    ).json()["clientid"]
    actions = [a.action for a in book.ledger.activity()]
    for expected in ("addadmin", "addcredential", "addclient", "addcredit"):
        assert expected in actions
    latest = book.ledger.activity(seeded.client_id)[0]
    assert (latest.action, latest.ip, latest.actor) == (
        "addcredit",
        "::1",
        f"credential:{seeded.identifier}",
    )
    capsys.readouterr()
    assert main(["log", "--client", new, "--json", "--database", database]) == 0
    lines = json.loads(capsys.readouterr().out)
    assert [line["action"] for line in lines] == ["addclient"]
    assert main(["log", "--database", database]) == 0
    assert "Added credit 1.00: api" in capsys.readouterr().out


def test_add_client_race_on_the_unique_index(
    book: creditbook.Creditbook, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another AddClient takes the address between the check and the insert, the unique
    index refuses it and the caller reads the duplicate message, not a database error."""
    from creditbook.store import queries

    # Simulate losing the race: the pre-insert check sees nothing.
    monkeypatch.setattr(
        queries,
        "CLIENT_EMAIL_TAKEN",
        "SELECT 1 FROM clients WHERE email_key = :email_key AND 1 = 0",
    )
    result = book.local_api(
        "AddClient", {"firstname": "a", "lastname": "b", "email": "carol-alice@example.com"}
    )
    assert result == {"result": "error", "message": "A user already exists with that email address"}
