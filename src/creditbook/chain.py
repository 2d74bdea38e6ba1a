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


def grant_text(
    kind: str, category: str, expires: str, spent: Iterable[tuple[int, int]] = ()
) -> str:
    """What an entry's hash covers of its grant fields: nothing for paid credit that never
    expires and for entries written before grants (so their hashes are as they always were);
    else kind, category, expiry date and the allocations (grant number and amount, by grant
    number: what a removal or expiry took, negative for what a restore gave back)."""
    if not kind or (kind == "grant" and category == "paid" and not expires):
        return ""
    moves = ",".join(f"{grant}:{amount}" for grant, amount in spent)
    return f"{kind}/{category}/{expires}/{moves}"


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
    grant: str = "",
) -> str:
    """Return an entry's hash: lower-case hex SHA-256 of its canonical text.

    Free-form fields carry their length, so none can borrow another's separator. ``grant`` is
    ``grant_text`` of the entry (appended only when not empty).
    """
    text = (
        f"{VERSION}|{client_id}|{seq}|{date}|{amount_cents}|{admin_id}|{relid}|{created_at}|"
        f"{len(actor)}:{actor}|{len(description)}:{description}|{prev}"
    )
    if grant:
        text += f"|{len(grant)}:{grant}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal_digest(heads: Iterable[tuple[int, int, str]]) -> str:
    """Return the digest of chain heads given as (client id, entry count, head hash) by id."""
    digest = hashlib.sha256(b"creditbook-seal-v1\n")
    for client_id, count, head in heads:
        digest.update(f"{client_id}:{count}:{head}\n".encode())
    return digest.hexdigest()
