"""Monitoring: /metrics (Prometheus, across worker processes, behind the allow-list) and JSON
logs (one object per line, no secrets)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

import creditbook
from creditbook.config import Settings
from creditbook.http import create_app
from helpers import ACTOR, PASSWORD, Server, asgi, seed
from receiver import wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics page by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(
    page: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        v
        for (n, ls), v in page.items()
        if n == name and all(dict(ls).get(k) == val for k, val in labels.items())
    )


def test_metrics_add_up_across_two_workers(sqlite_database: str) -> None:
    book = creditbook.open(sqlite_database)
    s = seed(book)
    book.store.set_setting("ban_failures", "1000", ACTOR, book.ledger.now())
    book.close()
    sent: Counter[tuple[str, str]] = Counter()

    def call(params: dict[str, Any]) -> None:
        with httpx.Client(timeout=10) as http:  # a connection each: both workers serve
            http.post(server.api, data={"responsetype": "json", **params}).raise_for_status()

    base = {"identifier": s.identifier, "secret": s.secret, "clientid": s.client_id}
    with Server(sqlite_database, "--workers", "2") as server:

        def worker(n: int) -> None:
            for i in range(10):
                call({**base, "action": "AddCredit", "amount": "1.00", "description": f"{n}-{i}"})

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent["addcredit", "success"] += 40
        for _ in range(6):
            call({**base, "action": "AddCredit", "amount": "999.00", "type": "remove",
                  "description": "too much"})  # fmt: skip
        sent["addcredit", "refused"] += 6
        for _ in range(4):
            reply = httpx.post(server.api, data={**base, "secret": "wrong", "action": "GetCredits"})
            assert reply.status_code == 403
        sent["getcredits", "denied"] += 4
        for _ in range(5):
            call({**base, "action": "GetCredits"})
        sent["getcredits", "success"] += 5
        call({**base, "action": "NoSuchThing"})
        sent["other", "invalid"] += 1
        pages = [httpx.get(server.url + "/metrics", timeout=10) for _ in range(4)]
    for reply in pages:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
    page = samples(pages[-1].text)
    for (action, result), count in sent.items():
        assert total(page, "creditbook_requests_total", action=action, result=result) == count
    assert total(page, "creditbook_requests_total") == sum(sent.values())
    assert total(page, "creditbook_request_duration_seconds_count") == sum(sent.values())
    assert total(page, "creditbook_request_duration_seconds_count", action="addcredit") == 46
    # Every write went through a group commit: the batch sizes add up to at least the credits
    # (the rest: recorded authentication failures, credential use, the webhook lease).
    assert 46 <= total(page, "creditbook_commit_batch_size_sum") <= 46 + 4 + 10
    assert total(page, "creditbook_auth_failures_total") == 4
    assert total(page, "creditbook_database_errors_total") == 0
    assert ("creditbook_webhook_backlog", ()) in page
    assert ("creditbook_webhook_oldest_undelivered_seconds", ()) in page


def test_metrics_are_behind_the_allow_list(sqlite_database: str) -> None:
    book = creditbook.open(sqlite_database)
    seed(book)
    book.close()
    app = create_app(Settings(database=sqlite_database, access_log=False))
    try:
        assert asgi(app, "GET", "/metrics", client="127.0.0.1").status == 200
        refused = asgi(app, "GET", "/metrics", client="203.0.113.9")
        assert refused.status == 403
        assert refused.json()["message"] == "Invalid IP 203.0.113.9"
    finally:
        app.store.close()


def test_json_logs_one_object_per_line_without_secrets(sqlite_database: str) -> None:
    book = creditbook.open(sqlite_database)
    s = seed(book)
    book.close()
    env = {"CREDITBOOK_LOG_FORMAT": "json"}
    server = Server(sqlite_database, env=env).start()
    try:
        good = {
            "action": "AddCredit",
            "identifier": s.identifier,
            "secret": s.secret,
            "clientid": s.client_id,
            "amount": "2.50",
            "description": "logged",
            "responsetype": "json",
        }
        reply = httpx.post(server.api, data=good, headers={"X-Request-Id": "req-42"})
        assert reply.headers["x-request-id"] == "req-42"
        reply = httpx.post(server.api, data={**good, "secret": "not-the-secret-xyz"})
        assert reply.status_code == 403 and reply.headers["x-request-id"]
        login = {"action": "GetCredits", "username": "alice", "password": PASSWORD,
                 "clientid": s.client_id}  # fmt: skip
        httpx.post(server.api, data=login)
        # Three access lines (not merely three mentions of the path: another log line can
        # name it before the last request's own line is written).
        wait_for(lambda: server.output().count('"path": "/includes/api.php"') >= 3, timeout=10)
        output = server.output()
    finally:
        server.stop()
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "message"} <= r.keys() for r in records)
    access = [r for r in records if r.get("path") == "/includes/api.php"]
    assert len(access) == 3
    first = access[0]
    assert first["request_id"] == "req-42" and first["action"] == "addcredit"
    assert first["client_id"] == s.client_id and first["status"] == 200
    assert isinstance(first["duration_ms"], float)
    assert access[1]["status"] == 403
    for secret in (s.secret, "not-the-secret-xyz", PASSWORD):
        assert secret not in output


def test_metrics_folders_of_killed_servers_are_removed(tmp_path: Any, monkeypatch: Any) -> None:
    import os
    import subprocess
    import tempfile

    from creditbook import serve

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])  # noqa: S607 a process that has ended
    gone.wait()
    orphan = tmp_path / f"{serve.METRICS_PREFIX}{gone.pid}-abc"
    alive = tmp_path / f"{serve.METRICS_PREFIX}{os.getpid()}-def"
    other = tmp_path / "unrelated-123"
    for folder in (orphan, alive, other):
        folder.mkdir()
    serve._remove_orphaned_metrics()
    assert not orphan.exists() and alive.exists() and other.exists()
