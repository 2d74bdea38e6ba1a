"""AddCredit: every rule and message of spec section 6, in order, over HTTP and local_api."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import creditbook
from creditbook.http import App
from helpers import ACTOR, Seed, asgi

Call = Callable[[dict[str, Any]], dict[str, Any]]
MAX = "99999999999999.99"


@pytest.fixture(params=["http", "local_api"])
def call(request: pytest.FixtureRequest, seeded: Seed, book: creditbook.Creditbook) -> Call:
    """Send AddCredit (or another action) through one transport, authenticated."""
    if request.param == "local_api":

        def local(params: dict[str, Any]) -> dict[str, Any]:
            params = dict(params)
            return book.local_api(params.pop("action", "AddCredit"), params, "alice")

        return local
    app: App = request.getfixturevalue("app")

    def http(params: dict[str, Any]) -> dict[str, Any]:
        data = {
            "action": "AddCredit",
            "identifier": seeded.identifier,
            "secret": seeded.secret,
            **params,
        }
        response = asgi(app, data=data)
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"
        return response.json()  # type: ignore[no-any-return]

    return http


def credit(call: Call, seeded: Seed, **params: Any) -> dict[str, Any]:
    base = {"clientid": str(seeded.client_id), "description": "Test", "amount": "1.00"}
    return call({**base, **params})


def history(book: creditbook.Creditbook, client_id: int) -> list[Any]:
    return list(book.ledger.get_credits(str(client_id))[2])


def test_add_returns_the_new_balance(call: Call, seeded: Seed) -> None:
    """A successful add answers the WHMCS envelope with the new balance as a string."""
    assert credit(call, seeded, amount="12.34") == {"result": "success", "newbalance": "12.34"}
    assert credit(call, seeded, amount="0.66") == {"result": "success", "newbalance": "13.00"}


def test_money_edge_cases(call: Call, seeded: Seed) -> None:
    """0.01 is allowed, 12.1 means 12.10, and balances always carry two decimals."""
    assert credit(call, seeded, amount="0.01")["newbalance"] == "0.01"
    assert credit(call, seeded, amount="12.1")["newbalance"] == "12.11"
    assert credit(call, seeded, amount="7")["newbalance"] == "19.11"


@pytest.mark.parametrize("kind", ["add", "ADD", "Add", ""])
def test_type_add_is_case_insensitive_and_default(call: Call, seeded: Seed, kind: str) -> None:
    """type is case-insensitive and empty means add."""
    assert credit(call, seeded, type=kind)["newbalance"] == "1.00"


@pytest.mark.parametrize("kind", ["credit", "adds", "-", "remove "])
def test_rule1_type(call: Call, seeded: Seed, kind: str) -> None:
    """Rule 1: anything but add/remove."""
    assert credit(call, seeded, type=kind) == {
        "result": "error",
        "message": "Type can only be add or remove",
    }


@pytest.mark.parametrize("amount", [None, "", "0", "0.0", "0.00"])
def test_rule2_no_amount(call: Call, seeded: Seed, amount: str | None) -> None:
    """Rule 2: missing, empty or zero amount."""
    params = {"clientid": str(seeded.client_id), "description": "x"}
    if amount is not None:
        params["amount"] = amount
    assert call(params)["message"] == "No Amount Provided"


@pytest.mark.parametrize(
    "amount", ["-5", "+5", "1e3", "1,000", "1.234", ".5", "abc", "12.", " 1", "1 ", "0x10", "NaN"]
)
def test_rule3_amount_format(call: Call, seeded: Seed, amount: str) -> None:
    """Rule 3: no sign, exponent, separators, or more than two decimals."""
    assert credit(call, seeded, amount=amount)["message"] == (
        "Amount must be in decimal format: ### or ###.##"
    )


@pytest.mark.parametrize(
    "date", ["2026-02-30", "26-01-01", "2026/01/01", "2026-1-1", "yesterday", "2026-13-01"]
)
def test_rule4_date(call: Call, seeded: Seed, date: str) -> None:
    """Rule 4: a real calendar date written YYYY-MM-DD."""
    assert credit(call, seeded, date=date)["message"] == "Date Format is not Valid"


def test_date_is_stored_and_defaults_to_today(
    call: Call, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """A given date is stored; without one the entry is dated today."""
    credit(call, seeded, date="2024-02-29")
    credit(call, seeded)
    dates = [e.date for e in history(book, seeded.client_id)]
    assert dates == ["2024-02-29", book.ledger.today()]


@pytest.mark.parametrize("description", [None, ""])
def test_rule5_description_required(call: Call, seeded: Seed, description: str | None) -> None:
    """Rule 5: the description is required."""
    params = {"clientid": str(seeded.client_id), "amount": "1"}
    if description is not None:
        params["description"] = description
    assert call(params)["message"] == "No Description Provided"


def test_rule5_description_length(call: Call, seeded: Seed) -> None:
    """Rule 5: 65,535 characters are allowed, one more is not."""
    assert credit(call, seeded, description="d" * 65_535)["result"] == "success"
    assert credit(call, seeded, description="d" * 65_536)["message"] == "Description is too long"


@pytest.mark.parametrize("clientid", ["999", "abc", "-1", "1.0", "99999999999999999999999"])
def test_rule6_client(call: Call, seeded: Seed, clientid: str) -> None:
    """Rule 6: clientid must name an existing client; non-numeric counts as not found."""
    assert credit(call, seeded, clientid=clientid)["message"] == "Client ID Not Found"


def test_rule6_missing_client(call: Call) -> None:
    """Rule 6: a missing clientid is not found."""
    assert call({"description": "x", "amount": "1"})["message"] == "Client ID Not Found"


def test_rule7_admin(call: Call, seeded: Seed, book: creditbook.Creditbook) -> None:
    """Rule 7: adminid must name an existing, enabled admin; it is recorded on the entry."""
    assert credit(call, seeded, adminid="999")["message"] == "Admin ID Not Found"
    assert credit(call, seeded, adminid="x")["message"] == "Admin ID Not Found"
    other = book.ledger.add_admin("bob", "pw-0123456789", actor=ACTOR)
    book.ledger.set_admin_disabled("bob", True, actor=ACTOR)
    assert credit(call, seeded, adminid=str(other))["message"] == "Admin ID Not Found"
    book.ledger.set_admin_disabled("bob", False, actor=ACTOR)
    assert credit(call, seeded, adminid=str(other))["result"] == "success"
    assert credit(call, seeded)["result"] == "success"
    assert [e.admin_id for e in history(book, seeded.client_id)] == [other, seeded.admin_id]


def test_rule8_removal_beyond_balance(call: Call, seeded: Seed) -> None:
    """Rule 8: a removal beyond the balance is refused; exactly the whole balance is allowed."""
    credit(call, seeded, amount="10.00")
    assert credit(call, seeded, type="remove", amount="10.01")["message"] == (
        "Amount exceeds customer credit balance"
    )
    assert credit(call, seeded, type="remove", amount="10.00")["newbalance"] == "0.00"
    assert credit(call, seeded, type="remove", amount="0.01")["message"] == (
        "Amount exceeds customer credit balance"
    )


def test_rule9_balance_limit(call: Call, seeded: Seed) -> None:
    """Rule 9: the largest balance is 14 integer digits; one cent more is refused."""
    assert credit(call, seeded, amount=MAX)["newbalance"] == MAX
    assert credit(call, seeded, amount="0.01")["message"] == (
        "Amount exceeds the maximum credit balance"
    )
    assert credit(call, seeded, type="remove", amount=MAX)["newbalance"] == "0.00"
    assert credit(call, seeded, amount="1" + "0" * 40)["message"] == (
        "Amount exceeds the maximum credit balance"
    )
    assert credit(call, seeded, type="remove", amount="9" * 40)["message"] == (
        "Amount exceeds customer credit balance"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {
                "type": "x",
                "amount": "",
                "date": "bad",
                "description": "",
                "clientid": "0",
                "adminid": "0",
            },
            "Type can only be add or remove",
        ),
        (
            {"amount": "", "date": "bad", "description": "", "clientid": "0", "adminid": "0"},
            "No Amount Provided",
        ),
        (
            {"amount": "1.001", "date": "bad", "description": "", "clientid": "0", "adminid": "0"},
            "Amount must be in decimal format: ### or ###.##",
        ),
        (
            {"amount": "1", "date": "bad", "description": "", "clientid": "0", "adminid": "0"},
            "Date Format is not Valid",
        ),
        (
            {"amount": "1", "description": "", "clientid": "0", "adminid": "0"},
            "No Description Provided",
        ),
        (
            {"amount": "1", "description": "x", "clientid": "0", "adminid": "0"},
            "Client ID Not Found",
        ),
        (
            {"amount": "1", "description": "x", "adminid": "0", "type": "remove"},
            "Admin ID Not Found",
        ),
        (
            {"amount": "1", "description": "x", "type": "remove"},
            "Amount exceeds customer credit balance",
        ),
    ],
)
def test_rules_are_checked_in_order(
    call: Call, seeded: Seed, params: dict[str, str], message: str
) -> None:
    """With several faults, the first rule in spec order is the one reported."""
    params = {"clientid": str(seeded.client_id), **params}
    assert call(params) == {"result": "error", "message": message}


def test_an_error_changes_nothing(call: Call, seeded: Seed, book: creditbook.Creditbook) -> None:
    """A refused operation leaves balance and history untouched."""
    credit(call, seeded, amount="5.00")
    for bad in (
        {"amount": "x"},
        {"type": "remove", "amount": "6"},
        {"amount": MAX},
        {"description": "bad\x00text"},
    ):
        assert credit(call, seeded, **bad)["result"] == "error"
    assert book.ledger.get_client(str(seeded.client_id)).balance_cents == 500
    assert len(history(book, seeded.client_id)) == 1


def test_entries_record_the_operation(
    call: Call, seeded: Seed, book: creditbook.Creditbook
) -> None:
    """Entries carry the signed amount, running balance, admin, relid 0 and description."""
    credit(call, seeded, amount="3.50", description="top up")
    credit(call, seeded, amount="1.25", type="remove", description="fee")
    entries = history(book, seeded.client_id)
    assert [(e.amount_cents, e.balance_cents, e.relid, e.description) for e in entries] == [
        (350, 350, 0, "top up"),
        (-125, 225, 0, "fee"),
    ]
    log = book.ledger.activity(seeded.client_id)
    assert [a.action for a in log[:2]] == ["addcredit", "addcredit"]


def test_local_api_without_admin_stores_zero(book: creditbook.Creditbook, seeded: Seed) -> None:
    """local_api without admin_username records admin id 0."""
    result = book.local_api(
        "addcredit", {"clientid": seeded.client_id, "amount": "2", "description": "x"}
    )
    assert result == {"result": "success", "newbalance": "2.00"}
    assert history(book, seeded.client_id)[0].admin_id == 0


def test_local_api_unknown_admin(book: creditbook.Creditbook, seeded: Seed) -> None:
    """An unknown admin_username is an error dict, not an exception."""
    assert book.local_api("AddCredit", {"clientid": 1}, "nobody") == {
        "result": "error",
        "message": "Administrator Not Found",
    }


def test_local_api_module_function(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """creditbook.local_api uses CREDITBOOK_DATABASE."""
    monkeypatch.setenv("CREDITBOOK_DATABASE", f"{tmp_path}/env.db")
    with creditbook.open() as book:
        client = book.ledger.add_client(firstname="a", lastname="b", email="a@b.cd", actor=ACTOR)
    result = creditbook.local_api(
        "AddCredit", {"clientid": client.client_id, "amount": "1.5", "description": "x"}
    )
    assert result == {"result": "success", "newbalance": "1.50"}
    assert creditbook.local_api("", {}) == {"result": "error", "message": "Empty action request"}
    assert creditbook.local_api("Nope", {})["message"] == "Command Not Found"
    creditbook._default.pop(f"{tmp_path}/env.db").close()
