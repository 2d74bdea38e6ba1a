"""Start a throwaway PostgreSQL for benchmarks; prints its URL, stops on Enter or SIGTERM.

Usage: python bench/pg.py   (reuses the test suite's server helper)
"""

from __future__ import annotations

import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from pgserver import PostgresServer, find_bindir  # noqa: E402


def main() -> None:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found: apt-get install postgresql")
    server = PostgresServer(bindir)
    server.start()
    print(server.url(), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        done.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
