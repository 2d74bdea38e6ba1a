"""``creditbook import ...``, ``export ...`` and ``copy``: data in, data out, store to store."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from .. import errors
from ..backup import copy
from ..exports import TABLES, export
from ..importer import Importer, Report
from ..importer.model import GRANT_NOTE
from ..ledger import Ledger
from ..money import format_cents
from ..store.imports import ImportStore
from .closing import add_journal_options, journal_command
from .common import MAX_ID, bounded, plural, print_json


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``import``, ``export`` and ``copy`` to the top-level parser."""
    i = sub.add_parser("import", help="import WHMCS data").add_subparsers(
        dest="import_command", required=True, metavar="SOURCE"
    )
    s = i.add_parser("whmcs-db", parents=[common], help="from a live WHMCS MySQL/MariaDB database")
    s.add_argument("url", help="mysql://user:password@host:port/database")
    _import_options(s)
    s = i.add_parser("whmcs-api", parents=[common], help="through any WHMCS API endpoint")
    s.add_argument("url", help="https://billing.example.com (or .../includes/api.php)")
    s.add_argument("--identifier", required=True)
    s.add_argument("--secret", required=True)
    _import_options(s)
    s = i.add_parser(
        "credits-csv", parents=[common], help="a Credits Reviewer CSV, for clients already here"
    )
    s.add_argument("file")
    s.add_argument(
        "--date-format",
        default="%Y-%m-%d",
        help="strptime format of the Date column, e.g. %%d/%%m/%%Y (default %%Y-%%m-%%d)",
    )
    s.add_argument("--dry-run", action="store_true", help="do everything but commit")
    s.add_argument("--progress", action="store_true", help="show progress (default on a terminal)")
    _skip_option(s)
    s.set_defaults(func=import_command, reconcile="none")
    s = i.add_parser(
        "csv", parents=[common], help="files made by creditbook export clients / export credits"
    )
    s.add_argument("clients_file")
    s.add_argument("credits_file")
    _import_options(s)
    _skip_option(s)

    s = sub.add_parser(
        "export", parents=[common], help="clients, credits or activity as CSV/JSONL, or a journal"
    )
    s.add_argument("table", choices=[*TABLES, "journal"])
    s.add_argument("--client", type=bounded(1, MAX_ID), default=0, help="only this client")
    s.add_argument("--from", dest="start", metavar="DATE", help="from this day (YYYY-MM-DD)")
    s.add_argument("--to", dest="end", metavar="DATE", help="to this day, inclusive")
    s.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    s.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    add_journal_options(s)
    s.set_defaults(func=export_command)

    s = sub.add_parser(
        "copy", parents=[common], help="copy a whole Creditbook into an empty store, verified"
    )
    s.add_argument("source", help="sqlite:///path, a path, or postgresql://...")
    s.add_argument("target", help="the empty store: postgresql://... (or sqlite:///path)")
    s.add_argument("--progress", action="store_true", help="show progress (default on a terminal)")
    s.set_defaults(func=copy_command)


def _skip_option(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="import the good rows of a file that has bad ones (listed in the report); "
        "without it a file with any bad row imports nothing",
    )


def _import_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--reconcile",
        choices=["balance", "log"],
        default="balance",
        help="where the source's balance and credit log disagree, end on the balance (an "
        "opening-balance adjustment entry) or on the log",
    )
    s.add_argument("--dry-run", action="store_true", help="do everything but commit")
    s.add_argument("--progress", action="store_true", help="show progress (default on a terminal)")
    s.set_defaults(func=import_command)


class Bar:
    """Rows done, rate and time left, on one terminal line."""

    def __init__(self, out: TextIO, label: str) -> None:
        self.out = out
        self.label = label
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        share = min(done / total, 1.0) if total else 1.0
        left = (total - done) / rate if rate and total > done else 0.0
        self.out.write(
            f"\r{self.label} [{'#' * int(share * 30):<30}] {done:,}/{total:,} rows "
            f"{rate:,.0f}/s, {left:,.0f} s left "
        )
        self.out.flush()


def import_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Import; print the report (exit 1 when the result did not verify)."""
    from ..importer.sources import CreditbookCsv, CreditsCsv
    from ..importer.whmcs_api import WhmcsApi
    from ..importer.whmcs_db import WhmcsDatabase

    store = ledger.store
    if not isinstance(store, ImportStore):
        raise errors.StoreError("this store cannot import")
    kind = args.import_command
    source: Any
    if kind == "whmcs-db":
        source = WhmcsDatabase(args.url)
    elif kind == "whmcs-api":
        source = WhmcsApi(args.url, args.identifier, args.secret)
    elif kind == "csv":
        source = CreditbookCsv(args.clients_file, args.credits_file)
    else:
        admins = ledger.list_admins()
        names = {f"{a.firstname} {a.lastname}".strip().lower(): a.id for a in admins}
        names.update({a.username.lower(): a.id for a in admins})
        source = CreditsCsv(args.file, args.date_format, names)
    show = args.progress or (sys.stderr.isatty() and not args.json)
    strict = kind in ("credits-csv", "csv") and not args.skip_bad_rows
    try:
        if strict and source.problems:
            return _refuse_file(args, source.problems)

        def run(dry_run: bool) -> Report:
            return Importer(
                store,
                source,
                reconcile=args.reconcile,
                dry_run=dry_run,
                progress=Bar(sys.stderr, "import") if show else None,
                attach=kind == "credits-csv",
            ).run()

        if strict and kind == "credits-csv" and not args.dry_run:
            # Rows for clients that are not here, or that would take a balance out of its
            # range, are only known against the store: a rolled-back run finds them first.
            trial = run(dry_run=True)
            if trial.skipped:
                return _refuse_file(args, trial.skipped)
        report = run(args.dry_run)
    finally:
        source.close()
        if show:
            sys.stderr.write("\n")
    for problem in getattr(source, "problems", []):
        report.skip(problem["table"], problem["id"], problem["reason"])
    if args.json:
        print_json(report.as_dict())
    else:
        _print_report(report)
    return 0 if report.verified else 1


def _refuse_file(args: argparse.Namespace, problems: list[dict[str, Any]]) -> int:
    """Say which rows are bad and that nothing was imported; exit status 1."""
    if args.json:
        print_json({"imported": False, "bad_rows": problems})
    else:
        print(
            f"error: {len(problems)} row(s) cannot be imported, so nothing was imported "
            "(fix them, or import the others with --skip-bad-rows):",
            file=sys.stderr,
        )
        for p in problems[:50]:
            print(f"  {p['table']} {p['id']}: {p['reason']}", file=sys.stderr)
        if len(problems) > 50:
            print(f"  ... and {len(problems) - 50} more", file=sys.stderr)
    return 1


def _print_report(r: Report) -> None:
    mode = " (dry run: nothing was committed)" if r.dry_run else ""
    print(f"Import from {r.source}{mode}, reconciled on the {r.reconcile}:")
    print(
        f"  clients: {r.clients_in_source} in the source, {r.clients_imported} imported, "
        f"{r.clients_already} already here"
    )
    print(
        f"  credit rows: {r.credits_in_source} in the source, {r.credits_imported} imported, "
        f"{r.credits_already} already here; {r.adjustments} opening-balance adjustment(s)"
    )
    print(f"  admins: {r.admins_imported} imported (disabled, no usable password)")
    print(f"  credit: {GRANT_NOTE}")
    if r.admins_imported:
        print("    set a password, then enable: creditbook admin password NAME; admin enable NAME")
    if r.differences:
        print(f"  {len(r.differences)} client(s) whose balance and credit log disagree:")
        for d in r.differences[:50]:
            print(f"    client {d['client_id']}: balance {d['balance']}, log {d['log']}")
    if r.skipped:
        print(f"  {len(r.skipped)} row(s) not imported:")
        for s in r.skipped[:50]:
            print(f"    {s['table']} {s['id']}: {s['reason']}")
    if r.warnings:
        print(f"  {len(r.warnings)} warning(s):")
        for w in r.warnings[:50]:
            print(f"    {w['table']} {w['id']}: {w['kind']}: {w['detail']}")
    print("  totals per currency (source balance / source log / imported):")
    for code, row in sorted(r.totals.items()):
        print(
            f"    {code}: {format_cents(row['source_balance'])} / "
            f"{format_cents(row['source_log'])} / {format_cents(row['imported'])}"
        )
    state = "verified" if r.verified else "FAILED verification"
    print(f"  {state} in {r.seconds:.1f} s")


def export_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Stream a table to stdout or a file."""
    if args.table == "journal":
        return journal_command(args, ledger)
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        rows = export(
            ledger.store,  # type: ignore[arg-type]
            args.table,
            out,
            args.format,
            args.client,
            args.start,
            args.end,
            workers=os.cpu_count() or 1,
        )
    finally:
        if args.output:
            out.close()
    if args.output:
        what = plural(rows, "row")
        print(f"Exported {what} of {args.table} to {args.output}", file=sys.stderr)
    return 0


def copy_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Copy every table into an empty store and verify it."""
    from .operations import _report

    show = args.progress or sys.stderr.isatty()
    copied = copy(args.source, args.target, progress=sys.stderr if show else None)
    return _report("Copy", copied, args.json)
