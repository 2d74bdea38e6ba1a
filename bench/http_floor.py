"""What the HTTP layer alone costs per request on this machine: a fixed AddCredit-sized reply
served three ways, side by side.

Usage: python bench/http_floor.py [RUNS]   (e.g. ``... 3``)

- ``raw``: an asyncio protocol on uvloop that parses requests with httptools and writes the
  reply, no ASGI: the floor for a Python server here;
- ``uvicorn``: a bare ASGI app (read the body, send the reply) under uvicorn (httptools, uvloop);
- ``uvicorn + guard``: the same under Creditbook's protocol class (``transport.py``: a
  whole-request deadline and a connection cap), as ``creditbook serve`` runs.

One process each, 32 connections from wrk with bench/addcredit.lua for 5 s, in turns (the
order reversed every other round). Prints requests/s and the server's CPU per request (user
and system time over requests answered).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"result":"success","newbalance":"1.25"}'
REPLY = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The bare ASGI app: read the whole body, send the reply."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def raw(port: int) -> None:
    """Serve REPLY to every request with httptools on uvloop, no ASGI."""
    import asyncio

    import httptools
    import uvloop

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.transport.write(REPLY)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", port)
        await server.serve_forever()

    uvloop.run(serve())


def start(kind: str) -> tuple[subprocess.Popen[bytes], str]:
    """One server process of that kind on a free port; (process, URL)."""
    from run import PY

    from pgserver import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'bench'}:{ROOT / 'src'}"}
    if kind == "raw":
        args = [PY, str(Path(__file__)), "--raw", str(port)]
    else:
        http = (
            "creditbook.transport:GuardedHttpProtocol" if kind == "uvicorn + guard" else "httptools"
        )
        args = [PY, "-m", "uvicorn", "http_floor:app", "--port", str(port), "--http", http]
        args += ["--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}/includes/api.php"


def main() -> None:
    # The harness is imported here: uvicorn imports this module for ``app`` alone.
    sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]
    from run import cpu_seconds, group_pids, in_turn, stop, wrk

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    servers = {kind: start(kind) for kind in ("raw", "uvicorn", "uvicorn + guard")}
    try:
        for _, url in servers.values():
            wrk(url, 32, 2, False, "-", "-")  # warm-up
        results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in servers}
        for run in range(runs):
            for kind, (proc, url) in in_turn(servers.items(), run):
                pids = group_pids(proc.pid)
                before = cpu_seconds(pids)
                r = wrk(url, 32, 5, False, "-", "-")
                cpu = cpu_seconds(pids) - before
                results[kind].append((r["rps"], 1e6 * cpu / r["requests"]))
        for kind, rows in results.items():
            rps = statistics.median(r[0] for r in rows)
            cpu = statistics.median(r[1] for r in rows)
            print(f"{kind}: {rps:,.0f}/s, {cpu:.1f} us of server CPU per request")
    finally:
        for proc, _ in servers.values():
            stop(proc)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--raw"]:
        raw(int(sys.argv[2]))
    else:
        main()
