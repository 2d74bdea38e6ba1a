"""Authentication: the three forms and every 403 message (spec section 3)."""

from __future__ import annotations

from typing import Any

import pytest

import creditbook
from creditbook.http import App
from creditbook.security import md5_hex
from helpers import ACTOR, PASSWORD, Seed, asgi


def post(app: App, **params: Any) -> tuple[int, dict[str, Any]]:
    response = asgi(app, data={"action": "GetAdminDetails", **params})
    return response.status, response.json()


def test_identifier_and_secret(app: App, seeded: Seed) -> None:
    """Form 1: identifier + secret."""
    status, body = post(app, identifier=seeded.identifier, secret=seeded.secret)
    assert (status, body["result"], body["adminid"]) == (200, "success", str(seeded.admin_id))


def test_credential_as_username_and_password(app: App, seeded: Seed) -> None:
    """Form 2: the credential pair sent as username + password."""
    status, body = post(app, username=seeded.identifier, password=seeded.secret)
    assert (status, body["result"]) == (200, "success")


def test_legacy_admin_login_with_md5(app: App, seeded: Seed) -> None:
    """Form 3: admin username + lower-case hex MD5 of the password (upper case accepted)."""
    assert post(app, username="alice", password=md5_hex(PASSWORD))[1]["result"] == "success"
    assert post(app, username="alice", password=md5_hex(PASSWORD).upper())[1]["result"] == "success"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"identifier": "IDENT"}, "Invalid or missing credentials"),
        ({"identifier": "unknown", "secret": "x"}, "Invalid or missing credentials"),
        ({"identifier": "IDENT", "secret": "wrong"}, "Authentication Failed"),
        (
            {"identifier": "IDENT", "username": "alice", "password": "MD5"},
            "Invalid or missing credentials",
        ),
        ({"username": "IDENT", "password": "wrong"}, "Authentication Failed"),
        ({"username": "nobody", "password": "MD5"}, "Authentication Failed"),
        ({"username": "alice", "password": "0" * 32}, "Authentication Failed"),
        ({"username": "alice", "password": "PLAIN"}, "Authentication Failed"),
        ({"username": "alice"}, "Authentication Failed"),
        ({}, "Authentication Failed"),
        ({"username": "", "password": ""}, "Authentication Failed"),
    ],
)
def test_failures_answer_403(app: App, seeded: Seed, params: dict[str, str], message: str) -> None:
    """Every failure is a 403 with the exact message."""
    subst = {"IDENT": seeded.identifier, "MD5": md5_hex(PASSWORD), "PLAIN": PASSWORD}
    params = {k: subst.get(v, v) for k, v in params.items()}
    assert post(app, **params) == (403, {"result": "error", "message": message})


def test_disabled_admin(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """A disabled admin's credential and login answer Administrator Account Disabled."""
    book.ledger.set_admin_disabled("alice", True, actor=ACTOR)
    expected = (403, {"result": "error", "message": "Administrator Account Disabled"})
    assert post(app, identifier=seeded.identifier, secret=seeded.secret) == expected
    assert post(app, username="alice", password=md5_hex(PASSWORD)) == expected
    # the same answer with a wrong password: it never confirms one (hardening item 13)
    assert post(app, username="alice", password="0" * 32) == expected
    book.ledger.set_admin_disabled("alice", False, actor=ACTOR)
    assert post(app, identifier=seeded.identifier, secret=seeded.secret)[0] == 200


def test_revoked_credential(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """A revoked credential no longer authenticates, in either form."""
    assert post(app, identifier=seeded.identifier, secret=seeded.secret)[0] == 200
    book.ledger.revoke_credential(seeded.identifier, actor=ACTOR)
    assert post(app, identifier=seeded.identifier, secret=seeded.secret)[1]["message"] == (
        "Invalid or missing credentials"
    )
    assert post(app, username=seeded.identifier, password=seeded.secret)[1]["message"] == (
        "Authentication Failed"
    )


def test_secrets_are_stored_hashed(book: creditbook.Creditbook, seeded: Seed) -> None:
    """Neither the secret nor the password appears in the database."""
    credential = book.ledger.credential(seeded.identifier)
    admin = book.ledger.admin("alice")
    assert credential is not None
    assert seeded.secret not in credential.secret_hash
    assert PASSWORD not in admin.password_hash and md5_hex(PASSWORD) not in admin.password_hash


def test_empty_action_is_400_before_auth(app: App) -> None:
    """A missing action answers 400 Empty action request."""
    response = asgi(app, data={"username": "x"})
    assert (response.status, response.json()) == (
        400,
        {"result": "error", "message": "Empty action request"},
    )


def test_unknown_action(app: App, seeded: Seed) -> None:
    """An unknown action answers 200 Command Not Found."""
    response = asgi(
        app,
        data={
            "action": "DeleteEverything",
            "identifier": seeded.identifier,
            "secret": seeded.secret,
        },
    )
    assert (response.status, response.json()) == (
        200,
        {"result": "error", "message": "Command Not Found"},
    )


@pytest.mark.parametrize("name", ["AddCredit", "addcredit", "add_credit", "ADD-CREDIT"])
def test_action_names_are_normalised(app: App, seeded: Seed, name: str) -> None:
    """Actions are case-insensitive and ignore characters outside [a-z0-9]."""
    response = asgi(
        app,
        data={
            "action": name,
            "identifier": seeded.identifier,
            "secret": seeded.secret,
            "clientid": seeded.client_id,
            "amount": "1",
            "description": "x",
        },
    )
    assert response.json()["result"] == "success"


def test_plain_password_verifies_against_the_stored_hash(
    book: creditbook.Creditbook, seeded: Seed
) -> None:
    """The stored hash verifies the plain password (CLI and web login) and its MD5 form (API)."""
    from creditbook.security import verify_md5_password, verify_password

    stored = book.ledger.admin("alice").password_hash
    assert verify_password(PASSWORD, stored) and not verify_password("wrong", stored)
    assert verify_md5_password(md5_hex(PASSWORD), stored)


def test_identifiers_and_secrets_never_start_with_a_dash() -> None:
    """A command line reads "--secret -x..." as another option (this once failed a test)."""
    from creditbook import security

    made = [security.new_identifier() for _ in range(3000)] + [
        security.new_secret() for _ in range(3000)
    ]
    assert not any(t.startswith("-") for t in made)
    assert len(set(made)) == 6000
