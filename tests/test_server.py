"""Real server processes: concurrency, racing removals and an unmodified third-party client."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Iterator

import pytest

import creditbook
from helpers import ACTOR, Seed, Server, hammer, seed

pytestmark = pytest.mark.slow


@pytest.fixture
def servers(database: str, book: creditbook.Creditbook) -> Iterator[list[Server]]:
    """SQLite: one ``serve --workers 2``. PostgreSQL: two separate processes of 2 workers."""
    count = 1 if database.startswith("sqlite") else 2
    started = [Server(database, "--workers", "2").start() for _ in range(count)]
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def auth(s: Seed) -> dict[str, str]:
    return {"identifier": s.identifier, "secret": s.secret}


def test_concurrent_mixed_credits_on_one_client(
    servers: list[Server], book: creditbook.Creditbook
) -> None:
    """4,000 adds and removes from 32 connections: balance == acked sum == entry sum."""
    s = seed(book)
    start = 1_000_000
    book.ledger.add_credit(
        clientid=str(s.client_id), amount="10000.00", description="float", actor=ACTOR
    )
    rng = random.Random(7)
    plan = [(rng.choice(["add", "remove"]), rng.randint(1, 999)) for _ in range(4000)]
    began = time.perf_counter()
    result = hammer(
        [sv.api for sv in servers], auth(s), s.client_id, len(plan), 32, plan.__getitem__
    )
    elapsed = time.perf_counter() - began
    client = book.ledger.get_client(str(s.client_id))
    total, _, entries = book.ledger.get_credits(str(s.client_id))
    entry_sum = sum(e.amount_cents for e in entries)
    assert result.failures == [] and result.refused == []
    assert len(result.acked) == 4000 and total == 4001
    assert client.balance_cents == start + sum(result.acked) == entry_sum
    assert min(result.balances) >= 0
    print(
        f"\n{len(plan)} requests, 32 connections, {len(servers)} process(es): "
        f"{len(plan) / elapsed:.0f} req/s, final balance {client.balance_cents} cents"
    )


def test_racing_removals_never_overdraw(servers: list[Server], book: creditbook.Creditbook) -> None:
    """500 concurrent removals of 1.00 from a balance of 100.00: exactly 100 succeed."""
    s = seed(book)
    book.ledger.add_credit(clientid=str(s.client_id), amount="100", description="x", actor=ACTOR)
    result = hammer(
        [sv.api for sv in servers], auth(s), s.client_id, 500, 32, lambda i: ("remove", 100)
    )
    assert result.failures == []
    assert len(result.acked) == 100
    assert set(result.refused) == {"Amount exceeds customer credit balance"}
    assert book.ledger.get_client(str(s.client_id)).balance_cents == 0
    assert sorted(result.balances) == list(range(0, 10_000, 100))


def test_whmcspy_performs_addcredit_unmodified(
    servers: list[Server], book: creditbook.Creditbook
) -> None:
    """The PyPI client whmcspy adds credit and reads the history through a real server."""
    import whmcspy

    s = seed(book)
    api = whmcspy.WHMCS(servers[0].api, s.identifier, s.secret)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = api.call(
            "AddCredit", clientid=s.client_id, description="via whmcspy", amount="12.34"
        )
        assert result == {"result": "success", "newbalance": "12.34"}
        credits = api.call("GetCredits", clientid=s.client_id)
    assert credits["credits"]["credit"][0]["description"] == "via whmcspy"
    with pytest.raises(whmcspy.Error, match="Amount exceeds customer credit balance"):
        api.call("AddCredit", clientid=s.client_id, description="x", amount="100", type="remove")


def test_whmcspy_pagination_and_permissions(
    servers: list[Server], book: creditbook.Creditbook
) -> None:
    """whmcspy's paginated_call walks GetClients; a role denial raises MissingPermission."""
    import whmcspy

    s = seed(book)
    for i in range(60):
        book.ledger.add_client(
            firstname="p", lastname=str(i), email=f"page{i}@example.com", actor=ACTOR
        )
    api = whmcspy.WHMCS(servers[0].api, s.identifier, s.secret)
    pages = list(api.paginated_call("GetClients", limitnum=25))
    assert [p["numreturned"] for p in pages] == [25, 25, 11]
    ids = [c["id"] for p in pages for c in p["clients"]["client"]]
    assert len(set(ids)) == 61
    book.ledger.put_role("readonly", ["getcredits"], actor=ACTOR)
    ident, secret = book.ledger.add_credential("alice", roles=["readonly"], actor=ACTOR)
    limited = whmcspy.WHMCS(servers[0].api, ident, secret)
    with pytest.raises(whmcspy.MissingPermission, match='API action "addcredit" is not allowed'):
        limited.call("AddCredit", clientid=s.client_id, description="x", amount="1")


def test_whmcs_api_client_unmodified(servers: list[Server], book: creditbook.Creditbook) -> None:
    """The PyPI client whmcs-api-client (posts to /api.php?action=X) adds and reads clients."""
    import whmcs_client

    s = seed(book)
    config = whmcs_client.Configuration(host=servers[0].url + "/includes")
    with whmcs_client.ApiClient(config) as client:
        api = whmcs_client.DefaultApi(client)
        added = api.add_client(
            username=s.identifier,
            password=s.secret,
            firstname="Wes",
            lastname="Client",
            email="wes@example.com",
            address1="1 Road",
            city="Oslo",
            state="Oslo",
            postcode="0150",
            country="NO",
            phonenumber="+47 22 00 00 00",
        )
        assert added.result == "success" and added.clientid == s.client_id + 1
        listed = api.get_clients(username=s.identifier, password=s.secret)
        assert listed.totalresults == 2 and listed.numreturned == 2
        assert [c.email for c in listed.clients.client][-1] == "wes@example.com"
        details = api.get_clients_details(
            username=s.identifier, password=s.secret, clientid=added.clientid
        )
        assert details.client.email == "wes@example.com"
        assert details.client.phonenumber == "+47 22 00 00 00"


def test_no_secrets_in_logs(servers: list[Server], book: creditbook.Creditbook) -> None:
    """Secrets, passwords and access keys never reach the log, in bodies or GET queries."""
    import httpx

    from creditbook.cli import main
    from creditbook.security import md5_hex
    from helpers import PASSWORD

    s = seed(book)
    access_key = "access-key-" + "k" * 20
    main(["config", "set", "api_access_key", access_key, "--database", book.store.url])
    server = servers[0]
    secrets = [s.secret, md5_hex(PASSWORD), access_key, "wrong-secret-zzz"]
    with httpx.Client() as http:
        query = {"action": "GetAdminDetails", "identifier": s.identifier}
        http.get(server.api, params={**query, "secret": s.secret})
        http.get(server.api, params={**query, "secret": "wrong-secret-zzz"})
        http.post(server.api, data={**query, "secret": s.secret, "accesskey": access_key})
        http.get(
            server.api,
            params={
                "action": "GetAdminDetails",
                "username": "alice",
                "password": md5_hex(PASSWORD),
                "accesskey": access_key,
            },
        )
        http.get(server.url + "/nowhere", params={"secret": s.secret})
    time.sleep(0.3)
    log = "".join(sv.output() for sv in servers)
    assert "GET /includes/api.php" in log
    for secret in secrets:
        assert secret not in log
