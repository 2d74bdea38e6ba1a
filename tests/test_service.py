"""Running as a service: SIGTERM under load stops gracefully (every credit answered success is
durable, none applied unanswered, exit 0), and ``serve --ssl-certfile/--ssl-keyfile`` serves
HTTPS with a certificate the suite makes."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import creditbook
from helpers import Server, seed

pytestmark = pytest.mark.slow


def test_sigterm_under_load_loses_and_invents_nothing(database: str) -> None:
    with creditbook.open(database) as book:
        s = seed(book)
    env = {"CREDITBOOK_WEBHOOKS": "0", "CREDITBOOK_GRACE_SECONDS": "10"}
    server = Server(database, "--workers", "2", env=env).start()
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        with httpx.Client(timeout=20) as http:
            while not stop.is_set():
                i += 1
                description = f"load {n}-{i}"
                data = {"action": "AddCredit", "identifier": s.identifier, "secret": s.secret,
                        "clientid": str(s.client_id), "amount": "1.00",
                        "description": description, "responsetype": "json"}  # fmt: skip
                try:
                    reply = http.post(server.api, data=data)
                except httpx.HTTPError:
                    return  # the server closed: no answer, so it must not be applied
                if reply.status_code == 200 and reply.json().get("result") == "success":
                    with lock:
                        acked.add(description)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    time.sleep(2)
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGTERM)
    started = time.monotonic()
    status = server.proc.wait(timeout=30)
    stopped = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join()
    server.stop()
    assert status == 0 and stopped < 12
    with creditbook.open(database) as book:
        _, _, entries = book.ledger.get_credits(str(s.client_id))
        stored = {e.description for e in entries}
        client_row = book.store.get_client(s.client_id)
        assert client_row is not None
        assert client_row.balance_cents == 100 * len(stored)
    assert len(acked) > 50
    assert acked <= stored  # every answered credit is durable
    assert stored <= acked  # nothing was applied without its answer


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_serve_speaks_https_itself(sqlite_database: str, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server = Server(sqlite_database, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                    env={"CREDITBOOK_WEBHOOKS": "0"})  # fmt: skip
    server.url = server.url.replace("http://", "https://")
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 30
    server.log = open(server.log_path, "wb")  # noqa: SIM115 closed by stop()
    server.proc = subprocess.Popen(server.args, stdout=server.log, stderr=subprocess.STDOUT,
                                   env=server.env, start_new_session=True)  # fmt: skip
    try:
        while True:
            try:
                reply = httpx.get(server.url + "/healthz", verify=context, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.1)
        assert reply.status_code == 200
        login = httpx.get(server.url + "/admin/login", verify=context)
        assert login.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=2)
    finally:
        server.stop()


def test_https_needs_both_files(sqlite_database: str, tmp_path: Path, capsys: Any) -> None:
    from creditbook.cli import main

    cert, _ = _certificate(tmp_path)
    assert main(["serve", "--database", sqlite_database, "--ssl-certfile", str(cert)]) == 2
    assert "both --ssl-certfile and --ssl-keyfile" in capsys.readouterr().err
