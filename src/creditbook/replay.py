"""A client's grants replayed from its entries and allocations alone (``verify``, and the
importer, which writes entries of its own and then sets what remains of each grant)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .money import format_cents

if TYPE_CHECKING:
    from .store.protocol import ChainEntry


class GrantReplay:
    """One client's grants replayed from its entries and allocations: what each removal,
    expiry and restore moved must add up to the entry, never take a grant below zero or from
    a grant already expired, and leave each grant's stored remaining amount."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.open: dict[int, list[Any]] = {}  # seq: [left, stored remaining, expires, expired]
        self.legacy: list[int] = []  # grants written before grants existed, oldest first
        #: What removals written before grants took beyond the credit then added (a WHMCS log
        #: can go below zero): the next such additions make it up first.
        self.debt = 0

    def entry(self, e: ChainEntry, spent: list[tuple[int, int]]) -> None:
        """Replay one entry that adds, spends or gives back credit."""
        where = f"client {e.client_id}: entry {e.id} (#{e.seq})"
        if e.kind == "grant" or (not e.kind and e.amount_cents > 0):
            left = e.amount_cents
            if not e.kind:
                self.legacy.append(e.seq)
                paid = min(self.debt, left)
                self.debt -= paid
                left -= paid
            self.open[e.seq] = [left, e.remaining, e.expires, False]
            if spent:
                self.problems.append(f"{where}: a grant with allocations")
            return
        if not e.kind:  # a removal written before grants took the oldest credit first
            self._oldest_first(-e.amount_cents)
            return
        if sum(amount for _, amount in spent) != -e.amount_cents:
            self.problems.append(f"{where}: its allocations do not add up to its amount")
        for seq, amount in spent:
            grant = self.open.get(seq)
            if grant is None:
                self.problems.append(f"{where}: takes from #{seq}, which is no grant")
                continue
            if e.kind == "restore":
                grant[0] -= amount
                grant[3] = False
                continue
            if grant[3]:
                self.problems.append(f"{where}: spends #{seq} after it expired")
            grant[0] -= amount
            if amount <= 0 or grant[0] < 0:
                self.problems.append(f"{where}: takes more from #{seq} than it had")
            if e.kind == "expiry":
                grant[3] = True
                if grant[0] != 0 or e.date != grant[2]:
                    self.problems.append(f"{where}: does not expire all of #{seq} on its day")

    def _oldest_first(self, cents: int) -> None:
        for seq in self.legacy:
            grant = self.open[seq]
            take = min(cents, grant[0])
            grant[0] -= take
            cents -= take
            if not cents:
                return
        self.debt += cents

    def left(self) -> dict[int, int]:
        """What the entries leave of each grant replayed so far, by number."""
        return {seq: grant[0] for seq, grant in self.open.items()}

    def close(self, client_id: int) -> None:
        """Compare each grant of the client with its stored remaining amount; forget them."""
        for seq, (left, stored, _, _) in self.open.items():
            if left != stored:
                self.problems.append(
                    f"client {client_id}: grant #{seq} has {format_cents(stored)} left but its "
                    f"entries leave {format_cents(left)}"
                )
        self.open.clear()
        self.legacy.clear()
        self.debt = 0
