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
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TextIO

from . import errors
from .money import format_cents
from .rules import day_after
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
#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_START = frozenset("=+-@\t\r")
PARALLEL_FROM = 200_000


def safe_cell(text: str) -> str:
    """A CSV text cell a spreadsheet shows as text, not runs as a formula (amounts are not
    passed through here: they stay numbers).

    Text whose quotes are followed by a formula character (``'=x``) gets one more quote too, so
    that ``import csv`` can take exactly one off and give back the text that was exported.
    """
    return "'" + text if text.lstrip("'")[:1] in FORMULA_START else text


def day_range(start: str | None, end: str | None) -> tuple[str, str]:
    """[start, end + 1 day) as ISO text from inclusive YYYY-MM-DD bounds ("" when open)."""

    def parse(text: str, name: str) -> dt.date:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise errors.ValidationError(f"--{name} must be a date, YYYY-MM-DD") from None

    low = parse(start, "from").isoformat() if start else ""
    high = day_after(parse(end, "to").isoformat()) if end else ""
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
    workers: int = 1,
) -> int:
    """Write a table to ``out``; return the rows written.

    With ``workers`` > 1, a whole credits or activity export (no client filter) of more than
    ``PARALLEL_FROM`` rows is split across that many processes."""
    if table not in TABLES:
        raise errors.ValidationError(f"Export clients, credits or activity, not {table!r}")
    if fmt not in ("csv", "jsonl"):
        raise errors.ValidationError("--format is csv or jsonl")
    low, high = day_range(start, end)
    headers = HEADERS[table]
    if fmt == "csv":
        csv.writer(out, lineterminator="\n").writerow(headers)
    if not client_id and table in ("credits", "activity") and workers > 1:
        first, last = store.id_range(table)
        if last - first >= PARALLEL_FROM:
            return _parallel(store.url, table, out, fmt, (first, last), (low, high), workers)
    written = 0
    for batch in store.export_rows(table, client_id, low, high):
        written += _write(batch, table, fmt, out)
        if progress is not None:
            progress(written)
    return written


def _write(batch: list[Any], table: str, fmt: str, out: TextIO) -> int:
    """Write a batch of rows as CSV lines or JSON lines; return how many."""
    if fmt == "csv":
        csv.writer(out, lineterminator="\n").writerows(_csv_rows(batch, CENTS[table], TEXTS[table]))
    else:
        out.write("".join(_json_lines(batch, HEADERS[table], CENTS[table])))
    return len(batch)


def _parallel(
    url: str,
    table: str,
    out: TextIO,
    fmt: str,
    ids: tuple[int, int],
    days: tuple[str, str],
    workers: int,
) -> int:
    """Export an append-only table's id range in parts, one process each at a time, written
    to temporary files and copied to ``out`` in order (rows up to the newest id at the start;
    memory stays flat). Two cores export about twice as fast as one."""
    first, last = ids
    parts = workers * 4
    step = (last - first) // parts + 1
    ranges = [(lo, min(lo + step - 1, last)) for lo in range(first, last + 1, step)]
    context = multiprocessing.get_context("spawn")
    written = 0
    with (
        tempfile.TemporaryDirectory(prefix="creditbook-export-") as folder,
        ProcessPoolExecutor(workers, mp_context=context) as pool,
    ):
        paths = [os.path.join(folder, f"{n}.part") for n in range(len(ranges))]
        futures = [
            pool.submit(_export_part, url, table, fmt, lo, hi, days, path)
            for (lo, hi), path in zip(ranges, paths, strict=True)
        ]
        out.flush()
        raw = getattr(out, "buffer", None)  # copy bytes, not decoded and re-encoded text
        for future, path in zip(futures, paths, strict=True):
            written += future.result()
            if raw is not None:
                with open(path, "rb") as part:
                    shutil.copyfileobj(part, raw, 1 << 20)
                raw.flush()
            else:
                with open(path, encoding="utf-8", newline="") as text:
                    shutil.copyfileobj(text, out, 1 << 20)
            os.remove(path)
    return written


def _export_part(
    url: str, table: str, fmt: str, lo: int, hi: int, days: tuple[str, str], path: str
) -> int:
    """One part of a parallel export (in a worker process, with a store of its own)."""
    from .store import open_store

    store = open_store(url)
    written = 0
    try:
        assert isinstance(store, ExportReads)
        with open(path, "w", encoding="utf-8", newline="") as out:
            for batch in store.export_range(table, lo, hi, days[0], days[1]):
                written += _write(batch, table, fmt, out)
    finally:
        store.close()
    return written


def _csv_rows(
    batch: list[Any], cents: tuple[int, ...], texts: tuple[int, ...]
) -> Iterator[list[object]]:
    # The hot loop of a 10,000,000-row export: only free-text cells can hide a formula.
    formula = FORMULA_START
    for row in batch:
        cells = list(row)
        for i in texts:
            value = cells[i]
            if value and (value[0] in formula or value[0] == "'"):
                cells[i] = safe_cell(value)
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
