"""Hardening by fuzzing: arbitrary requests never yield a 5xx, always a well-formed envelope,
and an error response never changes the data (a full dump is compared before and after).

Examples per store: ``CREDITBOOK_FUZZ_EXAMPLES`` (default 2,500 on SQLite, 400 on PostgreSQL);
the request layer's raw-bytes fuzzing against a real server ``CREDITBOOK_FUZZ_LAYER_EXAMPLES``
(default 200); ``scripts/fuzz`` runs many more of both.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import creditbook
from creditbook.http import App
from helpers import ACTOR, Seed, asgi

#: Data tables compared before and after an error. Access bookkeeping (failure counts for
#: bans and their counter, credential last-use times, remembered idempotent outcomes) may
#: change on errors.
TABLES = [
    "clients",
    "admins",
    "credentials",
    "roles",
    "credential_roles",
    "credits",
    "activity",
    "settings",
    "ip_allow",
    "meta",
]
QUERIES = {
    "credentials": "SELECT id, identifier, secret_hash, admin_id, description, created_at"
    " FROM credentials ORDER BY 1",
    "meta": "SELECT * FROM meta WHERE name <> 'failure_version' ORDER BY 1",
}
EXAMPLES = int(os.environ.get("CREDITBOOK_FUZZ_EXAMPLES", "0"))

ACTIONS = [
    "AddCredit",
    "addcredit",
    "GetCredits",
    "GetClientsDetails",
    "AddClient",
    "GetClients",
    "GetAdminDetails",
    "",
    "Nope",
    "add_credit",
]
KEYS = [
    "action",
    "clientid",
    "amount",
    "description",
    "type",
    "date",
    "adminid",
    "email",
    "firstname",
    "lastname",
    "companyname",
    "currency",
    "limitstart",
    "limitnum",
    "search",
    "status",
    "sorting",
    "responsetype",
    "accesskey",
    "identifier",
    "secret",
    "username",
    "password",
    "idempotencykey",
    "amount[]",
    "clientid[x]",
    "a[b][c]",
]
texts = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "1.5",
            "0.001",
            "99999999999999.99",
            "1e5",
            "add",
            "remove",
            "json",
            "xml",
            "nvp",
            "2026-02-29",
            "2024-02-29",
            "DESC",
            "a@b.co",
            "NaN",
            "9" * 30,
            "null",
            "Array",
        ]
    ),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10).map(lambda s: s * 500),
)
raw_values = st.one_of(
    texts.map(lambda s: quote(s, safe="")),
    st.sampled_from(["%ff%fe", "%zz", "%", "%c3%28", "%ed%a0%80", "%00", "a+b", "%e2%82"]),
    st.binary(max_size=30).map(lambda b: "".join(f"%{x:02x}" for x in b)),
)
pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), raw_values), max_size=12
)
BASE = {  # a valid request per action, which the random pairs then extend or spoil
    "addcredit": "clientid=1&amount=1.25&description=fuzz",
    "getcredits": "clientid=1&limitnum=3",
    "getclientsdetails": "clientid=1",
    "addclient": "firstname=F&lastname=L&email=f{n}@example.com",
}
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
        "application/json",
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "",
        "application/xml",
        "garbage;;=",
        "application/x-www-form-urlencoded; charset=latin-1",
    ]
)


def dump(book: creditbook.Creditbook) -> list[Any]:
    """Every row of every data table."""
    rows: list[Any] = []
    with book.store._read() as cur:  # type: ignore[attr-defined]
        for table in TABLES:
            # Table names come from the constant list above.
            sql = QUERIES.get(table, f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608
            rows.append([tuple(r) for r in cur.execute(sql)])
    return rows


def well_formed(status: int, content_type: str, body: bytes) -> str:
    """Parse the envelope in whatever type it claims; return its result."""
    assert status in (200, 400, 403, 404, 405, 413), status
    if content_type == "application/json":
        result = json.loads(body)
        assert list(result)[0] == "result"
        return str(result["result"])
    if content_type.startswith("application/xml"):
        return str(ET.fromstring(body).findtext("result"))
    assert content_type == "text/plain; charset=utf-8"
    first = body.decode().split(";")[0]
    assert first.startswith("result=")
    return first[len("result=") :]


@pytest.fixture
def fuzz_target(
    database: str, app: App, seeded: Seed, book: creditbook.Creditbook
) -> tuple[App, Seed, creditbook.Creditbook, int]:
    examples = EXAMPLES or (2500 if database.startswith("sqlite") else 400)
    book.ledger.add_credit(clientid="1", amount="50", description="fuzz", actor=ACTOR)
    # Without this, three failures would ban the fuzzer and every later request read IP Banned.
    book.store.set_setting("ban_failures", "1000000000", ACTOR, book.ledger.now())
    return app, seeded, book, examples


def test_fuzz_the_endpoint(fuzz_target: tuple[App, Seed, creditbook.Creditbook, int]) -> None:
    """Arbitrary parameter sets: never a 5xx, always an envelope, errors change nothing."""
    app, seeded, book, examples = fuzz_target
    auth = f"identifier={seeded.identifier}&secret={seeded.secret}"
    seen: dict[str, int] = {}

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        body_pairs=pairs,
        query_pairs=pairs,
        ctype=content_types,
        authenticate=st.sampled_from([True, True, True, False]),
        action=st.sampled_from(ACTIONS),
        as_json=st.booleans(),
        method=st.sampled_from(["POST", "POST", "GET", "PUT"]),
        delivery=st.sampled_from(["whole", "whole", "slow", "truncated"]),
        split=st.integers(min_value=0, max_value=2**20),
    )
    def run(
        body_pairs: list[tuple[str, str]],
        query_pairs: list[tuple[str, str]],
        ctype: str,
        authenticate: bool,
        action: str,
        as_json: bool,
        method: str,
        delivery: str,
        split: int,
    ) -> None:
        body_text = "&".join(f"{quote(k, safe='[]')}={v}" for k, v in body_pairs)
        base = BASE.get(action.lower().replace("_", ""), "").format(n=len(seen))
        body_text = f"action={action}&{base}&" + (auth + "&" if authenticate else "") + body_text
        body = body_text.encode("latin-1", "replace")
        if as_json and ctype == "application/json":
            # JSON escapes can carry what form encoding cannot: lone surrogates and NUL.
            odd = {k: unquote(v) + "\ud800\x00" for k, v in body_pairs[:2]}
            fields = dict(body_pairs) | odd | {"action": action}
            if authenticate:
                fields |= {"identifier": seeded.identifier, "secret": seeded.secret}
            body = json.dumps(fields).encode()
        query = "&".join(f"{quote(k, safe='[]')}={v}" for k, v in query_pairs)
        before = dump(book)
        headers = {"content-type": ctype} if ctype else {}
        if delivery == "truncated" and method != "PUT":
            # The client goes away before the whole body arrived: no reply, nothing changed.
            cut = split % max(len(body), 1)
            response = asgi(app, method, data=body, query=query, headers=headers, cut=cut)
            assert response.status == 0
            assert dump(book) == before
            seen["truncated"] = seen.get("truncated", 0) + 1
            return
        # A slow client sends the body in small pieces; the outcome is the same as whole.
        chunk = 1 + split % 97 if delivery == "slow" else 65536
        response = asgi(app, method, data=body, query=query, headers=headers, chunk=chunk)
        result = well_formed(response.status, response.headers["content-type"], response.body)
        key = f"{response.status} {result}"
        seen[key] = seen.get(key, 0) + 1
        if result != "success":
            assert dump(book) == before

    run()
    print(f"\nfuzz outcomes over {sum(seen.values())} requests: {sorted(seen.items())}")
    assert seen.get("truncated", 0) > 0
    assert seen.get("200 success", 0) > examples // 20 and seen.get("403 error", 0) > 0


# --- the request layer, on a real server (headers, pipelining, slow bodies) ------------------

LAYER_EXAMPLES = int(os.environ.get("CREDITBOOK_FUZZ_LAYER_EXAMPLES", "200"))


@pytest.mark.slow
def test_fuzz_the_request_layer(tmp_path: Any) -> None:
    """Raw bytes at a real server: valid AddCredits pipelined with random headers (of any
    size), random junk after them, bodies sent in random pieces. Every request that arrived
    whole before the junk gets its own reply (200 or a 4xx), never a 5xx; the connection
    always ends; the balance moves by exactly the acknowledged credits; the server stays up."""
    import re
    import socket

    from helpers import Server, seed

    database = f"sqlite:///{tmp_path}/layer.db"
    with creditbook.open(database) as book:
        s = seed(book)
        book.store.set_setting("ban_failures", "1000000000", ACTOR, book.ledger.now())

    def request(headers: list[tuple[str, str]]) -> bytes:
        body = (
            f"action=AddCredit&identifier={s.identifier}&secret={s.secret}"
            f"&clientid={s.client_id}&amount=0.01&description=layer"
        ).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers)
        return (
            b"POST /includes/api.php HTTP/1.1\r\nHost: x\r\n%s"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
            % (head.encode("latin-1", "replace"), len(body), body)
        )

    names = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
                    min_size=1, max_size=12)  # fmt: skip
    values = st.one_of(
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        st.integers(0, 20_000).map(lambda n: "v" * n),
    )
    acknowledged = [0]
    with Server(
        database, env={"CREDITBOOK_ACCESS_LOG": "0", "CREDITBOOK_REQUEST_TIMEOUT": "3"}
    ) as server:

        @settings(max_examples=LAYER_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(
            requests=st.lists(
                st.lists(st.tuples(names, values), max_size=4), min_size=1, max_size=3
            ),  # fmt: skip
            junk=st.one_of(st.just(b""), st.binary(max_size=200)),
            piece=st.integers(1, 4096),
        )
        def run(requests: list[list[tuple[str, str]]], junk: bytes, piece: int) -> None:
            data = b"".join(request(h) for h in requests) + junk
            with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
                try:
                    for start in range(0, len(data), piece):
                        sock.sendall(data[start : start + piece])
                    if not junk:
                        sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # refused mid-way (a head over the limit): the reply is still read
                chunks = []
                try:
                    while chunk := sock.recv(65536):
                        chunks.append(chunk)
                except (TimeoutError, ConnectionResetError):
                    pass
            raw = b"".join(chunks)
            statuses = [int(x) for x in re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", raw)]
            assert all(status < 500 for status in statuses), raw[:500]
            acknowledged[0] += raw.count(b'"result":"success"')

        run()
        with creditbook.open(database) as book:
            balance = book.local_api("GetClientsDetails", {"clientid": s.client_id})["credit"]
        assert balance == f"{acknowledged[0] // 100}.{acknowledged[0] % 100:02d}"
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
