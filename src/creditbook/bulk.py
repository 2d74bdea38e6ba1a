"""Bulk credit: a CSV file of credits, previewed, then applied a row at a time, never twice.

Rows are known by their content (client, amount, type, description, date), not the file's
bytes: the same rows in a re-saved or corrected file are recognised, marked "already applied on
<date> from <file>" in the preview (when applied within ``bulk_repeat_days``) and left out
unless the user ticks them in. Each row is checked by the API's rules (``Ledger.credit_op``)
and applied in a transaction of its own with its claim, so a file's row is applied once even
when its Apply is pressed twice or from two browsers.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import errors, money
from .ledger import Ledger
from .model import Actor, Client
from .rules import NUL, amount_hint, utc_text
from .store.bulk import AlreadyApplied, BulkStore, Seen
from .store.protocol import CreditOp

MAX_BULK_BYTES = 2 * 1024 * 1024
MAX_BULK_ROWS = 10_000
BULK_COLUMNS = ("clientid", "email", "amount", "type", "description", "date", "category", "expires")
#: Header spellings read as the columns above ("Client ID", "E-mail address", ...).
_ALIASES = {
    "id": "clientid",
    "client": "clientid",
    "emailaddress": "email",
    "mail": "email",
    "expiry": "expires",
    "expirydate": "expires",
    "expireson": "expires",
}


def column(header: str) -> str:
    """A header cell as a column name: case, spaces and punctuation do not count."""
    name = re.sub(r"[^a-z0-9]", "", header.lower())
    return _ALIASES.get(name, name)


def content_key(client_id: int, cents: int, date: str, description: str) -> str:
    """What identifies a row whatever file it comes in: client, signed amount (so its type),
    the date as given and the description."""
    text = f"{client_id}\x1f{cents}\x1f{date}\x1f{description}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class BulkRow:
    """One data row: what it asks, and the change or the reason not.

    Attributes:
        number: the row's number as a spreadsheet shows it (the header is row 1).
        fields: the row's cells by column.
        client, op: the client and the checked change (None when the row has an error).
        error: why the row cannot be applied ("" when it can).
        balance_after: the balance the file's rows leave after this one (preview).
        content: the row's content key.
        seen: when and from which file a row with this content was applied (None: never,
            within the window).
        twin: the number of an earlier row of this file with the same content (0: none).
        again: the user ticked a ``seen`` row in, to apply it again.
        cells: the row as the file has it.
    """

    number: int
    fields: dict[str, str]
    client: Client | None = None
    op: CreditOp | None = None
    error: str = ""
    balance_after: int = 0
    content: str = ""
    seen: Seen | None = None
    twin: int = 0
    again: bool = False
    cells: list[str] = field(default_factory=list)

    @property
    def to_apply(self) -> bool:
        """Whether applying the file applies this row."""
        return not self.error and self.op is not None and (self.seen is None or self.again)


@dataclass(slots=True)
class BulkFile:
    """A checked bulk-credit file: its digest, name, delimiter and rows."""

    digest: str
    name: str = ""
    rows: list[BulkRow] = field(default_factory=list)
    error: str = ""
    delimiter: str = ","
    header: list[str] = field(default_factory=list)

    @property
    def valid(self) -> int:
        """How many rows applying the file applies."""
        return sum(1 for r in self.rows if r.to_apply)

    @property
    def invalid(self) -> int:
        """How many rows have errors."""
        return sum(1 for r in self.rows if r.error)

    @property
    def seen(self) -> int:
        """How many rows were applied before and are left out."""
        return sum(1 for r in self.rows if r.seen is not None and not r.again and not r.error)

    def totals(self) -> dict[str, int]:
        """The net amount the rows to apply move, per currency."""
        out: dict[str, int] = {}
        for r in self.rows:
            if r.to_apply and r.client is not None and r.op is not None:
                code = r.client.currency_code
                out[code] = out.get(code, 0) + r.op.amount_cents
        return dict(sorted(out.items()))


class Bulk:
    """Bulk credit's use cases over a ledger."""

    def __init__(self, ledger: Ledger, store: BulkStore, repeat_days: int = 30) -> None:
        self.ledger = ledger
        self.store = store
        self.repeat_days = repeat_days

    def _since(self) -> str:
        moment = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.repeat_days)
        return utc_text(moment)

    def read(
        self, data: bytes, *, actor: Actor, name: str = "", again: frozenset[int] = frozenset()
    ) -> BulkFile:
        """Check every row of a file; apply nothing. ``again``: rows applied before that the
        user ticked in.

        Each row is checked by the API's rules, and removals against the balance the file's
        earlier rows would leave (so the preview shows the refusals that applying would meet).
        """
        bulk = BulkFile("", name=name[:200])
        if len(data) > MAX_BULK_BYTES:
            bulk.error = f"The file is larger than {MAX_BULK_BYTES // 1024 // 1024} MB"
            return bulk
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            bulk.error = "The file is not UTF-8 text"
            return bulk
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        bulk.digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        first = text.split("\n", 1)[0]
        bulk.delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=bulk.delimiter)
        try:
            bulk.header = next(reader, [])
            names = [column(h) for h in bulk.header]
            if (
                "amount" not in names
                or "description" not in names
                or not ("clientid" in names or "email" in names)
            ):
                bulk.error = (
                    "The first line must name the columns: Client ID or email, amount, "
                    "description (and optionally type and date)"
                )
                return bulk
            balances: dict[int, int] = {}
            contents: dict[str, int] = {}
            for number, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue  # a blank line
                if len(bulk.rows) >= MAX_BULK_ROWS:
                    bulk.error = f"The file has more than {MAX_BULK_ROWS} rows"
                    return bulk
                values = dict(zip(names, cells, strict=False))
                fields = {k: (values.get(k) or "").strip() for k in BULK_COLUMNS}
                row = BulkRow(number, fields, again=number in again, cells=cells)
                bulk.rows.append(row)
                self._check(row, actor)
                if row.op is not None and row.client is not None:
                    row.content = content_key(
                        row.client.id, row.op.amount_cents, fields["date"], fields["description"]
                    )
                    row.twin = contents.setdefault(row.content, number)
                    row.twin = 0 if row.twin == number else row.twin
        except csv.Error as exc:
            bulk.error = f"The file is not valid CSV: {exc}"
            return bulk
        found = self.store.seen([r.content for r in bulk.rows if r.content], self._since(), "")
        for row in bulk.rows:
            row.seen = found.get(row.content) if row.content else None
        for row in bulk.rows:
            if row.to_apply:
                self._balance(row, balances)
        return bulk

    def _check(self, row: BulkRow, actor: Actor) -> None:
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
            try:
                row.op = self.ledger.credit_op(
                    clientid=str(row.client.id),
                    amount=amount,
                    description=fields["description"],
                    type=kind,
                    date=fields["date"] or None,
                    category=fields["category"] or None,
                    expires=fields["expires"] or None,
                    actor=actor,
                )
            except errors.InvalidAmount as exc:
                raise errors.InvalidAmount(amount_hint(amount, exc.message)) from None
        except errors.CreditError as exc:
            row.error = exc.message

    @staticmethod
    def _balance(row: BulkRow, balances: dict[int, int]) -> None:
        assert row.client is not None and row.op is not None
        before = balances.get(row.client.id, row.client.balance_cents)
        after = before + row.op.amount_cents
        if after < 0:
            row.error = (
                f"{errors.InsufficientCredit.message} (available: {money.format_cents(before)})"
            )
        elif after > money.MAX_BALANCE_CENTS:
            row.error = errors.BalanceLimitExceeded.message
        else:
            balances[row.client.id] = row.balance_after = after

    def apply(self, bulk: BulkFile) -> Iterator[tuple[BulkRow, str, int]]:
        """Apply a checked file's rows in order, each its own change, each once per file.

        Yield each row to apply with its outcome (``applied``, ``already``, ``seen`` or the
        refusal) and the balance it left.
        """
        since = self._since()
        for row in bulk.rows:
            if not row.to_apply or row.op is None:
                continue
            try:
                balance = self.store.apply_row(
                    row.op,
                    file=bulk.digest,
                    row=row.number,
                    content=row.content,
                    file_name=bulk.name,
                    since=since,
                    again=row.again,
                )
            except errors.BulkRowDone:
                yield row, "already", 0
            except AlreadyApplied as exc:
                row.seen = exc.seen
                yield row, "seen", 0
            except errors.CreditError as exc:
                yield row, exc.message, 0
            else:
                yield row, "applied", balance

    def rejected_csv(self, bulk: BulkFile, refused: dict[int, str]) -> str:
        """The rows that were not applied for an error (with an ``error`` column), as a CSV
        file in the uploaded file's own columns and delimiter, to fix and upload again."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=bulk.delimiter, lineterminator="\n")
        writer.writerow([*bulk.header, "error"])
        for row in bulk.rows:
            reason = row.error or refused.get(row.number, "")
            if reason:
                cells = (row.cells + [""] * len(bulk.header))[: len(bulk.header)]
                writer.writerow([*cells, reason])
        return out.getvalue()
