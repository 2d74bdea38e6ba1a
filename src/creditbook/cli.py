"""``creditbook ...``: parse, call the ledger, print. Errors become one line on stderr."""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import errors
from .config import Settings
from .ledger import Ledger
from .model import Actor
from .money import format_cents
from .store import Store, open_store
from .version import __version__

Command = Callable[[argparse.Namespace, Ledger], int]


def _actor(args: argparse.Namespace) -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return Actor(f"cli:{user}")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(database=getattr(args, "database", None))


def _store(args: argparse.Namespace) -> Store:
    settings = _settings(args)
    return open_store(
        settings.database,
        synchronous=settings.sqlite_synchronous,
        pool_size=settings.pg_pool_size,
        group_commit=settings.group_commit,
    )


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# --- admins, credentials, clients ---------------------------------------------------------------


def admin_add(args: argparse.Namespace, ledger: Ledger) -> int:
    """Create an admin; the password comes from stdin, a prompt, or is generated."""
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
    admin_id = ledger.add_admin(
        args.username,
        password,
        firstname=args.firstname,
        lastname=args.lastname,
        email=args.email,
        actor=_actor(args),
    )
    if args.json:
        _print_json(
            {
                "id": admin_id,
                "username": args.username,
                **({"password": password} if generated else {}),
            }
        )
    else:
        print(f"Created admin {args.username} (id {admin_id})")
        if generated:
            print(f"Generated password (shown once): {password}")
    return 0


def admin_disable(args: argparse.Namespace, ledger: Ledger) -> int:
    """Disable (or with ``enable``, re-enable) an admin."""
    disable = args.admin_command == "disable"
    ledger.set_admin_disabled(args.username, disable, actor=_actor(args))
    print(f"{'Disabled' if disable else 'Enabled'} admin {args.username}")
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
        }
        for a in admins
    ]
    if args.json:
        _print_json(rows)
    else:
        _table(
            ["ID", "USERNAME", "NAME", "EMAIL", "DISABLED"],
            [
                [
                    a.id,
                    a.username,
                    f"{a.firstname} {a.lastname}".strip(),
                    a.email,
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
        args.username, description=args.description, roles=roles, actor=_actor(args)
    )
    if args.json:
        _print_json({"identifier": identifier, "secret": secret, "roles": roles})
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
        _print_json(rows)
    else:
        _table(
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
    ledger.revoke_credential(args.identifier, actor=_actor(args))
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
        actor=_actor(args),
    )
    if args.json:
        _print_json({"id": result.client_id})
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
        _print_json({"total": page.total, "clients": rows})
    else:
        _table(
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
        print(f"({len(rows)} of {page.total})")
    return 0


# --- credit -------------------------------------------------------------------------------------


def credit_change(args: argparse.Namespace, ledger: Ledger) -> int:
    """Add or remove credit with the same rules and messages as the API."""
    actor = _actor(args)
    if args.admin:
        actor = Actor(actor.name, ledger.admin(args.admin).id)
    result = ledger.add_credit(
        clientid=args.clientid,
        amount=args.amount,
        description=args.description,
        type=args.credit_command,
        date=args.date,
        actor=actor,
    )
    balance = format_cents(result.balance_cents)
    if args.json:
        _print_json({"result": "success", "newbalance": balance})
    else:
        print(f"New balance: {balance}")
    return 0


def credits(args: argparse.Namespace, ledger: Ledger) -> int:
    """Print a client's credit history with the running balance."""
    total, _, entries = ledger.get_credits(args.clientid)
    rows = [
        {
            "id": e.id,
            "date": e.date,
            "description": e.description,
            "amount": format_cents(e.amount_cents),
            "balance": format_cents(e.balance_cents),
            "adminid": e.admin_id,
        }
        for e in entries
    ]
    if args.json:
        _print_json(rows)
        return 0
    _table(
        ["ID", "DATE", "AMOUNT", "BALANCE", "ADMIN", "DESCRIPTION"],
        [
            [
                r["id"],
                r["date"],
                r["amount"],
                r["balance"],
                r["adminid"],
                str(r["description"]).replace("\n", " ")[:60],
            ]
            for r in rows
        ],
    )
    print(f"({total} entries)")
    return 0


def migrate(args: argparse.Namespace, ledger: Ledger) -> int:
    """Apply pending database migrations."""
    applied = ledger.store.migrate()
    print(
        f"Applied migrations: {', '.join(map(str, applied))}"
        if applied
        else "The database is up to date."
    )
    return 0


# --- access control, roles, log, verify ---------------------------------------------------------


def ip_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Allow, deny or list API client addresses and CIDR ranges."""
    from .whmcs.access import canonical_network

    if args.ip_command == "list":
        entries = ledger.store.list_ips()
        if args.json:
            _print_json(entries)
        else:
            print("\n".join(entries) if entries else "(empty: only the access key gets in)")
        return 0
    entry = canonical_network(args.address)
    if args.ip_command == "allow":
        new = ledger.store.allow_ip(entry, _actor(args), ledger.now())
        print(f"Allowed {entry}" if new else f"{entry} was already allowed")
    else:
        if not ledger.store.deny_ip(entry, _actor(args), ledger.now()):
            raise errors.NotFound(f"{entry} is not on the allow-list")
        print(f"Removed {entry} from the allow-list")
    return 0


def config_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Get, set, unset or list the settings shared by every server process."""
    from .whmcs.access import SETTINGS

    stored = ledger.store.get_settings()
    if args.config_command == "list":
        rows = {name: _shown(name, stored.get(name, s.default)) for name, s in SETTINGS.items()}
        if args.json:
            _print_json(rows)
        else:
            _table(
                ["NAME", "VALUE", "MEANING"],
                [[n, v or "(unset)", SETTINGS[n].help] for n, v in rows.items()],
            )
        return 0
    setting = SETTINGS.get(args.name)
    if setting is None:
        raise errors.InvalidSetting(f"Unknown setting {args.name}: see 'creditbook config list'")
    if args.config_command == "get":
        value = _shown(args.name, stored.get(args.name, setting.default))
        _print_json({args.name: value}) if args.json else print(value)
        return 0
    new = None if args.config_command == "unset" else setting.check(args.value)
    ledger.store.set_setting(args.name, new, _actor(args), ledger.now())
    print(f"{args.name} {'cleared' if new is None else 'set'}")
    return 0


def _shown(name: str, value: str) -> str:
    from .whmcs.access import SETTINGS

    return "(set, stored hashed)" if SETTINGS[name].secret and value else value


def role_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Create or list API roles."""
    from .whmcs import ACTION_NAMES
    from .whmcs.params import normalise_action

    if args.role_command == "list":
        roles = ledger.list_roles()
        if args.json:
            _print_json({r.name: list(r.actions) for r in roles})
        else:
            _table(
                ["ROLE", "ACTIONS"],
                [[r.name, ",".join(ACTION_NAMES.get(a, a) for a in r.actions)] for r in roles],
            )
        return 0
    actions = sorted({normalise_action(a) for a in args.allow.split(",") if a.strip()})
    unknown = [a for a in actions if a not in ACTION_NAMES]
    if unknown or not actions:
        raise errors.InvalidSetting(
            f"Unknown action(s): {', '.join(unknown) or '(none)'}; known: "
            + ", ".join(ACTION_NAMES.values())
        )
    ledger.put_role(args.name, actions, actor=_actor(args))
    print(f"Role {args.name}: {', '.join(ACTION_NAMES[a] for a in actions)}")
    return 0


def log_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Print the activity log, newest first."""
    lines = ledger.activity(args.client, args.limit)
    if args.json:
        _print_json(
            [
                {
                    "id": a.id,
                    "at": a.at,
                    "actor": a.actor,
                    "adminid": a.admin_id,
                    "clientid": a.client_id,
                    "ip": a.ip,
                    "action": a.action,
                    "detail": a.detail,
                }
                for a in lines
            ]
        )
    else:
        _table(
            ["AT", "ACTOR", "IP", "CLIENT", "WHAT"],
            [[a.at[:19], a.actor, a.ip or "-", a.client_id or "-", a.detail] for a in lines],
        )
    return 0


def verify_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Recompute every balance and running balance from the entries; exit 1 on drift."""
    from .audit import verify

    report = verify(ledger.store, progress=sys.stderr if args.progress else None)
    if args.json:
        _print_json(report.as_dict())
    else:
        for line in report.problems[:50]:
            print(line)
        print(
            f"Checked {report.clients} clients and {report.entries} entries "
            f"in {report.seconds:.2f} s: "
            + ("no drift." if report.ok else f"{len(report.problems)} problem(s).")
        )
    return 0 if report.ok else 1


# --- parser -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database",
        help="sqlite:///path, a path, or postgresql://... "
        "(env CREDITBOOK_DATABASE, default ./creditbook.db)",
    )
    common.add_argument("--json", action="store_true", help="print data as JSON")
    p = argparse.ArgumentParser(
        prog="creditbook",
        description="A self-hosted client-credit ledger that speaks the WHMCS API.",
    )
    p.add_argument("--version", action="version", version=f"creditbook {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", parents=[common], help="run the HTTP API")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default 8080)")
    s.add_argument("--workers", type=int, help="worker processes (default 1)")
    s.add_argument(
        "--demo",
        action="store_true",
        help="on an empty database, create a demo admin, credential and client",
    )
    sub.add_parser("migrate", parents=[common], help="apply database migrations").set_defaults(
        func=migrate
    )
    s = sub.add_parser(
        "verify", parents=[common], help="recompute balances from the entries; exit 1 on drift"
    )
    s.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    s.set_defaults(func=verify_command)

    a = sub.add_parser("admin", help="manage admins").add_subparsers(
        dest="admin_command", required=True, metavar="ACTION"
    )
    s = a.add_parser("add", parents=[common], help="create an admin")
    s.add_argument("username")
    s.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    for name in ("firstname", "lastname", "email"):
        s.add_argument(f"--{name}", default="")
    s.set_defaults(func=admin_add)
    for name, text in (("disable", "disable an admin"), ("enable", "re-enable an admin")):
        s = a.add_parser(name, parents=[common], help=text)
        s.add_argument("username")
        s.set_defaults(func=admin_disable)
    a.add_parser("list", parents=[common], help="list admins").set_defaults(func=admin_list)

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
    s.add_argument("--offset", type=int, default=0)
    s.add_argument("--limit", type=int, default=100)
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
        s.set_defaults(func=credit_change)
    s = sub.add_parser("credits", parents=[common], help="a client's credit history")
    s.add_argument("clientid")
    s.set_defaults(func=credits)

    c = sub.add_parser("ip", help="the API IP allow-list").add_subparsers(
        dest="ip_command", required=True, metavar="ACTION"
    )
    for name in ("allow", "deny"):
        s = c.add_parser(name, parents=[common], help=f"{name} an address or CIDR range")
        s.add_argument("address")
        s.set_defaults(func=ip_command)
    c.add_parser("list", parents=[common], help="list the allow-list").set_defaults(func=ip_command)

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

    s = sub.add_parser("log", parents=[common], help="the activity log, newest first")
    s.add_argument("--client", type=int, help="only this client")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(func=log_command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from .serve import serve

            settings = Settings.from_env(
                database=args.database, host=args.host, port=args.port, workers=args.workers
            )
            return serve(settings, demo=args.demo)
        store = _store(args)
        try:
            if args.command != "migrate":
                store.migrate()
            return int(args.func(args, Ledger(store, timezone=_settings(args).timezone or None)))
        finally:
            store.close()
    except errors.CreditError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except (errors.StoreError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
