"""Backfills that migrations need computed in Python: hash chains (migration 8) and clients'
folded search keys (migration 15)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..chain import GENESIS, entry_hash, grant_text
from ..rules import client_keys as folded_keys
from . import grant_sql as G
from . import queries as Q

if TYPE_CHECKING:
    from .base import SqlStore


def chain(store: SqlStore) -> int:
    """Compute the hashes of entries written before the chain existed; return how many.

    Clients are done a thousand at a time, each range in one transaction; every chain is
    recomputed from its first entry, so running it again changes nothing.
    """
    done = 0
    first, last = store.client_id_range()
    low = first
    while last and low <= last:
        high = low + 999
        with store._write() as cur:
            updates: list[dict[str, Any]] = []
            heads: dict[int, str] = {}
            spent: dict[tuple[int, int], list[tuple[int, int]]] = {}
            for a in store._run(cur, G.ALLOCATIONS_OF_CLIENTS, first=low, last=high):
                spent.setdefault((int(a[0]), int(a[1])), []).append((int(a[2]), int(a[3])))
            for e in store.chain_entries(low, high):
                prev = heads.get(e.client_id, GENESIS)
                moves = spent.get((e.client_id, e.seq), [])
                digest = entry_hash(
                    e.client_id,
                    e.seq,
                    e.date,
                    e.amount_cents,
                    e.admin_id,
                    e.relid,
                    e.created_at,
                    e.actor,
                    e.description,
                    prev,
                    grant_text(e.kind, e.category, e.expires, moves),
                )
                updates.append({"id": e.id, "prev_hash": prev, "hash": digest})
                heads[e.client_id] = digest
            if updates:
                store._run_many(cur, Q.CHAIN_SET, updates)
                store._run_many(
                    cur, Q.CLIENT_HEAD, [{"client_id": c, "hash": h} for c, h in heads.items()]
                )
        done += len(updates)
        low = high + 1
    return done


def client_keys(store: SqlStore) -> int:
    """Fill in the folded search text and sort key of clients written before they existed
    (migration 15), a thousand at a time; return how many."""
    done, after = 0, 0
    while True:
        with store._read() as cur:
            rows = store._run(cur, Q.CLIENT_NAMES, after=after).fetchall()
        if not rows:
            return done
        keys = []
        for client_id, first, last, company, email in rows:
            search, sort = folded_keys(first, last, company, email)
            keys.append({"id": client_id, "search_key": search, "sort_key": sort})
        with store._write() as cur:
            store._run_many(cur, Q.CLIENT_KEYS, keys)
        done += len(rows)
        after = int(rows[-1][0])
