"""Journal export: balanced general-ledger lines for the entries dated in a period, mapped to
accounts per credit category by a TOML file, in a generic, Xero or QuickBooks Online layout."""

from __future__ import annotations

import csv
import datetime as dt
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import errors
from .exports import safe_cell
from .money import format_cents
from .rollforward import period
from .store.reports import JournalEntry

if TYPE_CHECKING:
    from .ledger import Ledger

ROLES = ("liability", "added", "spent", "expired")
LAYOUTS = {
    "generic": ["date", "journal", "account", "debit", "credit", "currency", "description",
                "reference"],
    # Xero's manual journal import template (one journal per narration and date; a positive
    # amount debits, a negative one credits; the account code is the account's first word).
    "xero": ["*Narration", "*Date", "Description", "*AccountCode", "*TaxRate", "*Amount",
             "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2"],
    # QuickBooks Online's journal entry import (one journal per journal number).
    "quickbooks": ["Journal No", "Journal Date", "Currency", "Account Name", "Debits", "Credits",
                   "Description", "Memo"],
}  # fmt: skip
#: What each kind of movement debits and credits: (debit role, credit role).
SIDES = {
    "added": ("added", "liability"),
    "spent": ("liability", "spent"),
    "expired": ("liability", "expired"),
    "taken back": ("liability", "added"),  # a reversed grant: the grant's lines, opposite
    "given back": ("spent", "liability"),  # a reversed removal: the removal's lines, opposite
}
LABELS = {
    "added": "Credit added",
    "spent": "Credit spent",
    "expired": "Credit expired",
    "taken back": "Credit added, reversed",
    "given back": "Credit spent, reversed",
}


@dataclass(frozen=True, slots=True)
class Accounts:
    """The mapping: per category, the account of each role; options for the layouts."""

    categories: dict[str, dict[str, str]]
    date_format: str = "%Y-%m-%d"
    tax_rate: str = "Tax Exempt"


@dataclass(frozen=True, slots=True)
class Line:
    """One journal line (exactly one of debit and credit is non-zero)."""

    date: str
    journal: str
    account: str
    debit: int
    credit: int
    currency: str
    description: str
    reference: str


def load_accounts(path: str) -> Accounts:
    """Read the accounts file: ``[category.NAME]`` tables of ``liability``, ``added``,
    ``spent`` and ``expired``; optional ``[options]`` ``date_format`` and ``tax_rate``."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        message = f"cannot read the accounts file {path}: {exc.strerror}"
        raise errors.ValidationError(message) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise errors.ValidationError(f"the accounts file {path} is not TOML: {exc}") from None
    tables = data.get("category")
    if not isinstance(tables, dict) or not tables:
        raise errors.ValidationError(f"the accounts file {path} has no [category.NAME] tables")
    categories: dict[str, dict[str, str]] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise errors.ValidationError(f"category.{name} in {path} is not a table")
        missing = [r for r in ROLES if not isinstance(table.get(r), str) or not table[r].strip()]
        if missing:
            raise errors.ValidationError(
                f"category.{name} in {path} lacks an account for {', '.join(missing)}"
            )
        categories[name] = {r: table[r].strip() for r in ROLES}
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise errors.ValidationError(f"[options] in {path} is not a table")
    date_format = str(options.get("date_format", "%Y-%m-%d"))
    try:
        dt.date(2026, 1, 31).strftime(date_format)
    except ValueError:
        message = f"options.date_format in {path} is not a date format"
        raise errors.ValidationError(message) from None
    return Accounts(categories, date_format, str(options.get("tax_rate", "Tax Exempt")))


def movements(entry: JournalEntry) -> Iterator[tuple[str, str, int]]:
    """What an entry moved: (kind of movement, category, cents > 0) per category."""
    for category, cents in entry.effects:
        if not cents:
            continue
        if entry.reverses or entry.kind == "restore":
            yield ("given back" if cents > 0 else "taken back"), category, abs(cents)
        elif entry.kind == "expiry":
            yield "expired", category, -cents
        elif cents > 0:
            yield "added", category, cents
        else:
            yield "spent", category, -cents


def entry_lines(entry: JournalEntry, accounts: Accounts) -> list[Line]:
    """The balanced lines of one entry (its own journal, referenced by its id)."""
    lines = []
    journal = f"CB-{entry.id}"
    for kind, category, cents in movements(entry):
        debit, credit = SIDES[kind]
        mapped = accounts.categories[category]
        text = f"{LABELS[kind]}: client {entry.client_id}, entry #{entry.id}"
        if entry.reverses:
            text += f" (reverses #{entry.reverses})"
        if entry.description:
            text += f": {entry.description}"
        for role, debit_cents, credit_cents in ((debit, cents, 0), (credit, 0, cents)):
            lines.append(
                Line(entry.date, journal, mapped[role], debit_cents, credit_cents,
                     entry.currency, text, str(entry.id))
            )  # fmt: skip
    return lines


def daily_lines(
    day: str,
    totals: dict[tuple[str, str, str], int],
    counts: dict[tuple[str, str], int],
    accounts: Accounts,
) -> list[Line]:
    """One journal per currency and category for a day: each kind of movement summed."""
    lines = []
    for (currency, category, kind), cents in sorted(totals.items()):
        debit, credit = SIDES[kind]
        mapped = accounts.categories[category]
        journal = f"CB-{day}-{currency}-{category}"
        n = counts[(currency, category)]
        text = f"{LABELS[kind]}, {category}: {n} {'entry' if n == 1 else 'entries'} on {day}"
        for role, debit_cents, credit_cents in ((debit, cents, 0), (credit, 0, cents)):
            lines.append(
                Line(day, journal, mapped[role], debit_cents, credit_cents, currency, text,
                     f"{day}/{category}")
            )  # fmt: skip
    return lines


def journal_lines(
    ledger: Ledger, first: str, last: str, accounts: Accounts, daily: bool, currency: str = ""
) -> Iterator[Line]:
    """Every line of the period's journal, in date order (``check`` first)."""
    day = ""
    totals: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    counts: defaultdict[tuple[str, str], int] = defaultdict(int)
    for entry in ledger.store.reports.journal_entries(first, last):
        if currency and entry.currency != currency:
            continue
        if not daily:
            yield from entry_lines(entry, accounts)
            continue
        if entry.date != day:
            yield from daily_lines(day, totals, counts, accounts)
            day, totals, counts = entry.date, defaultdict(int), defaultdict(int)
        seen = set()
        for kind, category, cents in movements(entry):
            totals[(entry.currency, category, kind)] += cents
            seen.add((entry.currency, category))
        for key in seen:
            counts[key] += 1
    if daily and day:
        yield from daily_lines(day, totals, counts, accounts)


def check(
    ledger: Ledger,
    first: str | None,
    last: str | None,
    accounts: Accounts,
    layout: str = "generic",
    currency: str = "",
) -> tuple[str, str]:
    """Refuse, before anything is written, a period, layout or mapping the export cannot
    serve: every category the period uses must be mapped; return the period's days."""
    start, end = period(first, last)
    if layout not in LAYOUTS:
        raise errors.ValidationError(f"--layout is one of {', '.join(LAYOUTS)}")
    uses = ledger.store.reports.journal_uses(start, end)
    unmapped = sorted({c for _, c in uses} - set(accounts.categories))
    if unmapped:
        raise errors.ValidationError(
            f"the accounts file maps no accounts for {', '.join(unmapped)}, used from "
            f"{start} to {end}: add a [category.{unmapped[0]}] table"
        )
    held = {c for c, _ in uses}
    if layout == "xero" and not currency.strip() and len(held) > 1:
        raise errors.ValidationError(
            "Xero's manual journals are in the organisation's base currency: choose one "
            f"with --currency ({', '.join(sorted(held))} are used)"
        )
    return start, end


def write(
    ledger: Ledger,
    out: TextIO,
    start: str,
    end: str,
    accounts: Accounts,
    daily: bool = False,
    layout: str = "generic",
    currency: str = "",
) -> dict[str, Any]:
    """Write the journal of a period ``check`` accepted as CSV; return what was written (lines,
    journals, totals per currency), having checked that debits equal credits per journal and
    per currency."""
    code = currency.strip().upper()
    writer = csv.writer(out, lineterminator="\r\n" if layout != "generic" else "\n")
    writer.writerow(LAYOUTS[layout])
    balance: dict[str, int] = defaultdict(int)
    per_currency: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    journal, lines, journals = "", 0, 0
    for line in journal_lines(ledger, start, end, accounts, daily, code):
        if line.journal != journal:
            _check_balanced(journal, balance)
            journal, journals = line.journal, journals + 1
        balance[line.currency] += line.debit - line.credit
        per_currency[line.currency][0] += line.debit
        per_currency[line.currency][1] += line.credit
        writer.writerow(_row(line, layout, accounts))
        lines += 1
    _check_balanced(journal, balance)
    return {
        "lines": lines,
        "journals": journals,
        "currencies": {
            c: {"debits": format_cents(d), "credits": format_cents(k)}
            for c, (d, k) in sorted(per_currency.items())
        },
    }


def _check_balanced(journal: str, balance: dict[str, int]) -> None:
    if any(balance.values()):
        raise errors.CreditError(f"journal {journal} does not balance: run verify")
    balance.clear()


def _row(line: Line, layout: str, accounts: Accounts) -> list[str]:
    debit = format_cents(line.debit) if line.debit else ""
    credit = format_cents(line.credit) if line.credit else ""
    date = dt.date.fromisoformat(line.date).strftime(accounts.date_format)
    text = safe_cell(line.description)
    if layout == "xero":
        amount = format_cents(line.debit - line.credit)
        code = line.account.split()[0]
        return [f"Creditbook {line.journal}", date, text, code, accounts.tax_rate, amount,
                "", "", "", ""]  # fmt: skip
    if layout == "quickbooks":
        return [line.journal, date, line.currency, safe_cell(line.account), debit, credit, text,
                f"Creditbook {line.reference}"]  # fmt: skip
    return [date, line.journal, safe_cell(line.account), debit, credit, line.currency, text,
            line.reference]  # fmt: skip
