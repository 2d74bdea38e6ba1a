"""``expire``, ``alert`` and ``category``: credit grants from the command line."""

from __future__ import annotations

import argparse
from typing import Any

from .. import expiry
from ..ledger import Ledger
from ..money import format_cents
from .common import cli_actor, plural, print_json, settings_for, table


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``expire``, ``alert`` and ``category`` to the top-level parser."""
    s = sub.add_parser(
        "expire", parents=[common], help="expire what remains of grants past their expiry day"
    )
    s.add_argument("--dry-run", action="store_true", help="list what would expire; change nothing")
    s.add_argument("--today", help="YYYY-MM-DD: run as of this day (default: today in the zone)")
    s.set_defaults(func=expire_command)

    a = sub.add_parser("alert", help="low-balance alerts").add_subparsers(
        dest="alert_command", required=True, metavar="ACTION"
    )
    s = a.add_parser("set", parents=[common], help="set a currency's or a client's threshold")
    s.add_argument("--client", help="one client (overrides the currency's threshold)")
    s.add_argument("--currency", required=True, help="three-letter code")
    s.add_argument("--below", required=True, help="alert when the balance falls below this")
    s.set_defaults(func=alert_command)
    s = a.add_parser("remove", parents=[common], help="remove a currency's or a client's threshold")
    s.add_argument("--client")
    s.add_argument("--currency", required=True)
    s.set_defaults(func=alert_command)
    a.add_parser("list", parents=[common], help="list thresholds").set_defaults(func=alert_command)

    c = sub.add_parser("category", help="credit categories").add_subparsers(
        dest="category_command", required=True, metavar="ACTION"
    )
    s = c.add_parser("set", parents=[common], help="add a category or set its expiry period")
    s.add_argument("name")
    s.add_argument(
        "--expires-days", default="0", help="days until its grants expire by default (0: never)"
    )
    s.add_argument(
        "--confirm-paid",
        action="store_true",
        help="make paid credit expire (it is the client's money in many jurisdictions)",
    )
    s.set_defaults(func=category_command)
    s = c.add_parser("remove", parents=[common], help="remove a category no entry uses")
    s.add_argument("name")
    s.set_defaults(func=category_command)
    c.add_parser("list", parents=[common], help="list categories").set_defaults(
        func=category_command
    )


def expire_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Expire (or list, ``--dry-run``) what remains of grants past their expiry day."""
    today = ledger.day(args.today) if args.today else None
    notice = settings_for(args).expiry_notice_days
    report = expiry.run(ledger, today=today, dry_run=args.dry_run, notice_days=notice)
    if args.json:
        print_json(report.as_dict())
        return 0
    if args.dry_run:
        table(
            ["CLIENT", "ENTRY", "CATEGORY", "EXPIRED ON", "AMOUNT"],
            [[d["client_id"], d["entry_id"], d["category"], d["expires"], d["amount"]]
             for d in report.due],
        )  # fmt: skip
        verb = "would expire"
    else:
        verb = "expired"
    print(
        f"{plural(report.grants, 'grant')} of {plural(report.clients, 'client')} {verb}"
        f" ({format_cents(report.cents)} in all) as of {report.today}"
        + (f"; {plural(report.notices, 'grant')} announced" if report.notices else "")
    )
    return 0


def alert_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Set, remove or list low-balance thresholds."""
    actor = cli_actor(args)
    if args.alert_command == "set":
        found = ledger.set_threshold(
            clientid=args.client, currency=args.currency, below=args.below, actor=actor
        )
        whose = f"client {found.client_id}" if found.client_id else f"{found.currency} clients"
        print(f"Alert set: {whose} below {format_cents(found.below_cents)} {found.currency}")
        return 0
    if args.alert_command == "remove":
        ledger.remove_threshold(clientid=args.client, currency=args.currency, actor=actor)
        print("Alert removed")
        return 0
    rows = [
        {"client": t.client_id or None, "name": t.client_name, "currency": t.currency,
         "below": format_cents(t.below_cents)}
        for t in ledger.thresholds()
    ]  # fmt: skip
    if args.json:
        print_json(rows)
    else:
        table(
            ["CURRENCY", "CLIENT", "BELOW"],
            [[r["currency"], f"{r['client']} {r['name']}" if r["client"] else "(default)",
              r["below"]] for r in rows],
        )  # fmt: skip
    return 0


def category_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Set, remove or list credit categories."""
    actor = cli_actor(args)
    if args.category_command == "set":
        found = ledger.set_category(
            args.name, args.expires_days, actor=actor, confirm_paid=args.confirm_paid
        )
        days = found.expires_days
        said = f"expires {days} days after its date" if days else "never expires"
        print(f"Category {found.name}: its credit {said} unless given an expiry date")
        return 0
    if args.category_command == "remove":
        ledger.remove_category(args.name, actor=actor)
        print(f"Category {args.name.strip().lower()} removed")
        return 0
    rows = [
        {"name": c.name, "expires_days": c.expires_days, "builtin": c.builtin}
        for c in ledger.categories()
    ]
    if args.json:
        print_json(rows)
    else:
        table(
            ["CATEGORY", "EXPIRES AFTER", "BUILT IN"],
            [[r["name"], f"{r['expires_days']} days" if r["expires_days"] else "never",
              "yes" if r["builtin"] else "no"] for r in rows],
        )  # fmt: skip
    return 0
