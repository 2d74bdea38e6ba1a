"""Webhooks: the transactional outbox, signed at-least-once delivery, ordering, retries, the
dispatcher's lease, and the CLI. Receivers are real HTTP servers verifying every signature with
the ``standardwebhooks`` library."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import creditbook
from creditbook import webhooks
from creditbook.cli import main
from creditbook.store.webhooks import WebhookStore
from creditbook.webhooks import Dispatcher, Policy, add_endpoint, backoff
from helpers import ACTOR, Server, seed
from receiver import Receiver, dump, wait_for

KEY = os.urandom(32)
FAST = Policy(timeout=0.5, retry_base=0.2, retry_cap=1.0, lease=5.0, interval=0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def store_of(book: creditbook.Creditbook) -> WebhookStore:
    assert isinstance(book.store, WebhookStore)
    return book.store


def listen(book: creditbook.Creditbook, receiver: Receiver, events: str | None = None) -> int:
    """Add an endpoint for the receiver and give it the secret; return the endpoint's id."""
    endpoint, secret = add_endpoint(
        store_of(book), KEY, receiver.url, events, "test", ACTOR, book.ledger.now()
    )
    receiver.secret = secret
    return endpoint.id


def drain(dispatcher: Dispatcher, until: Any, timeout: float = 30.0) -> None:
    """Run passes until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "events were not delivered in time"
        if not dispatcher.run_once():
            time.sleep(0.02)


def client(book: creditbook.Creditbook, name: str) -> int:
    return book.ledger.add_client(
        firstname=name, lastname="Client", email=f"{name}@example.com", actor=ACTOR
    ).client_id


def credit(
    book: creditbook.Creditbook, client_id: int, amount: str, **extra: str
) -> dict[str, Any]:
    return book.local_api(
        "AddCredit",
        {"clientid": client_id, "amount": amount, "description": f"c {amount}", **extra},
    )


# --- the outbox: one event per committed change, none for the rest ------------------------------


def test_every_committed_change_gets_exactly_one_signed_event(
    book: creditbook.Creditbook, receiver: Receiver
) -> None:
    listen(book, receiver)
    a, b = client(book, "ann"), client(book, "bob")
    assert credit(book, a, "10.00")["result"] == "success"
    assert credit(book, a, "3.00", type="remove")["result"] == "success"
    assert credit(book, a, "100.00", type="remove")["result"] == "error"  # refused
    assert credit(book, 999999, "1.00")["result"] == "error"  # no such client
    keyed = {"idempotencykey": "order-7"}
    assert credit(book, b, "7.00", **keyed)["result"] == "success"
    assert credit(book, b, "7.00", **keyed)["result"] == "success"  # a replay: no change
    results = book.credit_many([{"clientid": b, "amount": "1.00", "description": "m"}] * 3)
    assert all(r["result"] == "success" for r in results)
    with pytest.raises(creditbook.errors.CreditError):
        book.ledger.add_client(
            firstname="x", lastname="y", email="ann@example.com", actor=ACTOR
        )  # a duplicate: refused, no event

    dispatcher = Dispatcher(store_of(book), lambda: KEY, FAST)
    expected = 2 + 2 + 1 + 3
    drain(dispatcher, lambda: len(receiver.unique()) >= expected)
    dispatcher.run_once()
    assert receiver.bad_signatures == 0
    events = receiver.delivered()
    assert len(events) == expected == len({e["id"] for e in events}), dump(events)
    assert all(e["id"].startswith("evt_") and e["timestamp"] for e in events)
    kinds = [(e["type"], e["data"]["client_id"]) for e in events]
    assert kinds.count(("client.created", a)) == kinds.count(("client.created", b)) == 1
    credits = [e for e in events if e["type"].startswith("credit.")]
    entries = {
        (c["clientid"] if "clientid" in c else cid, int(c["id"])): c
        for cid in (a, b)
        for c in book.local_api("GetCredits", {"clientid": cid})["credits"]["credit"]
    }
    assert len(credits) == len(entries) == 6
    for event in credits:
        data = event["data"]
        entry = entries[(data["client_id"], data["entry_id"])]
        assert data["amount"] == entry["amount"]
        assert event["type"] == (
            "credit.added" if not data["amount"].startswith("-") else "credit.removed"
        )
        assert data["description"] == entry["description"] and data["date"] == entry["date"]
    removed = [e for e in credits if e["type"] == "credit.removed"]
    assert [e["data"]["amount"] for e in removed] == ["-3.00"]
    assert removed[0]["data"]["balance"] == "7.00"
    assert [e["data"]["idempotency_key"] for e in credits if e["data"]["client_id"] == b] == [
        "order-7",
        None,
        None,
        None,
    ]
    # Per client, events arrive in the order the changes happened.
    for cid in (a, b):
        ids = [e["data"].get("entry_id", 0) for e in events if e["data"]["client_id"] == cid]
        assert ids == sorted(ids) and ids[0] == 0  # client.created first


def test_no_endpoint_means_no_outbox_rows(book: creditbook.Creditbook, receiver: Receiver) -> None:
    store = store_of(book)
    a = client(book, "ann")
    credit(book, a, "1.00")
    assert store.webhook_backlog()[:2] == (0, 0)
    endpoint_id = listen(book, receiver, "credit.added")
    credit(book, a, "2.00")
    credit(book, a, "1.00", type="remove")  # not subscribed: no delivery
    store.set_endpoint_enabled(endpoint_id, False, ACTOR, book.ledger.now())
    credit(book, a, "4.00")  # no enabled endpoint: no event
    store.set_endpoint_enabled(endpoint_id, True, ACTOR, book.ledger.now())
    dispatcher = Dispatcher(store, lambda: KEY, FAST)
    drain(dispatcher, lambda: len(receiver.unique()) >= 1)
    time.sleep(0.1)
    dispatcher.run_once()
    assert [e["data"]["amount"] for e in receiver.delivered()] == ["2.00"]
    assert store.webhook_backlog()[:2] == (0, 0)


# --- ordering and retries (a scripted receiver and clock) ----------------------------------------


class Script:
    """A sender whose answer depends on the event, and a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.calls: list[tuple[float, bool, dict[str, Any]]] = []
        self.fail: set[tuple[int, str]] = set()  # (client id, amount) answered 500
        self.down = False

    def clock(self) -> float:
        return self.now

    def send(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, str]:
        event = json.loads(body)
        assert headers["webhook-id"] == event["id"]
        failing = self.down or (event["data"]["client_id"], event["data"]["amount"]) in self.fail
        self.calls.append((self.now, not failing, event))
        if self.down:
            return 0, "ConnectionRefusedError"
        return (500, "Internal Server Error") if failing else (200, "")

    def sent(self, client_id: int, ok: bool | None = None) -> list[str]:
        return [
            e["data"]["amount"]
            for _, good, e in self.calls
            if e["data"]["client_id"] == client_id and (ok is None or good == ok)
        ]


def test_a_failing_event_holds_back_its_client_only(
    book: creditbook.Creditbook, receiver: Receiver
) -> None:
    listen(book, receiver, "credit.added")
    a, b = client(book, "ann"), client(book, "bob")
    for amount in ("1.00", "2.00", "3.00"):
        credit(book, a, amount)
        credit(book, b, amount)
    script = Script()
    script.fail.add((a, "1.00"))
    dispatcher = Dispatcher(
        store_of(book), lambda: KEY, Policy(), sender=script.send, clock=script.clock
    )
    for _ in range(5):  # all at the same instant: A's first is not due again yet
        dispatcher.run_once()
    assert script.sent(a) == ["1.00"]
    assert script.sent(b) == ["1.00", "2.00", "3.00"]
    script.fail.clear()
    script.now += 10  # past the first retry's wait (at most 5 s)
    for _ in range(5):
        dispatcher.run_once()
    assert script.sent(a, ok=True) == ["1.00", "2.00", "3.00"]
    assert script.sent(b) == ["1.00", "2.00", "3.00"]  # nothing sent twice


def test_backoff_policy() -> None:
    policy = Policy()
    assert all(2.5 <= backoff(1, policy) <= 5.0 for _ in range(100))  # first retry within 10 s
    assert all(backoff(n, policy) <= 3600 for n in range(1, 100))  # at most an hour apart
    assert backoff(30, policy, rand=lambda: 1.0) == 3600
    assert backoff(3, policy, rand=lambda: 1.0) == 20


def test_a_dead_endpoint_is_probed_then_disabled_after_the_window(
    book: creditbook.Creditbook, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint_id = listen(book, receiver, "credit.added")
    clients = [client(book, f"c{i}") for i in range(5)]
    for cid in clients:
        credit(book, cid, "1.00")
    script = Script()
    script.down = True
    store = store_of(book)
    dispatcher = Dispatcher(store, lambda: KEY, Policy(), sender=script.send, clock=script.clock)
    dispatcher.run_once()
    assert len(script.calls) == 5  # healthy until the first failures
    gaps = []
    for _ in range(200):
        before = len(script.calls)
        endpoint = store.get_endpoint(endpoint_id)
        assert endpoint is not None
        if not endpoint.enabled:
            break
        gaps.append(endpoint.retry_at - script.now)
        script.now = max(script.now, endpoint.retry_at) + 0.001
        dispatcher.run_once()
        assert len(script.calls) - before <= 1  # a failing endpoint gets one probe at a time
    assert 2.5 <= gaps[0] <= 5.0
    assert max(gaps) <= 3600.0
    assert script.now - 1_000_000.0 >= 86400  # retried for the whole day
    endpoint = store.get_endpoint(endpoint_id)
    assert (
        endpoint is not None
        and not endpoint.enabled
        and "failing continuously" in endpoint.disabled_note
    )
    failed = store.list_deliveries(endpoint_id, failed=True)
    assert len(failed) == 5 and all(d.status == "failed" for d in failed)
    assert any("disabled" in r.message and r.levelno == logging.ERROR for r in caplog.records)
    # After an outage the backlog follows the first successful attempt at once.
    store.set_endpoint_enabled(endpoint_id, True, ACTOR, book.ledger.now())
    for d in failed:
        store.redeliver(d.id, script.now, ACTOR, book.ledger.now())
    script.down = False
    script.calls.clear()
    dispatcher.run_once()
    assert len(script.calls) == 5


# --- a real receiver through an outage ----------------------------------------------------------


def test_receiver_down_then_erroring_then_slow_gets_everything_after_recovery(
    book: creditbook.Creditbook, receiver: Receiver
) -> None:
    listen(book, receiver, "credit.added,credit.removed")
    clients = [client(book, f"c{i}") for i in range(4)]
    receiver.stop()  # down: connections refused
    for cid in clients:
        credit(book, cid, "5.00")
        credit(book, cid, "1.00", type="remove")
    dispatcher = Dispatcher(store_of(book), lambda: KEY, FAST)
    dispatcher.start()
    try:
        time.sleep(1.0)
        receiver.mode = "error"
        receiver.start()
        time.sleep(1.5)
        receiver.mode, receiver.delay = "slow", 1.0  # past the 0.5 s timeout
        time.sleep(1.5)
        # The slow answers arrived after the timeout: the dispatcher counts none delivered
        # (the receiver may have processed them: it will see those ids again).
        assert not [d for d in store_of(book).list_deliveries() if d.status == "delivered"]
        receiver.mode = "ok"
        wait_for(lambda: len(receiver.unique()) == 8, timeout=20)
    finally:
        dispatcher.stop()
    assert receiver.bad_signatures == 0
    # Retries were spaced by the policy: never closer than half the base wait.
    by_id: dict[str, list[float]] = defaultdict(list)
    for attempt in receiver.attempts:
        by_id[attempt.webhook_id].append(attempt.at)
    retried = [sorted(times) for times in by_id.values() if len(times) > 1]
    assert retried, "the receiver saw no retry"
    for times in retried:
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= FAST.retry_base * 0.5 - 0.05, gaps
        assert max(gaps) <= FAST.retry_cap + FAST.timeout + 2.0, gaps
    # Every client's events arrived in order (first delivery of each id).
    firsts: dict[str, dict[str, Any]] = {}
    for event in receiver.delivered():
        firsts.setdefault(event["id"], event)
    for cid in clients:
        amounts = [e["data"]["amount"] for e in firsts.values() if e["data"]["client_id"] == cid]
        assert amounts == ["5.00", "-1.00"]


# --- the CLI ---------------------------------------------------------------------------------


def test_webhook_cli(
    sqlite_database: str, tmp_path: Any, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database", sqlite_database]
    assert main(["webhook", "add", receiver.url, "--events", "credit.added", "--json", *db]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["secret"].startswith("whsec_") and added["events"] == ["credit.added"]
    key_file = sqlite_database.removeprefix("sqlite:///") + "-secret.key"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert main(["webhook", "add", "ftp://x", *db]) == 1
    assert "http:// or https://" in capsys.readouterr().err
    assert main(["webhook", "add", receiver.url, "--events", "credit.eaten", *db]) == 1
    assert "Unknown event credit.eaten" in capsys.readouterr().err
    # The secret is not in the database: only derived from the key file.
    with open(sqlite_database.removeprefix("sqlite:///"), "rb") as f:
        assert added["secret"].encode() not in f.read()
    receiver.secret = added["secret"]
    book = creditbook.open(sqlite_database)
    try:
        cid = client(book, "ann")
        credit(book, cid, "3.00")
        dispatcher = webhooks.dispatcher_for(
            book.store, creditbook.config.Settings(database=sqlite_database)
        )
        assert dispatcher is not None
        drain(dispatcher, lambda: len(receiver.unique()) == 1)
    finally:
        book.close()
    assert main(["webhook", "deliveries", "--json", *db]) == 0
    deliveries = json.loads(capsys.readouterr().out)
    assert [(d["status"], d["attempts"], d["event_type"]) for d in deliveries] == [
        ("delivered", 1, "credit.added")
    ]
    assert main(["webhook", "redeliver", str(deliveries[0]["id"]), *db]) == 0
    assert "Queued delivery" in capsys.readouterr().out
    assert main(["webhook", "deliveries", "--failed", *db]) == 0
    assert "pending" not in capsys.readouterr().out
    assert main(["webhook", "disable", str(added["id"]), *db]) == 0
    assert main(["webhook", "list", "--json", *db]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert listed[0]["enabled"] is False
    assert main(["webhook", "enable", str(added["id"]), *db]) == 0
    assert main(["webhook", "remove", str(added["id"]), *db]) == 0
    assert main(["webhook", "remove", str(added["id"]), *db]) == 1
    assert "not found" in capsys.readouterr().err


# --- the server: SIGKILL with events pending, and one deliverer among many --------------------


def serve_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "CREDITBOOK_WEBHOOK_RETRY_BASE": "1",
        "CREDITBOOK_WEBHOOK_RETRY_CAP": "1",
        "CREDITBOOK_WEBHOOK_TIMEOUT": "2",
        "CREDITBOOK_WEBHOOK_LEASE": "3",
        "CREDITBOOK_LOG_LEVEL": "info",
        **(extra or {}),
    }


def served(database: str, tmp_path: Any, receiver: Receiver) -> tuple[Any, dict[str, str]]:
    """Seed a database with an endpoint for the receiver (the key in a file of its own);
    return the seed and the environment a server needs to deliver."""
    key_file = str(tmp_path / "secret.key")
    with creditbook.open(database) as book:
        s = seed(book)
        _, receiver.secret = add_endpoint(
            store_of(book),
            creditbook.keys.load_key(key_file, create=True),
            receiver.url,
            None,
            "",
            ACTOR,
            book.ledger.now(),
        )
    return s, serve_env({"CREDITBOOK_SECRET_KEY_FILE": key_file})


def api_credits(server: Server, ident: str, secret: str, client_id: int, n: int) -> None:
    with httpx.Client(timeout=10) as http:
        for i in range(n):
            reply = http.post(
                server.api,
                data={
                    "action": "AddCredit",
                    "identifier": ident,
                    "secret": secret,
                    "clientid": client_id,
                    "amount": f"{i + 1}.00",
                    "description": f"n{i}",
                    "responsetype": "json",
                },
            ).json()
            assert reply["result"] == "success", reply


def test_events_pending_at_sigkill_are_delivered_after_restart(
    sqlite_database: str, tmp_path: Any, receiver: Receiver
) -> None:
    s, env = served(sqlite_database, tmp_path, receiver)
    receiver.stop()
    server = Server(sqlite_database, "--workers", "2", env=env).start()
    try:
        api_credits(server, s.identifier, s.secret, s.client_id, 20)
        time.sleep(1.5)  # attempted and failed at least once: pending, in backoff
        server.kill()
    finally:
        server.stop()
    receiver.start()
    with Server(sqlite_database, "--workers", "2", env=env):
        wait_for(lambda: len(receiver.unique()) == 20, timeout=30)
    assert receiver.bad_signatures == 0
    amounts = [e["data"]["amount"] for e in receiver.unique().values()]
    assert sorted(amounts, key=float) == [f"{i + 1}.00" for i in range(20)]


def test_one_server_delivers_and_another_takes_over_when_it_dies(
    postgres: Any, tmp_path: Any, receiver: Receiver
) -> None:
    from conftest import new_pg_database

    url = new_pg_database(postgres)
    s, env = served(url, tmp_path, receiver)
    first = Server(url, env=env).start()
    second = Server(url, env=env).start()
    try:
        api_credits(first, s.identifier, s.secret, s.client_id, 5)
        api_credits(second, s.identifier, s.secret, s.client_id, 5)
        wait_for(lambda: len(receiver.unique()) == 10, timeout=30)
        leaders = [srv for srv in (first, second) if "webhook delivery taken" in srv.output()]
        assert len(leaders) == 1, [srv.output()[-2000:] for srv in (first, second)]
        leader = leaders[0]
        other = second if leader is first else first
        leader.kill()
        api_credits(other, s.identifier, s.secret, s.client_id, 5)
        wait_for(lambda: len(receiver.unique()) == 15, timeout=30)
        assert "webhook delivery taken" in other.output()
    finally:
        first.stop()
        second.stop()
    assert receiver.bad_signatures == 0
    ids = [e["data"]["entry_id"] for e in receiver.unique().values() if "entry_id" in e["data"]]
    assert len(ids) == 15


def test_client_created_carries_its_data_and_idempotency_key(
    book: creditbook.Creditbook, receiver: Receiver
) -> None:
    listen(book, receiver, "client.created")
    reply = book.local_api(
        "AddClient",
        {
            "firstname": "Kim",
            "lastname": "Kay",
            "email": "kim@example.com",
            "idempotencykey": "signup-1",
        },
    )
    assert reply["result"] == "success"
    dispatcher = Dispatcher(store_of(book), lambda: KEY, FAST)
    drain(dispatcher, lambda: len(receiver.unique()) == 1)
    (event,) = receiver.delivered()
    assert event["type"] == "client.created"
    assert event["data"]["client_id"] == int(reply["clientid"])
    assert event["data"]["email"] == "kim@example.com"
    assert event["data"]["idempotency_key"] == "signup-1"


class Trickle:
    """A receiver that sends its status line, then one byte a second, for as long as it is
    let (the hardening issue's slow receiver)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: Any) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self._stop.wait(1.0):
                    conn.sendall(b"X")
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def test_item10_a_slow_receiver_holds_back_no_one_and_no_stop(
    book: creditbook.Creditbook, receiver: Receiver
) -> None:
    """A receiver trickling a byte a second: its attempt ends at the timeout (the whole
    exchange), another endpoint gets every event meanwhile, and stopping the dispatcher does
    not wait for the trickle."""
    trickle = Trickle()
    try:
        listen(book, receiver)
        add_endpoint(store_of(book), KEY, trickle.url, None, "slow", ACTOR, book.ledger.now())
        cid = client(book, "slow")
        policy = Policy(timeout=1.0, retry_base=60.0, retry_cap=60.0, lease=5.0, interval=0.02)
        dispatcher = Dispatcher(store_of(book), lambda: KEY, policy)
        dispatcher.start()
        started = time.monotonic()
        for n in range(5):
            book.local_api("AddCredit", {"clientid": cid, "amount": "1", "description": f"{n}"})
        wait_for(lambda: len(receiver.unique()) == 6, timeout=10)  # client.created + 5
        assert time.monotonic() - started < 3.0  # not after the trickle's timeout
        wait_for(lambda: trickle.connections >= 1, timeout=10)
        wait_for(
            lambda: any(
                d.last_error == "timed out after 1 s"
                for d in store_of(book).list_deliveries(limit=50)
            ),
            timeout=10,
        )
        dispatcher.halt()
        book.local_api("AddCredit", {"clientid": cid, "amount": "1", "description": "again"})
        stopping = time.monotonic()
        dispatcher.stop()
        assert time.monotonic() - stopping < 2.0
    finally:
        trickle.close()


@pytest.mark.slow
def test_item10_sigterm_stops_a_server_whatever_a_receiver_does(
    sqlite_database: str, tmp_path: Any
) -> None:
    """A server delivering to a trickling receiver (a 10 s timeout) exits promptly on SIGTERM."""
    import signal

    trickle = Trickle()
    key_file = str(tmp_path / "secret.key")
    try:
        with creditbook.open(sqlite_database) as book:
            s = seed(book)
            add_endpoint(
                store_of(book), creditbook.keys.load_key(key_file, create=True), trickle.url,
                None, "", ACTOR, book.ledger.now(),
            )  # fmt: skip
        env = serve_env(
            {"CREDITBOOK_SECRET_KEY_FILE": key_file, "CREDITBOOK_WEBHOOK_TIMEOUT": "60"}
        )
        server = Server(sqlite_database, env=env).start()
        try:
            api_credits(server, s.identifier, s.secret, s.client_id, 1)
            wait_for(lambda: trickle.connections >= 1, timeout=10)
            time.sleep(1.5)  # the trickle is under way
            assert server.proc is not None
            stopping = time.monotonic()
            os.killpg(server.proc.pid, signal.SIGTERM)
            server.proc.wait(timeout=10)
            assert time.monotonic() - stopping < 5.0
            assert server.proc.returncode == 0
        finally:
            server.stop()
    finally:
        trickle.close()
