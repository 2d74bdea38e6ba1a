"""The billing staff's use cases beside credit itself: reversals (bulk credit: ``bulk.py``).

A reversal goes through ``Ledger.credit_op``, so it obeys the API's rules and messages, and is
one transaction that also claims the entry it reverses, so an entry is never reversed twice,
from any number of processes.
"""

from __future__ import annotations

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

    def reverse_credit(self, entry_id: str | int | None, *, reason: str, actor: Actor) -> int:
        """Write an entry of the opposite amount, described ``Reversal of entry #ID: REASON``;
        an entry is reversed once. Return the new balance."""
        original = self.entry(entry_id).entry
        reason = reason.strip()
        if not reason:
            raise errors.ValidationError("Give the reason for the reversal")
        amount = original.amount_cents
        note = f"Reversal of entry #{original.id}: "
        op = self.ledger.credit_op(
            clientid=str(original.client_id),
            amount=money.format_cents(abs(amount)),
            description=note + reason[: MAX_DESCRIPTION - len(note)],
            type="remove" if amount > 0 else "add",
            actor=actor,
        )
        return self.console.reverse_entry(original.id, op)
