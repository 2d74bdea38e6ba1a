"""``creditbook export``: clients, credits or activity as CSV or JSON lines, streamed.

Constant memory whatever the size (rows go from the database cursor to the output in batches),
amounts as exact decimal text, dates and times in ISO 8601. CSV text cells that a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) get a
leading ``'``; amount cells stay numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from . import errors
from .money import format_cents
from .store.exports import ExportReads

TABLES = ("clients", "credits", "activity")
HEADERS = {
    "clients": (
        "id",
        "firstname",
        "lastname",
        "companyname",
        "email",
        "status",
        "currency",
        "balance",
        "created_at",
        "details",
    ),
    "credits": (
        "id",
        "client_id",
        "date",
        "description",
        "amount",
        "balance",
        "admin_id",
        "relid",
        "created_at",
        "actor",
        "hash",
    ),
    "activity": ("id", "at", "actor", "admin_id", "client_id", "ip", "action", "detail"),
}
#: Columns holding amounts (never neutralised): credits' come formatted from the database,
#: a client's balance as cents in text.
CENTS = {"clients": (7,), "credits": (), "activity": ()}
#: Columns holding free text (the only ones a formula can hide in: the rest are numbers, dates,
#: times, hashes and fixed words).
TEXTS = {"clients": (1, 2, 3, 4, 9), "credits": (3, 9), "activity": (2, 5, 7)}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = frozenset(_FORMULA)


def safe_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text (not run as a formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def day_range(start: str | None, end: str | None) -> tuple[str, str]:
    """[start, end + 1 day) as ISO text from inclusive YYYY-MM-DD bounds ("" when open)."""

    def parse(text: str, name: str) -> dt.date:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise errors.ValidationError(f"--{name} must be a date, YYYY-MM-DD") from None

    low = parse(start, "from").isoformat() if start else ""
    high = (parse(end, "to") + dt.timedelta(days=1)).isoformat() if end else ""
    return low, high


def export(
    store: ExportReads,
    table: str,
    out: TextIO,
    fmt: str = "csv",
    client_id: int = 0,
    start: str | None = None,
    end: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a table to ``out``; return the rows written."""
    if table not in TABLES:
        raise errors.ValidationError(f"Export clients, credits or activity, not {table!r}")
    if fmt not in ("csv", "jsonl"):
        raise errors.ValidationError("--format is csv or jsonl")
    low, high = day_range(start, end)
    cents, texts = CENTS[table], TEXTS[table]
    headers = HEADERS[table]
    written = 0
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(headers)
    for batch in store.export_rows(table, client_id, low, high):
        if writer is not None:
            writer.writerows(_csv_rows(batch, cents, texts))
        else:
            out.write("".join(_json_lines(batch, headers, cents)))
        written += len(batch)
        if progress is not None:
            progress(written)
    return written


def _csv_rows(
    batch: list[Any], cents: tuple[int, ...], texts: tuple[int, ...]
) -> Iterator[list[object]]:
    # The hot loop of a 10,000,000-row export: only free-text cells can hide a formula.
    formula = _FORMULA_START
    for row in batch:
        cells = list(row)
        for i in texts:
            value = cells[i]
            if value and value[0] in formula:
                cells[i] = "'" + value
        for i in cents:
            cells[i] = format_cents(int(cells[i]))
        yield cells


def _json_lines(
    batch: list[Any], headers: tuple[str, ...], cents: tuple[int, ...]
) -> Iterator[str]:
    for row in batch:
        record = dict(zip(headers, row, strict=True))
        for i in cents:
            record[headers[i]] = format_cents(int(row[i]))
        yield json.dumps(record, ensure_ascii=False) + "\n"
