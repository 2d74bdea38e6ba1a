"""How long the API spends on a hostile 1 MiB body, before and within the parameter limits.

Usage: python bench/parse_speed.py   prints JSON (milliseconds, medians of 5).

- ``refused_ms``: a whole request whose 1 MiB body is nothing but ``x[]=`` pairs (about 210,000,
  over the 1,000-parameter limit), through the ASGI app: refused before any parsing.
- ``parse_limit_ms``: parsing a 1 MiB body at the limit (1,000 pairs of about 1 KB each, list
  appends), the most a body can make the parser do.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from creditbook.config import Settings
from creditbook.http import create_app
from creditbook.whmcs.params import parse_query

MIB = 1024 * 1024


def _call(app: Any, body: bytes) -> int:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/includes/api.php",
        "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("192.0.2.1", 5000),
    }
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    status = [0]

    async def receive() -> dict[str, Any]:
        piece = chunks.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    asyncio.run(app(scope, receive, send))
    return status[0]


def measure() -> dict[str, float]:
    """Return the medians in milliseconds."""
    hostile = b"&".join([b"x[]="] * (MIB // 5))[:MIB]
    value = b"v" * (MIB // 1000 - 8)
    at_limit = b"&".join(b"x[]=" + value for _ in range(1000))[:MIB]
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database=str(Path(tmp) / "p.db"), access_log=False))
        app.store.migrate()
        refused, parsed = [], []
        for _ in range(5):
            started = time.perf_counter()
            assert _call(app, hostile) == 400
            refused.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            assert len(parse_query(at_limit)["x"]) == 1000  # type: ignore[arg-type]
            parsed.append((time.perf_counter() - started) * 1000)
        app.store.close()
    return {"refused_ms": statistics.median(refused), "parse_limit_ms": statistics.median(parsed)}


if __name__ == "__main__":
    json.dump(measure(), sys.stdout)
    print()
