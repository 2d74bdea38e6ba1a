"""``creditbook verify``: recompute balances, running balances and hash chains from the entries.

A balance that drifted from its entries, a wrong running balance or sequence number, and a hash
that does not match its entry or its predecessor are all reported, with the first broken entry
of each client's chain. ``verify_seal`` proves that what a seal covered is unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TextIO

from .chain import GENESIS, VERSION, seal_digest
from .money import format_cents
from .store import Store

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


def verify(store: Store, progress: TextIO | None = None) -> Report:
    """Check every client: balance == sum of entries, and each entry's running balance."""
    started = time.perf_counter()
    report = Report()
    first, last = store.client_id_range()
    span = max(last - first + 1, 1)
    low = first
    while last and low <= last:
        high = low + CHUNK - 1
        for a in store.audit(low, high):
            report.clients += 1
            report.entries += a.entries
            if a.balance_cents != a.entry_sum:
                report.problems.append(
                    f"client {a.client_id}: balance {format_cents(a.balance_cents)} but entries "
                    f"sum to {format_cents(a.entry_sum)}"
                )
            if a.bad_entries:
                report.problems.append(
                    f"client {a.client_id}: {a.bad_entries} entries carry a wrong running "
                    "balance or sequence number"
                )
            if a.counter != a.entries:
                report.problems.append(
                    f"client {a.client_id}: {a.entries} entries but the client counts {a.counter}"
                )
        report.problems += check_chains(store, low, high)
        low = high + 1
        if progress is not None:
            done = min(low - first, span) / span
            bar = "#" * int(done * 40)
            progress.write(f"\rverify [{bar:<40}] {done:6.1%} {report.entries} entries")
            progress.flush()
    if progress is not None:
        progress.write("\n")
    report.seconds = time.perf_counter() - started
    return report


def check_chains(store: Store, first: int, last: int) -> list[str]:
    """Recompute the hash chains of clients in an id range; name each chain's first break."""
    problems: list[str] = []
    broken: set[int] = set()
    heads: dict[int, str] = {}
    for e in store.chain_entries(first, last):
        client_id = e.client_id
        if client_id in broken:
            continue
        prev = heads.get(client_id, GENESIS)
        # chain.entry_hash, inlined: this loop runs once per entry of the whole ledger.
        expected = sha256(
            f"{VERSION}|{client_id}|{e.seq}|{e.date}|{e.amount_cents}|{e.admin_id}|{e.relid}|"
            f"{e.created_at}|{len(e.actor)}:{e.actor}|{len(e.description)}:{e.description}|"
            f"{prev}".encode()
        ).hexdigest()
        if e.prev_hash != prev or e.hash != expected:
            what = "does not follow its predecessor" if e.prev_hash != prev else "was altered"
            problems.append(
                f"client {client_id}: hash chain broken at entry {e.id} (#{e.seq}): "
                f"the entry {what}"
            )
            broken.add(client_id)
        heads[client_id] = e.hash
    for client_id, _, head in store.chain_heads(first, last):
        if client_id not in broken and head != heads.get(client_id, GENESIS):
            problems.append(
                f"client {client_id}: hash chain broken after its last entry: the stored head "
                "does not match (entries were removed or rewritten)"
            )
    return problems


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
