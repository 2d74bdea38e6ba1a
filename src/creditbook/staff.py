"""The billing staff's use cases beside credit itself: reversals (bulk credit: ``bulk.py``).

A reversal goes through ``Ledger.credit_op``, so it obeys the API's rules and messages, and is
one transaction that also claims the entry it reverses, so an entry is never reversed twice,
from any number of processes.
"""

from __future__ import annotations

import dataclasses

from . import errors, money
from .admins import ACCESS_LEVELS
from .ledger import MAX_DESCRIPTION, Ledger
from .model import Actor
from .rules import parse_id
from .store.console import HistoryEntry, console_store


def may(access: str, needed: str) -> bool:
    """Tell whether an access level includes another."""
    return ACCESS_LEVELS.index(access) >= ACCESS_LEVELS.index(needed)


class Staff:
    """Reversals and bulk credit, over a ledger whose store has the console's support."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.console = console_store(ledger.store)

    def entry(self, entry_id: str | int | None) -> HistoryEntry:
        """Return one credit entry by id."""
        number = entry_id if isinstance(entry_id, int) else parse_id(entry_id)
        found = None if number is None else self.console.get_entry(number)
        if found is None:
            raise errors.EntryNotFound()
        return found

    def reversal_cents(self, found: HistoryEntry) -> int | None:
        """What reversing an entry would change the balance by now (None: it cannot be)."""
        e = found.entry
        if e.kind in ("expiry", "restore") or (e.is_grant and e.remaining <= 0):
            return None
        return -e.remaining if e.is_grant else -e.amount_cents

    def reverse_credit(self, entry_id: str | int | None, *, reason: str, actor: Actor) -> int:
        """Write an entry described ``Reversal of entry #ID: REASON``; an entry is reversed
        once. Return the new balance.

        A removal's reversal gives what it took back to the grants it came from, with their
        expiry dates (one already past it expires again at once); a grant's takes back what
        remains of it (what was spent stays spent); an expiry, or a removal's reversal, is not
        reversed (add or remove credit instead). A removal written before grants existed is
        given back as paid credit.
        """
        found = self.entry(entry_id)
        original, seq = found.entry, found.seq
        reason = reason.strip()
        if not reason:
            raise errors.ValidationError("Give the reason for the reversal")
        if found.reversed:
            raise errors.AlreadyReversed()
        if original.kind in ("expiry", "restore"):
            raise errors.NotReversible()
        note = f"Reversal of entry #{original.id}: "
        grant = original.is_grant
        if grant and original.remaining <= 0:
            raise errors.NothingToTakeBack()
        amount = original.remaining if grant else -original.amount_cents
        op = self.ledger.credit_op(
            clientid=str(original.client_id),
            amount=money.format_cents(amount),
            description=note + reason[: MAX_DESCRIPTION - len(note)],
            type="remove" if grant else "add",
            actor=actor,
        )
        if grant:
            op = dataclasses.replace(op, grant_seq=seq)
        elif original.kind == "removal":
            op = dataclasses.replace(op, kind="restore", restore_of=seq)
        return self.console.reverse_entry(original.id, op)
