"""Seed a benchmark database: an admin, a full-access credential, and N clients.

Usage: python bench/seed.py DATABASE_URL [CLIENTS]   prints "IDENT SECRET" on stdout.
"""

from __future__ import annotations

import sys

import creditbook
from creditbook.model import Actor
from creditbook.store import NewClient


def seed(url: str, clients: int) -> tuple[str, str]:
    """Create the admin, credential and clients; return (identifier, secret)."""
    actor = Actor("bench")
    with creditbook.open(url) as book:
        book.ledger.add_admin("bench", "bench-password", actor=actor)
        ident, secret = book.ledger.add_credential("bench", actor=actor)
        now = book.ledger.now()
        for i in range(clients):
            book.store.add_client(
                NewClient(
                    "Bench", str(i), "", f"bench{i}@example.com", "USD", "Active", "{}", actor, now
                )
            )
    return ident, secret


if __name__ == "__main__":
    ident, secret = seed(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
    print(ident, secret)
