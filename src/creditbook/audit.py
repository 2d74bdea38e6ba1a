"""``creditbook verify``: recompute balances and running balances from the entries."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TextIO

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
