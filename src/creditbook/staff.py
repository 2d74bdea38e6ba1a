"""The billing staff's use cases: reversals and bulk credit (the web console's writes).

Both go through ``Ledger.credit_op``, so they obey the API's rules and messages, and each change
is one transaction that also claims what it applies (an entry's reversal, a file's row), so the
same thing is never applied twice, from any number of processes.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import errors, money
from .admins import ACCESS_LEVELS
from .ledger import MAX_DESCRIPTION, Ledger
from .model import Actor, Client
from .rules import NUL, parse_id
from .store.console import HistoryEntry, console_store
from .store.protocol import CreditOp

MAX_BULK_BYTES = 2 * 1024 * 1024
MAX_BULK_ROWS = 10_000
BULK_COLUMNS = ("clientid", "email", "amount", "type", "description", "date")


@dataclass(slots=True)
class BulkRow:
    """One data row of a bulk-credit file: what it asks, and the change or the reason not."""

    number: int
    fields: dict[str, str]
    client: Client | None = None
    op: CreditOp | None = None
    error: str = ""
    balance_after: int = 0


@dataclass(slots=True)
class BulkFile:
    """A validated bulk-credit file: its digest (the rows' idempotency key) and its rows."""

    digest: str
    rows: list[BulkRow] = field(default_factory=list)
    error: str = ""
    already: set[int] = field(default_factory=set)

    @property
    def valid(self) -> int:
        """How many rows can be applied."""
        return sum(1 for r in self.rows if not r.error)


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

    def reverse_credit(self, entry_id: str | int | None, *, actor: Actor) -> int:
        """Write an entry of the opposite amount; an entry is reversed once. Return the balance."""
        original = self.entry(entry_id).entry
        amount = original.amount_cents
        note = f"Reversal of entry #{original.id}: "
        description = note + original.description[: MAX_DESCRIPTION - len(note)]
        op = self.ledger.credit_op(
            clientid=str(original.client_id),
            amount=money.format_cents(abs(amount)),
            description=description,
            type="remove" if amount > 0 else "add",
            actor=actor,
        )
        return self.console.reverse_entry(original.id, op)

    def read_bulk(self, data: bytes, *, actor: Actor) -> BulkFile:
        """Validate every row of a bulk-credit CSV file; apply nothing.

        Each row is checked by the API's rules, and removals against the balance the file's
        earlier rows would leave (so the preview shows the refusals that applying would meet).
        """
        bulk = BulkFile("")
        if len(data) > MAX_BULK_BYTES:
            bulk.error = f"The file is larger than {MAX_BULK_BYTES // 1024 // 1024} MB"
            return bulk
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            bulk.error = "The file is not UTF-8 text"
            return bulk
        # The digest names the file's rows, whatever line endings a browser carried it with.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        bulk.digest = hashlib.sha256(text.encode()).hexdigest()
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        if (
            "amount" not in header
            or "description" not in header
            or not ("clientid" in header or "email" in header)
        ):
            bulk.error = (
                "The first line must name the columns: clientid or email, amount, description"
            )
            return bulk
        reader.fieldnames = header
        balances: dict[int, int] = {}
        try:
            for number, raw in enumerate(reader, start=1):
                if number > MAX_BULK_ROWS:
                    bulk.error = f"The file has more than {MAX_BULK_ROWS} rows"
                    return bulk
                fields = {k: (raw.get(k) or "").strip() for k in BULK_COLUMNS}
                row = BulkRow(number, fields)
                bulk.rows.append(row)
                self._check_row(row, balances, actor)
        except csv.Error as exc:
            bulk.error = f"The file is not valid CSV: {exc}"
            return bulk
        bulk.already = self.console.bulk_done(bulk.digest)
        return bulk

    def _check_row(self, row: BulkRow, balances: dict[int, int], actor: Actor) -> None:
        fields = row.fields
        try:
            if NUL in "".join(fields.values()):
                raise errors.InvalidText("row")
            if fields["clientid"]:
                row.client = self.ledger.get_client(clientid=fields["clientid"])
            elif fields["email"]:
                row.client = self.ledger.get_client(email=fields["email"])
            else:
                raise errors.ClientLookupRequired()
            amount, kind = fields["amount"], fields["type"] or "add"
            if amount.startswith("-") and not fields["type"]:
                amount, kind = amount[1:], "remove"
            row.op = self.ledger.credit_op(
                clientid=str(row.client.id),
                amount=amount,
                description=fields["description"],
                type=kind,
                date=fields["date"] or None,
                actor=actor,
            )
        except errors.CreditError as exc:
            row.error = exc.message
            return
        before = balances.get(row.client.id, row.client.balance_cents)
        after = before + row.op.amount_cents
        if after < 0:
            row.error = errors.InsufficientCredit.message
        elif after > money.MAX_BALANCE_CENTS:
            row.error = errors.BalanceLimitExceeded.message
        else:
            balances[row.client.id] = row.balance_after = after

    def apply_bulk(self, bulk: BulkFile) -> Iterator[tuple[BulkRow, str, int]]:
        """Apply a validated file's rows in order, each its own change, each once per file.

        Yield each valid row with its outcome (``applied``, ``already`` or the refusal) and the
        balance it left.
        """
        for row in bulk.rows:
            if row.error or row.op is None:
                continue
            try:
                balance = self.console.apply_bulk_row(bulk.digest, row.number, row.op)
            except errors.BulkRowDone:
                yield row, "already", 0
            except errors.CreditError as exc:
                yield row, exc.message, 0
            else:
                yield row, "applied", balance
