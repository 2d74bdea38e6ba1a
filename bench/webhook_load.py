"""AddCredit throughput with a webhook endpoint whose receiver is down, against none.

The figure is the median over run pairs of (rate with the dead endpoint / rate without, in the
run just before): pairs measured seconds apart share the machine's state, medians of two
series measured at different moments do not.

With the endpoint, every credit writes its outbox row in its own transaction and the dispatcher
probes the dead receiver now and then (backing off); without one, no event is written (the same
one-row check runs).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import creditbook
from creditbook.keys import load_key
from creditbook.model import Actor
from creditbook.webhooks import add_endpoint
from pgserver import free_port

ACTOR = Actor("bench")


def measure(
    store: str,
    databases: tuple[str, str],
    ident: str,
    secret: str,
    runs: int,
    seconds: float,
) -> dict[str, Any]:
    """Median AddCredit/s at 32 connections without and with a dead endpoint, and their ratio.

    Two servers run side by side on two identically seeded databases (the same credential on
    both): one with no endpoint, one whose only endpoint's receiver is down from the start (so
    the dispatcher is in its steady state: backing off, probing now and then). wrk alternates
    between them; each pair of runs is seconds apart.
    """
    from run import Server, wrk

    key_dir = tempfile.mkdtemp(prefix="creditbook-key-")
    key_file = str(Path(key_dir) / "secret.key")
    os.environ["CREDITBOOK_SECRET_KEY_FILE"] = key_file
    dead = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens there
    plain, hooked = databases
    with creditbook.open(hooked) as book:
        endpoint, _ = add_endpoint(
            book.store, load_key(key_file, create=True), dead, None, "", ACTOR, book.ledger.now()
        )
    rates: dict[str, list[float]] = {"none": [], "dead": []}
    p99: dict[str, list[float]] = {"none": [], "dead": []}
    servers = {
        "none": Server("creditbook", plain, ident, secret),
        "dead": Server("creditbook", hooked, ident, secret),
    }
    try:
        for server in servers.values():
            wrk(server.url, 32, 3, False, ident, secret)  # warm-up (the dead one starts failing)
        for run in range(runs):
            for mode in ("none", "dead"):
                r = wrk(servers[mode].url, 32, seconds, False, ident, secret)
                rates[mode].append(r["rps"])
                p99[mode].append(r["p99_ms"])
                print(f"  {store} {mode:5} run {run + 1}: {r['rps']:8.0f} req/s", flush=True)
        with creditbook.open(hooked) as book:
            backlog = book.store.webhook_backlog()
            deliveries = book.store.list_deliveries(endpoint.id, limit=1)
    finally:
        for server in servers.values():
            server.stop()
        os.environ.pop("CREDITBOOK_SECRET_KEY_FILE", None)
        shutil.rmtree(key_dir, ignore_errors=True)
    none, with_dead = statistics.median(rates["none"]), statistics.median(rates["dead"])
    # Each "dead" run is compared with the "none" run just before it (same machine state).
    paired = [d / n for d, n in zip(rates["dead"], rates["none"], strict=True)]
    return {
        "none_rps": none,
        "dead_rps": with_dead,
        "ratio": statistics.median(paired),
        "ratios": paired,
        "none_p99_ms": statistics.median(p99["none"]),
        "dead_p99_ms": statistics.median(p99["dead"]),
        "backlog": backlog[0] + backlog[1],
        "attempts_newest": deliveries[0].attempts if deliveries else 0,
        "runs": runs,
        "seconds": seconds,
    }
