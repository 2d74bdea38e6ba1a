"""How fast a backlog of webhook events drains into a healthy receiver.

Usage: python bench/webhook_drain.py [CLIENTS] [EVENTS]   (default 2000 clients, 10000 events)

Writes EVENTS credits spread over CLIENTS clients of a fresh SQLite store with one endpoint,
then runs the dispatcher until a receiver (a small HTTP server in a process of its own,
answering 200 at once) has them all; prints events per second. Events of one client go one
after another (their order is kept), so few clients drain slower than many.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import creditbook
from creditbook.model import Actor
from creditbook.webhooks import Dispatcher, Policy, add_endpoint

RECEIVER = """
import http.server, socket
count = 0
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("content-length", "0")))
        count += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def do_GET(self):
        body = str(count).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def measure(clients: int = 2000, events: int = 10_000) -> float:
    """Events per second delivered from a full outbox."""
    actor = Actor("bench")
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    folder = tempfile.mkdtemp(prefix="creditbook-drain-")
    try:
        assert receiver.stdout is not None
        url = f"http://127.0.0.1:{int(receiver.stdout.readline())}/hooks"
        key = os.urandom(32)
        with creditbook.open(f"sqlite:///{folder}/drain.db") as book:
            add_endpoint(book.store, key, url, None, "", actor, book.ledger.now())
            ids = [
                book.ledger.add_client(
                    firstname="D", lastname=str(i), email=f"d{i}@example.com", actor=actor
                ).client_id
                for i in range(clients)
            ]
            rng = random.Random(1)
            for _ in range(0, events, 500):
                book.credit_many(
                    [
                        {"clientid": rng.choice(ids), "amount": "1.00", "description": "d"}
                        for _ in range(500)
                    ]
                )
            dispatcher = Dispatcher(book.store, lambda: key, Policy(interval=0.05))
            started = time.perf_counter()
            # (the client.created events are delivered too)
            while int(urllib.request.urlopen(url).read()) < events + clients:  # noqa: S310
                if not dispatcher.run_once():
                    time.sleep(0.01)
            return (events + clients) / (time.perf_counter() - started)
    finally:
        receiver.kill()
        receiver.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(f"{measure(*args):,.0f} events/s")
