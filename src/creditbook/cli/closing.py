"""Month-end close: ``report rollforward``, ``export journal`` and ``reconcile whmcs-db``."""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
from typing import Any

from .. import errors, journal, reconcile, rollforward
from ..exports import safe_cell
from ..ledger import Ledger
from ..money import format_cents
from .common import plural, print_json

HEAD = list(rollforward.FIELDS)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``report`` and ``reconcile`` to the top-level parser (``export journal`` is one of
    ``export``'s tables)."""
    r = sub.add_parser("report", help="month-end reports").add_subparsers(
        dest="report_command", required=True, metavar="REPORT"
    )
    s = r.add_parser(
        "rollforward", parents=[common], help="opening, added, spent, reversed, expired, closing"
    )
    s.add_argument("--from", dest="start", metavar="DATE", required=True, help="first day")
    s.add_argument("--to", dest="end", metavar="DATE", required=True, help="last day, inclusive")
    s.add_argument("--currency", help="one currency (default: every currency)")
    s.add_argument("--by", choices=["category"], help="a row per credit category")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument(
        "--recorded-after",
        metavar="WHEN",
        help="list entries of the period recorded after this day's end or UTC time (default: "
        "the period's end)",
    )
    s.set_defaults(func=rollforward_command)

    c = sub.add_parser("reconcile", help="compare with a system still running beside it")
    c = c.add_subparsers(dest="reconcile_command", required=True, metavar="SOURCE")
    s = c.add_parser("whmcs-db", parents=[common], help="with the WHMCS database imported from")
    s.add_argument("url", help="mysql://user:password@host:port/database")
    s.set_defaults(func=reconcile_command)


def add_journal_options(s: argparse.ArgumentParser) -> None:
    """``export journal``'s options."""
    s.add_argument("--accounts", metavar="FILE", help="journal: the TOML mapping to accounts")
    s.add_argument(
        "--summarize", choices=["daily"], help="journal: one journal per day and category"
    )
    s.add_argument("--layout", choices=list(journal.LAYOUTS), default="generic")
    s.add_argument("--currency", default="", help="journal: one currency only")


def rollforward_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Print the roll-forward of a period (every row checked before anything is printed)."""
    report = rollforward.build(
        ledger, args.start, args.end, args.currency, args.by == "category", args.recorded_after
    )
    out = sys.stdout
    if args.format == "json" or args.json:
        print_json(report.as_json())
        return 0
    if args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEAD)
        for row in report.rows:
            writer.writerow(row.as_text().values())
        return 0
    out.write(f"Credit roll-forward from {report.first} to {report.last}\n")
    cells = [[str(v) for v in r.as_text().values()] for r in report.rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEAD)]
    for line in [[h.upper() for h in HEAD], *cells]:
        pairs = enumerate(zip(line, widths, strict=True))
        parts = [v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in pairs]
        out.write("  ".join(parts).rstrip() + "\n")
    out.write("Checked: opening + added - spent + reversed - expired = closing on every row.\n")
    if report.late_count:
        out.write(
            f"\nRecorded after {report.recorded_after} for this period: "
            f"{plural(report.late_count, 'entry', 'entries')} ("
            + ", ".join(f"{c} {format_cents(v)}" for c, v in sorted(report.late_totals.items()))
            + ")\n"
        )
        for e in report.late:
            out.write(
                f"  #{e['id']}  client {e['clientid']}  dated {e['date']}  recorded "
                f"{e['recorded'][:19]}Z  {e['amount']} {e['currency']}  "
                f"{safe_cell(e['description'])}\n"
            )
        if report.late_count > len(report.late):
            out.write(f"  ... and {report.late_count - len(report.late):,} more\n")
    else:
        out.write(f"No entry of this period was recorded after {report.recorded_after}.\n")
    return 0


def journal_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """``export journal``: balanced journal lines as CSV (refusals before a byte is written)."""
    if not args.accounts:
        raise ValueError("export journal needs --accounts FILE (the TOML mapping to accounts)")
    accounts = journal.load_accounts(args.accounts)
    start, end = journal.check(ledger, args.start, args.end, accounts, args.layout, args.currency)
    daily = args.summarize == "daily"
    with contextlib.ExitStack() as stack:
        out = sys.stdout
        if args.output:
            out = stack.enter_context(open(args.output, "w", encoding="utf-8", newline=""))
        done = journal.write(ledger, out, start, end, accounts, daily, args.layout, args.currency)
    totals = ", ".join(
        f"{c} {t['debits']} debit = {t['credits']} credit" for c, t in done["currencies"].items()
    )
    where = f" to {args.output}" if args.output else ""
    print(
        f"Exported {plural(done['journals'], 'journal')} of {plural(done['lines'], 'line')}"
        f"{where}, balanced ({totals or 'nothing in the period'})",
        file=sys.stderr,
    )
    return 0


def reconcile_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Compare the imported clients with WHMCS; exit 1 when something does not match."""
    from ..importer.whmcs_db import WhmcsDatabase

    source = WhmcsDatabase(args.url)
    try:
        result = reconcile.run(ledger, source)
    except errors.ValidationError as exc:  # exit 2: 1 means "something does not match"
        raise ValueError(exc.message) from None
    finally:
        source.close()
    if args.json:
        print_json(result.as_json())
        return 1 if result.differences else 0
    print(
        f"Compared {plural(result.compared, 'client')} imported from {result.source}: "
        f"{result.matched:,} match, {len(result.differences):,} differ"
    )
    for d in result.differences:
        j = d.as_json()
        state = "explained by the entries below" if d.explained else "NOT explained by entries"
        print(
            f"client {d.client_id} {d.currency}: Creditbook {j['creditbook'] or '(not imported)'}"
            f", WHMCS {j['whmcs'] or '(not in WHMCS)'}, difference {j['difference']} ({state})"
        )
        for side, entries in (("Creditbook", j["only_creditbook"]), ("WHMCS", j["only_whmcs"])):
            for e in entries:
                print(
                    f"  only in {side}: #{e['id']} {e['date']} {e['amount']} "
                    f"{safe_cell(e['description'])}"
                )
    return 1 if result.differences else 0
