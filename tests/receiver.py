"""A real webhook receiver for tests: an HTTP server on loopback that verifies every signature."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    """One POST as the receiver saw it."""

    at: float
    webhook_id: str
    answered: int
    event: dict[str, Any] | None


@dataclass
class Receiver:
    """``mode`` is ``ok``, ``error`` (500) or ``slow`` (answers after ``delay``); ``stop()``
    takes it down (connections refused) and ``start()`` brings it back on the same port."""

    secret: str = ""
    mode: str = "ok"
    delay: float = 2.0
    attempts: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    server: http.server.ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self.port = 0
        self.start()

    def start(self) -> None:
        """Listen (again, on the same port after ``stop``)."""
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def setup(self) -> None:
                super().setup()
                # The headers and the body go out in two writes: without this, the body waits
                # for the delayed ACK of the headers (40 ms a request on loopback).
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:  # noqa: N802 the stdlib's name
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k: v for k, v in self.headers.items()}
                status = {"ok": 200, "error": 500, "slow": 200}.get(receiver.mode, 503)
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                event = None
                try:
                    event = Webhook(receiver.secret).verify(body, headers)
                except Exception:  # noqa: BLE001 counted: a test asserts there are none
                    receiver.bad_signatures += 1
                    status = 400
                receiver.attempts.append(
                    Received(arrived, headers.get("webhook-id", ""), status, event)
                )
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender timed out and left

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Shut the server down (its port then refuses connections)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def delivered(self) -> list[dict[str, Any]]:
        """Events the receiver accepted (2xx), in arrival order, duplicates included."""
        return [a.event for a in self.attempts if a.answered == 200 and a.event is not None]

    def unique(self) -> dict[str, dict[str, Any]]:
        """Accepted events by webhook-id (duplicates folded, as a receiver de-duplicates)."""
        return {e["id"]: e for e in self.delivered()}


def wait_for(check: Any, timeout: float = 30.0, step: float = 0.05) -> None:
    """Wait until ``check()`` is true, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step)
    raise AssertionError("timed out waiting")


def dump(value: Any) -> str:
    """Compact JSON, for assertion messages."""
    return json.dumps(value, default=str)[:2000]
