"""``creditbook ...``: parse, call the ledger, print. Errors become one line on stderr."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import errors
from ..admins import ACCESS_LEVELS
from ..config import Settings
from ..ledger import Ledger
from ..version import __version__
from .access import config_command, currency_command, ip_command, log_command, role_command
from .closing import add_parsers as add_closing_parsers
from .common import MAX_ID, Parser, bounded, settings_for, store_for
from .controls import add_parsers as add_control_parsers
from .controls import add_totp_parsers
from .grants import add_parsers as add_grant_parsers
from .operations import VERIFY_JOBS, backup_command, restore_command, seal_command, verify_command
from .records import (
    admin_add,
    admin_disable,
    admin_list,
    admin_password,
    admin_set_access,
    admin_unban,
    client_add,
    client_list,
    credential_add,
    credential_list,
    credential_revoke,
    credit_change,
    credits,
    migrate,
)
from .reports import balances_command
from .transfer import add_parsers as add_transfer_parsers
from .webhooks import add_parsers as add_webhook_parsers

__all__ = ["main"]


# --- parser -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--database",
        help="sqlite:///path, a path, or postgresql://... "
        "(env CREDITBOOK_DATABASE, default ./creditbook.db)",
    )
    common.add_argument("--json", action="store_true", help="print data as JSON")
    p = Parser(
        prog="creditbook",
        description="A self-hosted client-credit ledger that speaks the WHMCS API.",
    )
    p.add_argument("--version", action="version", version=f"creditbook {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", parents=[common], help="run the HTTP API")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=bounded(1, 65535), help="port (default 8080)")
    s.add_argument("--workers", type=bounded(1, 256), help="worker processes (default 1)")
    s.add_argument("--ssl-certfile", metavar="PEM", help="serve HTTPS: the certificate chain")
    s.add_argument("--ssl-keyfile", metavar="PEM", help="serve HTTPS: the private key")
    s.add_argument(
        "--demo",
        action="store_true",
        help="on an empty database, create a demo admin, credential and client",
    )
    sub.add_parser("migrate", parents=[common], help="apply database migrations").set_defaults(
        func=migrate
    )
    s = sub.add_parser(
        "verify",
        parents=[common],
        help="recompute balances and hash chains from the entries; exit 1 on a problem",
    )
    s.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    s.add_argument(
        "--seal", metavar="DIGEST_OR_FILE", help="also prove that what this seal covered holds"
    )
    s.add_argument(
        "--jobs",
        type=bounded(1, 64),
        default=1,
        help="processes checking ranges of clients at once (default 1: it runs beside the service)",
    )
    s.set_defaults(func=verify_command)
    sub.add_parser(
        "seal", parents=[common], help="record and print a digest over every chain head"
    ).set_defaults(func=seal_command)
    s = sub.add_parser(
        "backup", parents=[common], help="consistent online backup into a new SQLite file"
    )
    s.add_argument("dest", help="the new backup file")
    s.add_argument("--progress", action="store_true", help="show progress on stderr")
    s.add_argument("--jobs", type=bounded(1, 64), help=VERIFY_JOBS)
    s.set_defaults(func=backup_command)
    s = sub.add_parser("restore", parents=[common], help="restore a backup into an empty store")
    s.add_argument("source", help="a backup file made by creditbook backup")
    s.add_argument("target", help="the empty store: sqlite:///path, a path, or postgresql://...")
    s.add_argument("--progress", action="store_true", help="show progress on stderr")
    s.add_argument("--jobs", type=bounded(1, 64), help=VERIFY_JOBS)
    s.set_defaults(func=restore_command)

    a = sub.add_parser("admin", help="manage admins").add_subparsers(
        dest="admin_command", required=True, metavar="ACTION"
    )
    add_totp_parsers(a, common)
    s = a.add_parser("add", parents=[common], help="create an admin")
    s.add_argument("username")
    s.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    for name in ("firstname", "lastname", "email"):
        s.add_argument(f"--{name}", default="")
    s.add_argument(
        "--access",
        default="manager",
        choices=ACCESS_LEVELS,
        help="web console access: viewer (reads), manager (also changes credit, the default) "
        "or owner (also API access and admins)",
    )
    s.set_defaults(func=admin_add)
    s = a.add_parser("set-access", parents=[common], help="set an admin's console access")
    s.add_argument("username")
    s.add_argument("level", choices=ACCESS_LEVELS, type=str.lower)
    s.set_defaults(func=admin_set_access)
    for name, text in (("disable", "disable an admin"), ("enable", "re-enable an admin")):
        s = a.add_parser(name, parents=[common], help=text)
        s.add_argument("username")
        s.set_defaults(func=admin_disable)
    a.add_parser("list", parents=[common], help="list admins").set_defaults(func=admin_list)
    s = a.add_parser(
        "unban", parents=[common], help="lift the login bans of a username or an IP address"
    )
    s.add_argument("target", metavar="USER_OR_ADDRESS")
    s.set_defaults(func=admin_unban)
    s = a.add_parser("password", parents=[common], help="set an admin's password")
    s.add_argument("username")
    s.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(func=admin_password)

    c = sub.add_parser("credential", help="manage API credentials").add_subparsers(
        dest="credential_command", required=True, metavar="ACTION"
    )
    s = c.add_parser("add", parents=[common], help="create a credential (secret shown once)")
    s.add_argument("username")
    s.add_argument("--description", default="")
    s.add_argument("--role", action="append", help="API role (repeatable; none = full access)")
    s.set_defaults(func=credential_add)
    c.add_parser("list", parents=[common], help="list credentials").set_defaults(
        func=credential_list
    )
    s = c.add_parser("revoke", parents=[common], help="revoke a credential")
    s.add_argument("identifier")
    s.set_defaults(func=credential_revoke)

    c = sub.add_parser("client", help="manage clients").add_subparsers(
        dest="client_command", required=True, metavar="ACTION"
    )
    s = c.add_parser("add", parents=[common], help="create a client")
    s.add_argument("--firstname", required=True)
    s.add_argument("--lastname", required=True)
    s.add_argument("--email", required=True)
    s.add_argument("--company", default="")
    s.add_argument("--currency", default="USD")
    s.set_defaults(func=client_add)
    s = c.add_parser("list", parents=[common], help="list clients")
    s.add_argument("--search", default="")
    s.add_argument("--offset", type=bounded(0, MAX_ID), default=0)
    s.add_argument("--limit", type=bounded(1, 1_000_000), default=100)
    s.set_defaults(func=client_list)

    c = sub.add_parser("credit", help="add or remove credit").add_subparsers(
        dest="credit_command", required=True, metavar="ACTION"
    )
    for name in ("add", "remove"):
        s = c.add_parser(name, parents=[common], help=f"{name} credit")
        s.add_argument("clientid")
        s.add_argument("amount")
        s.add_argument("--description", required=True)
        s.add_argument("--date", help="YYYY-MM-DD (default today)")
        s.add_argument("--admin", help="admin username to record on the entry")
        if name == "add":
            s.add_argument("--category", help="paid (default), promotional, goodwill, refund...")
            s.add_argument("--expires", help="YYYY-MM-DD: what is left expires after that day")
        s.set_defaults(func=credit_change)
    s = sub.add_parser("credits", parents=[common], help="a client's credit history")
    s.add_argument("clientid")
    s.set_defaults(func=credits)

    c = sub.add_parser("ip", help="the API IP allow-list").add_subparsers(
        dest="ip_command", required=True, metavar="ACTION"
    )
    for name, text in (
        ("allow", "allow an address or CIDR range"),
        ("remove", "take an address or range off the allow-list"),
        ("deny", "the old name of remove (it never denied anything but the entry)"),
    ):
        s = c.add_parser(name, parents=[common], help=text)
        s.add_argument("address")
        s.set_defaults(func=ip_command)
    c.add_parser("list", parents=[common], help="list the allow-list").set_defaults(func=ip_command)

    c = sub.add_parser("currency", help="the currencies clients may hold").add_subparsers(
        dest="currency_command", required=True, metavar="ACTION"
    )
    for name, text in (("add", "allow a currency code"), ("remove", "no longer allow one")):
        s = c.add_parser(name, parents=[common], help=text)
        s.add_argument("code", help="three letters, or ISO4217 for every ISO 4217 code")
        s.set_defaults(func=currency_command)
    c.add_parser("list", parents=[common], help="list the allowed codes").set_defaults(
        func=currency_command
    )

    c = sub.add_parser("config", help="settings shared by all server processes").add_subparsers(
        dest="config_command", required=True, metavar="ACTION"
    )
    s = c.add_parser("set", parents=[common], help="set a setting")
    s.add_argument("name")
    s.add_argument("value")
    s.set_defaults(func=config_command)
    for name in ("get", "unset"):
        s = c.add_parser(name, parents=[common], help=f"{name} a setting")
        s.add_argument("name")
        s.set_defaults(func=config_command)
    c.add_parser("list", parents=[common], help="list settings").set_defaults(func=config_command)

    c = sub.add_parser("role", help="API roles").add_subparsers(
        dest="role_command", required=True, metavar="ACTION"
    )
    s = c.add_parser("add", parents=[common], help="create or replace a role")
    s.add_argument("name")
    s.add_argument(
        "--allow", required=True, help="comma-separated actions, e.g. addcredit,getcredits"
    )
    s.set_defaults(func=role_command)
    c.add_parser("list", parents=[common], help="list roles").set_defaults(func=role_command)

    s = sub.add_parser(
        "balances", parents=[common], help="every client's balance at the end of a day"
    )
    s.add_argument("--asof", required=True, help="the day, YYYY-MM-DD (end of that day)")
    s.add_argument(
        "--format",
        choices=["table", "csv", "jsonl"],
        default="table",
        help="table (clients holding credit, totals per currency), csv or jsonl (every client)",
    )
    s.add_argument("--by", choices=["category"], help="split each balance by credit category")
    s.set_defaults(func=balances_command)

    s = sub.add_parser("log", parents=[common], help="the activity log, newest first")
    s.add_argument("--client", type=bounded(1, MAX_ID), help="only this client")
    s.add_argument("--limit", type=bounded(1, 1_000_000), default=100)
    s.set_defaults(func=log_command)
    add_webhook_parsers(sub, common)
    add_transfer_parsers(sub, common)
    add_grant_parsers(sub, common)
    add_closing_parsers(sub, common)
    add_control_parsers(sub, common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``creditbook log | head``): stop quietly, as Unix tools do.
        # Standard output is pointed at /dev/null so that closing it cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe stopped


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from ..serve import serve

            settings = Settings.from_env(
                database=args.database,
                host=args.host,
                port=args.port,
                workers=args.workers,
                ssl_certfile=args.ssl_certfile,
                ssl_keyfile=args.ssl_keyfile,
            )
            return serve(settings, demo=args.demo)
        if args.command == "copy":  # two stores of its own: none from --database
            return int(args.func(args, None))
        store = store_for(args)
        try:
            if args.command != "migrate":
                store.migrate()
            return int(args.func(args, Ledger(store, timezone=settings_for(args).timezone or None)))
        finally:
            store.close()
    except errors.CreditError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except (errors.StoreError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
