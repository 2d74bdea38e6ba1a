"""The hash chain: each credit entry carries a SHA-256 over its content and its predecessor's hash.

Chains are per client (an entry's predecessor is the same client's previous entry), so they grow
in parallel and no global lock is needed. The canonical text is defined once here and once in
SQL (the batch function ``creditbook_apply_credits``, PostgreSQL migration 0008); ``verify``
recomputes every hash in Python, so the two must agree, and a test checks that they do.

A seal is a digest over every client's chain head at one moment (client, entry count, head
hash): an auditor keeps it outside the system, and ``verify --seal`` later proves that nothing
sealed then has changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

#: The predecessor hash of a client's first entry.
GENESIS = ""
VERSION = "creditbook-entry-v1"


def entry_hash(
    client_id: int,
    seq: int,
    date: str,
    amount_cents: int,
    admin_id: int,
    relid: int,
    created_at: str,
    actor: str,
    description: str,
    prev: str,
) -> str:
    """Return an entry's hash: lower-case hex SHA-256 of its canonical text.

    Free-form fields carry their length, so none can borrow another's separator.
    """
    text = (
        f"{VERSION}|{client_id}|{seq}|{date}|{amount_cents}|{admin_id}|{relid}|{created_at}|"
        f"{len(actor)}:{actor}|{len(description)}:{description}|{prev}"
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal_digest(heads: Iterable[tuple[int, int, str]]) -> str:
    """Return the digest of chain heads given as (client id, entry count, head hash) by id."""
    digest = hashlib.sha256(b"creditbook-seal-v1\n")
    for client_id, count, head in heads:
        digest.update(f"{client_id}:{count}:{head}\n".encode())
    return digest.hexdigest()
