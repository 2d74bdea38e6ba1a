"""Wire protocol: response types, request parsing and body limits (spec sections 1, 2, 5)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import creditbook
from creditbook.http import App
from helpers import ACTOR, Seed, asgi


def auth(s: Seed) -> dict[str, str]:
    return {"identifier": s.identifier, "secret": s.secret}


def xml_of(body: bytes) -> ET.Element:
    root = ET.fromstring(body)
    assert root.tag == "whmcsapi"
    return root


CASES = [
    ({"action": "AddCredit", "clientid": "C", "amount": "1", "description": "d"}, 200, "success"),
    ({"action": "AddCredit", "clientid": "C", "amount": "x", "description": "d"}, 200, "error"),
    ({"action": "GetClientsDetails", "clientid": "C"}, 200, "success"),
    ({"action": "GetClientsDetails"}, 200, "error"),
    ({"action": "AddClient", "firstname": "a", "lastname": "b", "email": "n@x.io"}, 200, "success"),
    ({"action": "GetAdminDetails"}, 200, "success"),
    ({"action": "Nope"}, 200, "error"),
    ({"action": ""}, 400, "error"),
    ({"action": "AddCredit", "secret": "wrong"}, 403, "error"),
]


@pytest.mark.parametrize(("params", "status", "result"), CASES)
@pytest.mark.parametrize("fmt", ["json", "xml", "nvp", "JSON", "Xml"])
def test_every_response_type(
    app: App, seeded: Seed, params: dict[str, str], status: int, result: str, fmt: str
) -> None:
    """Successes and errors (400s and 403s too) render in the requested type."""
    data = {
        **auth(seeded),
        "responsetype": fmt,
        **{k: (str(seeded.client_id) if v == "C" else v) for k, v in params.items()},
    }
    response = asgi(app, data=data)
    assert response.status == status
    kind = fmt.lower()
    if kind == "json":
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert list(body)[0] == "result" and body["result"] == result
        assert ("message" in body) == (result == "error")
    elif kind == "xml":
        assert response.headers["content-type"] == "application/xml; charset=utf-8"
        assert response.body.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<whmcsapi')
        assert xml_of(response.body).findtext("result") == result
    else:
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        pairs = dict(p.split("=", 1) for p in response.text.split(";"))
        assert pairs["result"] == result


def test_nvp_shape(app: App, seeded: Seed) -> None:
    """NVP is key=value pairs joined by semicolons."""
    data = {
        **auth(seeded),
        "action": "AddCredit",
        "clientid": seeded.client_id,
        "amount": "123.45",
        "description": "x",
        "responsetype": "nvp",
    }
    assert asgi(app, data=data).text == "result=success;newbalance=123.45"


def test_unsupported_response_type(app: App, seeded: Seed) -> None:
    """An unknown responsetype answers a JSON error naming it."""
    response = asgi(app, data={**auth(seeded), "action": "GetAdminDetails", "responsetype": "yaml"})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "result": "error",
        "message": 'Unsupported response type "yaml": use json, xml or nvp',
    }


@pytest.mark.parametrize("action", ["GetCredits", "GetClients"])
def test_list_actions_refuse_nvp(app: App, seeded: Seed, action: str) -> None:
    """List actions answer an NVP error telling the caller to use json or xml."""
    response = asgi(
        app,
        data={
            **auth(seeded),
            "action": action,
            "clientid": seeded.client_id,
            "responsetype": "nvp",
        },
    )
    assert response.text == (
        "result=error;message=This+action+supports+only+the+json+and+xml+response+types"
    )


TRICKY = [
    'say "hi" & <b>bold</b>',
    "]]> end of cdata",
    "Ünïcödé ✓ 日本",
    "tab\tnew\nline\r",
    "a\r\nb",
    "'single' &amp; already",
    "emoji 🎉",
]


@pytest.mark.parametrize("text", TRICKY)
def test_xml_round_trips_any_stored_text(app: App, seeded: Seed, text: str) -> None:
    """Descriptions with markup, CDATA ends and non-ASCII come back exactly in XML and JSON."""
    asgi(
        app,
        data={
            **auth(seeded),
            "action": "AddCredit",
            "clientid": seeded.client_id,
            "amount": "1",
            "description": text,
        },
    )
    data = {**auth(seeded), "action": "GetCredits", "clientid": seeded.client_id}
    root = xml_of(asgi(app, data={**data, "responsetype": "xml"}).body)
    # CR is sent as &#13;, so the parser's line-end normalisation leaves it intact.
    assert root.find("credits/credit/description").text == text
    assert asgi(app, data=data).json()["credits"]["credit"][0]["description"] == text


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\ufffe"])
def test_control_characters_are_refused(app: App, seeded: Seed, char: str) -> None:
    """Characters XML cannot carry are refused at the door, never emitted raw."""
    response = asgi(
        app,
        data={
            **auth(seeded),
            "action": "AddCredit",
            "clientid": seeded.client_id,
            "amount": "1",
            "description": f"a{char}b",
        },
    )
    assert response.json() == {
        "result": "error",
        "message": "The description contains characters that are not allowed",
    }


def test_xml_lists_are_repeated_elements(app: App, seeded: Seed) -> None:
    """{"credits": {"credit": [a, b]}} renders as repeated <credit> children."""
    for amount in ("1", "2"):
        asgi(
            app,
            data={
                **auth(seeded),
                "action": "AddCredit",
                "clientid": seeded.client_id,
                "amount": amount,
                "description": "x",
            },
        )
    root = xml_of(
        asgi(
            app,
            data={
                **auth(seeded),
                "action": "GetCredits",
                "clientid": seeded.client_id,
                "responsetype": "xml",
            },
        ).body
    )
    assert [c.findtext("amount") for c in root.findall("credits/credit")] == ["1.00", "2.00"]
    assert root.findtext("totalresults") == "2"


# --- request parsing ----------------------------------------------------------------------------


def test_get_with_query_string(app: App, seeded: Seed) -> None:
    """GET works with everything in the query string."""
    from urllib.parse import urlencode

    query = urlencode(
        {
            **auth(seeded),
            "action": "AddCredit",
            "clientid": seeded.client_id,
            "amount": "2",
            "description": "get",
        }
    )
    assert asgi(app, "GET", query=query).json()["newbalance"] == "2.00"


def test_query_and_body_merge_body_wins(app: App, seeded: Seed) -> None:
    """The action may sit in the query; on a clash the body wins."""
    body = {**auth(seeded), "clientid": seeded.client_id, "amount": "3", "description": "merged"}
    response = asgi(app, data=body, query="action=AddCredit&amount=999")
    assert response.json()["newbalance"] == "3.00"


def test_json_object_body(app: App, seeded: Seed) -> None:
    """A JSON object body works; numbers keep their exact text."""
    body = json.dumps(
        {
            **auth(seeded),
            "action": "AddCredit",
            "clientid": seeded.client_id,
            "amount": 12.1,
            "description": "json",
            "date": None,
        }
    ).encode()
    response = asgi(app, data=body, headers={"content-type": "application/json"})
    assert response.json() == {"result": "success", "newbalance": "12.10"}


def test_multipart_body(app: App, seeded: Seed) -> None:
    """A multipart/form-data body works."""
    import httpx

    request = httpx.Request(
        "POST",
        "http://x/",
        data={
            **auth(seeded),
            "action": "AddCredit",
            "clientid": str(seeded.client_id),
            "amount": "4.5",
            "description": "mp",
        },
        files={"ignored": ("f.txt", b"file")},
    )
    body = request.read()
    response = asgi(app, data=body, headers={"content-type": request.headers["content-type"]})
    assert response.json() == {"result": "success", "newbalance": "4.50"}


def test_php_array_parameters() -> None:
    """pid[0]=1, a[b]=c and a[]=x parse into nested structures, as PHP does."""
    from creditbook.whmcs.params import parse_query, scalar

    params = parse_query("pid[0]=1&pid[1]=2&a[b][c]=d&l[]=x&l[]=y&plain=1&plain=2&e=")
    assert params["pid"] == {"0": "1", "1": "2"}
    assert params["a"] == {"b": {"c": "d"}}
    assert params["l"] == {"0": "x", "1": "y"}
    assert params["plain"] == "2"
    assert scalar(params, "e") is None and scalar(params, "pid") == "Array"


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(alphabet="ab=&+% 2F0Ef[]\u00e9\u20ac\U0001f600", max_size=40))
def test_pairs_split_as_the_library_does(text: str) -> None:
    """Query strings and form bodies split into the pairs ``parse_qsl`` gives: empty pieces
    skipped, names without ``=`` kept blank, ``+`` as space, bad escapes as U+FFFD."""
    from urllib.parse import parse_qsl

    from creditbook.whmcs.params import split_pairs

    for query in (text, text + "&x=%FF%E2%82", "=%2B+" + text):  # escapes that are not UTF-8
        expected = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace")
        assert split_pairs(query) == expected


def test_array_where_a_scalar_is_expected(app: App, seeded: Seed) -> None:
    """An array sent for a scalar reads as the text "Array", as PHP casts it."""
    response = asgi(
        app,
        data={
            **auth(seeded),
            "action": "AddCredit",
            "clientid": seeded.client_id,
            "amount[x]": "1",
            "description": "x",
        },
    )
    assert response.json()["message"] == "Amount must be in decimal format: ### or ###.##"


def test_empty_strings_count_as_absent(app: App, seeded: Seed) -> None:
    """username=&password= alongside identifier/secret are ignored; empty type means add."""
    response = asgi(
        app,
        data={
            **auth(seeded),
            "username": "",
            "password": "",
            "type": "",
            "action": "AddCredit",
            "clientid": seeded.client_id,
            "amount": "1",
            "description": "x",
            "date": "",
            "adminid": "",
        },
    )
    assert response.json()["result"] == "success"


@pytest.mark.parametrize("declared", [True, False])
def test_body_over_1_mib_is_413(app: App, seeded: Seed, declared: bool) -> None:
    """A body over 1 MiB answers 413 in the envelope, with or without Content-Length."""
    body = b"description=" + b"x" * (1024 * 1024)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if declared:
        headers["content-length"] = str(len(body))
    response = asgi(app, data=body, headers=headers, query="responsetype=xml")
    assert response.status == 413
    assert xml_of(response.body).findtext("message") == "Request body too large: the limit is 1 MiB"


def test_other_paths_and_methods(app: App) -> None:
    """Unknown paths are 404 and other methods 405, both in the envelope."""
    assert asgi(app, path="/nope").status == 404
    response = asgi(app, "DELETE")
    assert response.status == 405 and response.json()["result"] == "error"


def test_healthz(app: App) -> None:
    """/healthz answers 200 without authentication."""
    response = asgi(app, "GET", "/healthz")
    assert response.status == 200 and response.json()["status"] == "ok"


def test_local_api_results_match_http(app: App, seeded: Seed, book: creditbook.Creditbook) -> None:
    """local_api returns the same dictionaries as the HTTP JSON."""
    book.ledger.add_credit(clientid=str(seeded.client_id), amount="5", description="x", actor=ACTOR)
    for action in ("GetCredits", "GetClientsDetails", "GetClients"):
        params: dict[str, Any] = {"clientid": str(seeded.client_id)}
        via_http = asgi(app, data={**auth(seeded), "action": action, **params}).json()
        assert book.local_api(action, params) == via_http


@pytest.mark.parametrize("odd", ["\x00", "\ud800", "a\udfffb\x00"])
def test_nul_and_lone_surrogates_never_reach_the_database(app: App, seeded: Seed, odd: str) -> None:
    """JSON escapes for NUL or lone surrogates in lookups, auth and keys get clean answers."""
    cred = auth(seeded)
    cases: list[tuple[dict[str, str], int, str | None]] = [
        ({"action": "GetClients", **cred, "search": odd}, 200, "success"),
        ({"action": "GetClients", **cred, "status": odd}, 200, "success"),
        ({"action": "GetClientsDetails", **cred, "email": odd}, 200, "error"),
        ({"action": "GetClients", "identifier": odd, "secret": "x"}, 403, "error"),
        ({"action": "GetClients", "username": odd, "password": "a" * 32}, 403, "error"),
        (
            {"action": "AddClient", **cred, "firstname": odd, "lastname": "b", "email": "n@x.io"},
            200,
            None,
        ),
    ]
    for fields, status, result in cases:
        body = json.dumps(fields).encode()  # escapes them as \u0000 and \ud800
        response = asgi(app, data=body, headers={"content-type": "application/json"})
        assert response.status == status, fields
        if result is not None:
            assert response.json()["result"] == result, fields


def test_local_api_cleans_lone_surrogates(book: creditbook.Creditbook, seeded: Seed) -> None:
    """local_api callers passing unencodable text get an answer, not an exception."""
    result = book.local_api("GetClientsDetails", {"email": "\ud800@x.io"})
    assert result == {"result": "error", "message": "Client Not Found"}
    key = book.local_api(
        "AddCredit",
        {
            "clientid": seeded.client_id,
            "amount": "1",
            "description": "x",
            "idempotencykey": "k\x00",
        },
    )
    assert key == {
        "result": "error",
        "message": "The idempotency key contains characters that are not allowed",
    }
