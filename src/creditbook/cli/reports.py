"""Reports: every client's balance as of a day (the month-end liability report)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict

from ..exports import safe_cell
from ..ledger import Ledger
from ..money import format_cents
from .common import cell, plural


def balances_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Print every client's balance at the end of a day, streamed, with totals per currency."""
    if getattr(args, "by", None) == "category":
        return _by_category(args, ledger)
    rows = ledger.balances_asof(args.asof)
    out = sys.stdout
    if args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["clientid", "firstname", "lastname", "companyname", "email", "currency", "balance"]
        )
        for b in rows:
            text = [b.firstname, b.lastname, b.companyname, b.email, b.currency_code]
            writer.writerow([b.client_id, *map(safe_cell, text), format_cents(b.balance_cents)])
        return 0
    if args.format == "jsonl":
        for b in rows:
            item = {
                "clientid": b.client_id,
                "firstname": b.firstname,
                "lastname": b.lastname,
                "companyname": b.companyname,
                "email": b.email,
                "currency": b.currency_code,
                "balance": format_cents(b.balance_cents),
            }
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
        return 0
    totals: dict[str, int] = defaultdict(int)
    holders: dict[str, int] = defaultdict(int)
    out.write(f"Balances at the end of {args.asof}\n")
    out.write(f"{'CLIENT':>8}  {'BALANCE':>16} CUR  NAME  EMAIL\n")
    for b in rows:
        totals[b.currency_code] += b.balance_cents
        if b.balance_cents:
            holders[b.currency_code] += 1
            name = cell(f"{b.firstname} {b.lastname}".strip())
            out.write(f"{b.client_id:>8}  {format_cents(b.balance_cents):>16} {b.currency_code}  ")
            out.write(f"{name}  {cell(b.email)}\n")
    for currency in sorted(totals):
        out.write(
            f"Total {currency}: {format_cents(totals[currency])} owed to "
            f"{plural(holders[currency], 'client')}\n"
        )
    return 0


def _by_category(args: argparse.Namespace, ledger: Ledger) -> int:
    """``balances --by category``: each balance split by credit category, totals per currency
    and category."""
    names = [c.name for c in ledger.categories()]
    rows = ledger.balances_by_category(args.asof)
    out = sys.stdout
    head = ["clientid", "firstname", "lastname", "companyname", "email", "currency", "balance"]
    if args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(head + names)
        for b, split in rows:
            text = [b.firstname, b.lastname, b.companyname, b.email, b.currency_code]
            writer.writerow(
                [b.client_id, *map(safe_cell, text), format_cents(b.balance_cents)]
                + [format_cents(split.get(n, 0)) for n in names]
            )
        return 0
    if args.format == "jsonl":
        for b, split in rows:
            values = [b.client_id, b.firstname, b.lastname, b.companyname, b.email,
                      b.currency_code, format_cents(b.balance_cents)]  # fmt: skip
            item = dict(zip(head, values, strict=True))
            item["categories"] = {n: format_cents(c) for n, c in split.items()}
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
        return 0
    totals: dict[tuple[str, str], int] = defaultdict(int)
    out.write(f"Balances by category at the end of {args.asof}\n")
    out.write(f"{'CLIENT':>8}  {'BALANCE':>16} CUR  CATEGORIES  NAME\n")
    for b, split in rows:
        for name, cents in split.items():
            totals[(b.currency_code, name)] += cents
        if b.balance_cents:
            parts = ", ".join(f"{n} {format_cents(c)}" for n, c in split.items() if c)
            name = cell(f"{b.firstname} {b.lastname}".strip())
            out.write(f"{b.client_id:>8}  {format_cents(b.balance_cents):>16} {b.currency_code}  ")
            out.write(f"{parts}  {name}\n")
    for (currency, name), cents in sorted(totals.items()):
        out.write(f"Total {currency} {name}: {format_cents(cents)}\n")
    return 0
