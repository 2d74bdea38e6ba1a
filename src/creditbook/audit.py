"""``creditbook verify``: recompute balances, running balances and hash chains from the entries.

A balance that drifted from its entries, a wrong running balance or sequence number, and a hash
that does not match its entry or its predecessor are all reported, with the first broken entry
of each client's chain. ``verify_seal`` proves that what a seal covered is unchanged.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TextIO

from .chain import GENESIS, VERSION, grant_text, seal_digest
from .money import format_cents
from .replay import GrantReplay
from .store import Allocation, ChainEntry, ChainHead, Store, open_store

CHUNK = 5000


@dataclass(slots=True)
class Report:
    """What verification found."""

    clients: int = 0
    entries: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no balance drifted."""
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        """Return the report as plain data."""
        return {
            "ok": self.ok,
            "clients": self.clients,
            "entries": self.entries,
            "seconds": round(self.seconds, 3),
            "problems": self.problems,
        }


def verify(store: Store, progress: TextIO | None = None, jobs: int = 1) -> Report:
    """Check every client: balance == sum of entries, running balances, counts, hash chains.

    ``jobs`` > 1 checks ranges of clients in that many processes, each with its own
    connection (hashing is pure Python: one process uses one core). They are spawned, so a
    script that calls this needs the usual ``if __name__ == "__main__":`` guard.
    """
    started = time.perf_counter()
    report = Report()
    first, last = store.client_id_range()
    ranges = [(low, min(low + CHUNK - 1, last)) for low in range(first, last + 1, CHUNK) if last]
    if jobs > 1 and len(ranges) > 1:
        results: Iterable[Checked] = _in_processes(store.url, ranges, jobs)
    else:
        results = (check_range(store, low, high) for low, high in ranges)
    for done, (clients, entries, problems) in enumerate(results, 1):
        report.clients += clients
        report.entries += entries
        report.problems += problems
        if progress is not None:
            share = done / len(ranges)
            bar = "#" * int(share * 40)
            progress.write(f"\rverify [{bar:<40}] {share:6.1%} {report.entries} entries")
            progress.flush()
    if progress is not None:
        progress.write("\n")
    report.seconds = time.perf_counter() - started
    return report


#: What checking a range of clients found: clients, entries, problems.
Checked = tuple[int, int, list[str]]


def check_range(store: Store, first: int, last: int) -> Checked:
    """Check the clients of an id range and their entries, read from one snapshot."""
    problems: list[str] = []
    with store.ledger_slice(first, last) as (heads, entries, moves):
        seen = check_slice(heads, entries, problems, moves)
    return len(heads), seen, problems


def _in_processes(url: str, ranges: list[tuple[int, int]], jobs: int) -> Iterator[Checked]:
    # Spawned, not forked: the caller has threads and open connections a fork would copy.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        min(jobs, len(ranges)), mp_context=context, initializer=_open_worker, initargs=(url,)
    ) as pool:
        yield from pool.map(_check_in_worker, ranges)


_worker_store: Store | None = None


def _open_worker(url: str) -> None:
    global _worker_store  # noqa: PLW0603 one store per worker process, opened once
    store = _worker_store = open_store(url, group_commit=False, listen=False)
    multiprocessing.util.Finalize(None, store.close, exitpriority=10)


def _check_in_worker(bounds: tuple[int, int]) -> Checked:
    assert _worker_store is not None
    return check_range(_worker_store, *bounds)


def check_slice(
    heads: list[ChainHead],
    entries: Iterable[ChainEntry],
    problems: list[str],
    moves: Iterable[Allocation] = (),
) -> int:
    """Check a range of clients against their entries in one pass; return how many entries.

    Figures (balance, running balances, count, grants) are reported first, then each chain's
    first break.
    """
    found: dict[int, tuple[int, int, int, str | None]] = {}  # sum, count, bad, head (None: broken)
    breaks: list[str] = []
    grants = GrantReplay(problems)
    pending = iter(moves)
    move = next(pending, None)
    client = -1
    total = count = bad = 0
    prev: str | None = GENESIS
    for e in entries:
        client_id = e.client_id
        if client_id != client:
            if count:
                found[client] = (total, count, bad, prev)
                grants.close(client)
            client, total, count, bad, prev = client_id, 0, 0, 0, GENESIS
        count += 1
        total += e.amount_cents
        if e.seq != count or e.balance_cents != total:
            bad += 1
        spent: list[tuple[int, int]] = []
        while move is not None and (move.client_id, move.seq) <= (client_id, e.seq):
            if (move.client_id, move.seq) == (client_id, e.seq):
                spent.append((move.grant_seq, move.amount))
            else:
                problems.append(f"client {move.client_id}: allocation of no entry (#{move.seq})")
            move = next(pending, None)
        if e.kind or e.amount_cents or spent:
            grants.entry(e, spent)
        if prev is None:
            continue
        # chain.entry_hash, inlined: this loop runs once per entry of the whole ledger.
        text = (
            f"{VERSION}|{client_id}|{e.seq}|{e.date}|{e.amount_cents}|{e.admin_id}|{e.relid}|"
            f"{e.created_at}|{len(e.actor)}:{e.actor}|{len(e.description)}:{e.description}|"
            f"{prev}"
        )
        if e.kind and (e.kind != "grant" or e.category != "paid" or e.expires):
            grant = grant_text(e.kind, e.category, e.expires, spent)
            text += f"|{len(grant)}:{grant}"
        expected = sha256(text.encode()).hexdigest()
        if e.prev_hash != prev or e.hash != expected:
            what = "does not follow its predecessor" if e.prev_hash != prev else "was altered"
            breaks.append(
                f"client {client_id}: hash chain broken at entry {e.id} (#{e.seq}): "
                f"the entry {what}"
            )
            prev = None
        else:
            prev = e.hash
    if count:
        found[client] = (total, count, bad, prev)
        grants.close(client)
    while move is not None:
        problems.append(f"client {move.client_id}: allocation of no entry (#{move.seq})")
        move = next(pending, None)
    seen = sum(f[1] for f in found.values())
    for h in heads:
        total, count, bad, head = found.pop(h.client_id, (0, 0, 0, GENESIS))
        if h.balance_cents != total:
            problems.append(
                f"client {h.client_id}: balance {format_cents(h.balance_cents)} but entries "
                f"sum to {format_cents(total)}"
            )
        if bad:
            problems.append(
                f"client {h.client_id}: {bad} entries carry a wrong running "
                "balance or sequence number"
            )
        if h.entries != count:
            problems.append(
                f"client {h.client_id}: {count} entries but the client counts {h.entries}"
            )
        if head is not None and h.head_hash != head:
            breaks.append(
                f"client {h.client_id}: hash chain broken after its last entry: the stored head "
                "does not match (entries were removed or rewritten)"
            )
    problems += [f"client {c}: {f[1]} entries but no such client" for c, f in found.items()]
    problems += breaks
    return seen


def verify_seal(store: Store, digest: str) -> list[str]:
    """Prove that nothing a seal covered has changed since; return what did (empty: intact).

    The seal's recorded heads must reproduce the digest the auditor kept, and each client's
    entry at the sealed position must still carry the sealed hash. Later entries are fine.
    """
    seals = store.find_seals(digest)
    if not seals:
        return [f"no seal with digest {digest} is recorded in this store"]
    seal = seals[-1]
    heads: list[tuple[int, int, str]] = []
    problems: list[str] = []
    for client_id, seq, sealed, now in store.seal_heads(seal.id):
        heads.append((client_id, seq, sealed))
        if now != sealed:
            problems.append(
                f"client {client_id}: entry #{seq}, sealed on {seal.at}, "
                + ("is gone" if now is None else "has changed since")
            )
    if seal_digest(heads) != digest:
        problems.insert(0, f"the heads recorded for the seal of {seal.at} were altered")
    return problems
