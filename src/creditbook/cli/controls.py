"""``approval``, ``approvals`` and ``admin totp``: the finance team's controls from the command
line. The CLI runs as the operator: its own changes are not subject to approval rules."""

from __future__ import annotations

import argparse
from typing import Any

from .. import errors, twofactor
from ..approvals import Approvals
from ..ledger import Ledger
from ..money import format_cents
from .common import cli_actor, print_json, settings_for, table


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``approval`` and ``approvals`` to the top-level parser."""
    a = sub.add_parser("approval", help="four-eyes approval rules").add_subparsers(
        dest="approval_command", required=True, metavar="ACTION"
    )
    s = a.add_parser("set", parents=[common], help="console changes above an amount wait")
    s.add_argument("--currency", required=True, help="three-letter code")
    s.add_argument("--above", required=True, help="changes above this amount need approval")
    s.add_argument("--removals", action="store_true", help="every removal needs approval")
    s.set_defaults(func=approval_command)
    s = a.add_parser("remove", parents=[common], help="remove a currency's rule")
    s.add_argument("--currency", required=True)
    s.set_defaults(func=approval_command)
    a.add_parser("list", parents=[common], help="list rules").set_defaults(func=approval_command)
    s = sub.add_parser("approvals", parents=[common], help="requests waiting for approval")
    s.set_defaults(func=approvals_command)


def add_totp_parsers(admin: Any, common: argparse.ArgumentParser) -> None:
    """Add ``admin totp enable|disable USER``."""
    t = admin.add_parser("totp", help="an admin's authenticator app (TOTP)").add_subparsers(
        dest="totp_command", required=True, metavar="ACTION"
    )
    s = t.add_parser("enable", parents=[common], help="enrol: print the otpauth:// URI and codes")
    s.add_argument("username")
    s.set_defaults(func=totp_command)
    s = t.add_parser("disable", parents=[common], help="remove the admin's second factor")
    s.add_argument("username")
    s.set_defaults(func=totp_command)


def approval_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Set, remove or list approval rules."""
    approvals, actor = Approvals(ledger), cli_actor(args)
    if args.approval_command == "set":
        rule = approvals.set_rule(args.currency, args.above, args.removals, actor)
        extra = " and every removal" if rule.removals else ""
        print(
            f"Approval rule set: {rule.currency} console changes above "
            f"{format_cents(rule.above_cents)}{extra} need a second person"
        )
        return 0
    if args.approval_command == "remove":
        approvals.remove_rule(args.currency, actor)
        print(f"Approval rule removed: {args.currency.upper()}")
        return 0
    rows = [{"currency": r.currency, "above": format_cents(r.above_cents),
             "removals": r.removals} for r in approvals.rules()]  # fmt: skip
    if args.json:
        print_json(rows)
    else:
        shown = [[r["currency"], r["above"], "yes" if r["removals"] else "no"] for r in rows]
        table(["CURRENCY", "ABOVE", "EVERY REMOVAL"], shown)
    return 0


def approvals_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """List the requests waiting for a decision."""
    pending = [r.as_json() for r in Approvals(ledger).pending()]
    if args.json:
        print_json(pending)
        return 0
    table(
        ["ID", "CLIENT", "KIND", "AMOUNT", "ASKED BY", "ASKED", "EXPIRES", "DESCRIPTION"],
        [[r["id"], r["clientid"], r["kind"], f"{r['amount']} {r['currency']}", r["requester"],
          r["requested_at"][:16], r["expires_at"][:16], r["description"][:40]]
         for r in pending],
    )  # fmt: skip
    return 0


def totp_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Enrol an admin's authenticator (printing the URI and recovery codes) or remove it."""
    admin = ledger.find_admin(args.username)
    if admin is None:
        raise errors.NotFound(f"No admin {args.username[:64]}")
    factors = twofactor.Factors(ledger, settings_for(args).key_file())
    actor = cli_actor(args)
    if args.totp_command == "disable":
        if not factors.disable(admin, actor):
            raise errors.NotFound(f"{admin.username} has no second factor")
        print(f"Second factor removed for {admin.username}")
        return 0
    uri, codes = factors.enrol_confirmed(admin, actor)
    if args.json:
        print_json({"username": admin.username, "otpauth_uri": uri, "recovery_codes": codes})
        return 0
    print(f"Authenticator enrolled for {admin.username}. Add it to an app with this URI:")
    print(uri)
    print("Recovery codes (each works once; shown only now):")
    for code in codes:
        print(f"  {code}")
    return 0
