"""Commands for admins, credentials, clients, credit and migrations."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import Any

from .. import errors
from ..ledger import Ledger
from ..model import Actor
from ..money import format_cents
from ..rules import parse_id
from .common import cli_actor, plural, print_json, table

# --- admins, credentials, clients ---------------------------------------------------------------


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """A password from stdin, a prompt (twice), or generated; and whether it was generated."""
    generated = False
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            raise errors.ValidationError("The passwords do not match")
    else:
        password, generated = secrets.token_urlsafe(16), True
    if not password:
        raise errors.ValidationError("The password must not be empty")
    return password, generated


def admin_add(args: argparse.Namespace, ledger: Ledger) -> int:
    """Create an admin; the password comes from stdin, a prompt, or is generated."""
    password, generated = _new_password(args)
    admin_id = ledger.add_admin(
        args.username,
        password,
        firstname=args.firstname,
        lastname=args.lastname,
        email=args.email,
        access=args.access,
        actor=cli_actor(args),
    )
    if args.json:
        print_json(
            {
                "id": admin_id,
                "username": args.username,
                "access": args.access,
                **({"password": password} if generated else {}),
            }
        )
    else:
        print(f"Created admin {args.username} (id {admin_id}, console access {args.access})")
        if generated:
            print(f"Generated password (shown once): {password}")
    return 0


def admin_password(args: argparse.Namespace, ledger: Ledger) -> int:
    """Set an admin's password (stdin, a prompt, or generated), e.g. one imported from WHMCS."""
    password, generated = _new_password(args)
    ledger.set_admin_password(args.username, password, actor=cli_actor(args))
    print(f"Set the password of admin {args.username}")
    if generated:
        print(f"Generated password (shown once): {password}")
    return 0


def admin_disable(args: argparse.Namespace, ledger: Ledger) -> int:
    """Disable (or with ``enable``, re-enable) an admin."""
    disable = args.admin_command == "disable"
    ledger.set_admin_disabled(args.username, disable, actor=cli_actor(args))
    print(f"{'Disabled' if disable else 'Enabled'} admin {args.username}")
    return 0


def admin_set_access(args: argparse.Namespace, ledger: Ledger) -> int:
    """Give an admin a console access level."""
    ledger.set_admin_access(args.username, args.level, actor=cli_actor(args))
    print(f"Admin {args.username} now has {args.level.lower()} access to the console")
    return 0


def admin_unban(args: argparse.Namespace, ledger: Ledger) -> int:
    """Lift the login bans of a username or an address."""
    ledger.unban(args.target, actor=cli_actor(args))
    print(f"Lifted the login bans of {args.target}")
    return 0


def admin_list(args: argparse.Namespace, ledger: Ledger) -> int:
    """List admins."""
    admins = ledger.list_admins()
    rows = [
        {
            "id": a.id,
            "username": a.username,
            "firstname": a.firstname,
            "lastname": a.lastname,
            "email": a.email,
            "disabled": a.disabled,
            "access": a.access,
        }
        for a in admins
    ]
    if args.json:
        print_json(rows)
    else:
        table(
            ["ID", "USERNAME", "NAME", "EMAIL", "ACCESS", "DISABLED"],
            [
                [
                    a.id,
                    a.username,
                    f"{a.firstname} {a.lastname}".strip(),
                    a.email,
                    a.access,
                    "yes" if a.disabled else "no",
                ]
                for a in admins
            ],
        )
    return 0


def credential_add(args: argparse.Namespace, ledger: Ledger) -> int:
    """Create an API credential and print its secret once."""
    roles = [r for spec in args.role or [] for r in spec.split(",") if r]
    identifier, secret = ledger.add_credential(
        args.username, description=args.description, roles=roles, actor=cli_actor(args)
    )
    if args.json:
        print_json({"identifier": identifier, "secret": secret, "roles": roles})
        return 0
    print(f"Identifier: {identifier}")
    print(f"Secret:     {secret}")
    print("The secret is shown once and stored only as a hash: keep it now.")
    if roles:
        print(f"Roles: {', '.join(roles)}")
    else:
        print("No role given: this credential has full access to every API action.")
    return 0


def credential_list(args: argparse.Namespace, ledger: Ledger) -> int:
    """List API credentials (never their secrets)."""
    items = ledger.list_credentials()
    rows: list[dict[str, Any]] = [
        {
            "identifier": c.identifier,
            "admin": admin,
            "description": c.description,
            "roles": list(c.roles),
            "created_at": c.created_at,
            "last_used_at": c.last_used_at,
        }
        for c, admin in items
    ]
    if args.json:
        print_json(rows)
    else:
        table(
            ["IDENTIFIER", "ADMIN", "ROLES", "CREATED", "LAST USED", "DESCRIPTION"],
            [
                [
                    r["identifier"],
                    r["admin"],
                    ",".join(r["roles"]) or "(full access)",
                    r["created_at"][:19],
                    (r["last_used_at"] or "never")[:19],
                    r["description"],
                ]
                for r in rows
            ],
        )
    return 0


def credential_revoke(args: argparse.Namespace, ledger: Ledger) -> int:
    """Revoke (delete) an API credential."""
    ledger.revoke_credential(args.identifier, actor=cli_actor(args))
    print(f"Revoked credential {args.identifier}")
    return 0


def client_add(args: argparse.Namespace, ledger: Ledger) -> int:
    """Create a client."""
    result = ledger.add_client(
        firstname=args.firstname,
        lastname=args.lastname,
        email=args.email,
        companyname=args.company,
        currency=args.currency,
        actor=cli_actor(args),
    )
    if args.json:
        print_json({"id": result.client_id})
    else:
        print(f"Created client {result.client_id}")
    return 0


def client_list(args: argparse.Namespace, ledger: Ledger) -> int:
    """List clients with their balances."""
    page = ledger.list_clients(args.offset, args.limit, args.search or "")
    rows = [
        {
            "id": c.id,
            "firstname": c.firstname,
            "lastname": c.lastname,
            "companyname": c.companyname,
            "email": c.email,
            "currency": c.currency_code,
            "status": c.status,
            "balance": format_cents(c.balance_cents),
        }
        for c in page.clients
    ]
    if args.json:
        print_json({"total": page.total, "clients": rows})
    else:
        table(
            ["ID", "NAME", "COMPANY", "EMAIL", "STATUS", "BALANCE"],
            [
                [
                    r["id"],
                    f"{r['firstname']} {r['lastname']}",
                    r["companyname"],
                    r["email"],
                    r["status"],
                    f"{r['balance']} {r['currency']}",
                ]
                for r in rows
            ],
        )
        print(f"({len(rows):,} of {plural(page.total, 'client')})")
    return 0


# --- credit -------------------------------------------------------------------------------------


def credit_change(args: argparse.Namespace, ledger: Ledger) -> int:
    """Add or remove credit with the same rules and messages as the API."""
    actor = cli_actor(args)
    if args.admin:
        actor = Actor(actor.name, ledger.admin(args.admin).id)
    result = ledger.add_credit(
        clientid=args.clientid,
        amount=args.amount,
        description=args.description,
        type=args.credit_command,
        date=args.date,
        category=getattr(args, "category", None),
        expires=getattr(args, "expires", None),
        actor=actor,
    )
    balance = format_cents(result.balance_cents)
    if args.json:
        print_json({"result": "success", "newbalance": balance})
    else:
        print(f"New balance: {balance}")
    return 0


def credits(args: argparse.Namespace, ledger: Ledger) -> int:
    """Print a client's credit history with the running balance (the order recorded)."""
    total, _, entries = ledger.get_credits(args.clientid)
    names = {a.id: a.username for a in ledger.list_admins()}
    client_id = parse_id(args.clientid) or 0
    rows = [
        {
            "id": e.id,
            "date": e.date,
            "description": e.description,
            "amount": format_cents(e.amount_cents),
            "balance": format_cents(e.balance_cents),
            "adminid": e.admin_id,
            "admin": names.get(e.admin_id, ""),
            "kind": "grant" if e.is_grant else (e.kind or "removal"),
            "category": (e.category or "paid") if e.is_grant else e.category,
            "expires": e.expires,
            "remaining": format_cents(e.remaining) if e.is_grant else "",
            "spent": [{"id": g, "amount": format_cents(abs(a))} for g, a in e.spent],
        }
        for e in ledger.with_allocations(client_id, entries)
    ]
    if args.json:
        print_json(rows)
        return 0
    table(
        ["ID", "DATE", "AMOUNT", "BALANCE", "CATEGORY", "EXPIRES", "LEFT", "ADMIN", "DESCRIPTION"],
        [
            [
                r["id"],
                r["date"],
                r["amount"],
                r["balance"],
                r["category"] or "-",
                r["expires"] or "-",
                r["remaining"] or _moves(r),
                r["admin"] or (f"#{r['adminid']}" if r["adminid"] else "-"),
                _cut(str(r["description"]).replace("\n", " "), 60),
            ]
            for r in rows
        ],
    )
    print(f"({plural(total, 'entry', 'entries')})")
    return 0


def _moves(row: dict[str, Any]) -> str:
    """What a removal took (``from #3 5.00``), an expiry ended or a restore gave back."""
    moves = ", ".join(f"#{m['id']} {m['amount']}" for m in row["spent"])
    if not moves:
        return "-"
    return ("to " if row["kind"] == "restore" else "from ") + moves


def _cut(text: str, width: int) -> str:
    """Text cut to a width, marked with "..." when it was cut."""
    return text if len(text) <= width else text[: width - 3] + "..."


def migrate(args: argparse.Namespace, ledger: Ledger) -> int:
    """Apply pending database migrations."""
    applied = ledger.store.migrate()
    print(
        f"Applied migrations: {', '.join(map(str, applied))}"
        if applied
        else "The database is up to date."
    )
    return 0
