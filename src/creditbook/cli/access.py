"""Commands for access control, roles and the activity log."""

from __future__ import annotations

import argparse
import sys

from .. import errors
from ..ledger import Ledger
from .common import cli_actor, print_json, table

# --- access control, roles, log ---------------------------------------------------------


def ip_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Allow, deny or list API client addresses and CIDR ranges."""
    from ..whmcs.access import canonical_network

    if args.ip_command == "list":
        entries = ledger.store.list_ips()
        if args.json:
            print_json(entries)
        else:
            print("\n".join(entries) if entries else "(empty: only the access key gets in)")
        return 0
    entry = canonical_network(args.address)
    if args.ip_command == "allow":
        new = ledger.store.allow_ip(entry, cli_actor(args), ledger.now())
        print(f"Allowed {entry}" if new else f"{entry} was already allowed")
    else:
        if args.ip_command == "deny":
            print("note: 'ip deny' is now 'ip remove' (it removes an entry)", file=sys.stderr)
        if not ledger.store.deny_ip(entry, cli_actor(args), ledger.now()):
            raise errors.NotFound(f"{entry} is not on the allow-list")
        print(f"Removed {entry} from the allow-list")
    return 0


def currency_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """List, add or remove the currency codes clients may hold (the setting ``currencies``)."""
    from .. import currencies

    value = ledger.store.get_settings().get("currencies", currencies.ISO)
    codes = currencies.parse_list(value)
    if args.currency_command == "list":
        allowed = sorted(currencies.allowed(value))
        if args.json:
            print_json({"setting": ",".join(codes), "allowed": allowed})
        else:
            print(f"Allowed: {currencies.describe(value)} ({len(allowed)} codes)")
        return 0
    code = args.code.strip().upper()
    currencies.parse_list(code)  # three letters, or ISO4217
    if args.currency_command == "add":
        codes = [*codes, code] if code not in codes else codes
    elif code not in codes:
        raise errors.NotFound(f"{code} is not in the list: {currencies.describe(value)}")
    else:
        codes = [c for c in codes if c != code]
        if not codes:
            raise errors.InvalidSetting("The list cannot be empty: add another code first")
    ledger.store.set_setting("currencies", ",".join(codes), cli_actor(args), ledger.now())
    print(f"Allowed: {currencies.describe(','.join(codes))}")
    return 0


def config_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Get, set, unset or list the settings shared by every server process."""
    from ..whmcs.access import SETTINGS

    stored = ledger.store.get_settings()
    if args.config_command == "list":
        rows = {name: _shown(name, stored.get(name, s.default)) for name, s in SETTINGS.items()}
        if args.json:
            print_json(rows)
        else:
            table(
                ["NAME", "VALUE", "MEANING"],
                [[n, v or "(unset)", SETTINGS[n].help] for n, v in rows.items()],
            )
        return 0
    setting = SETTINGS.get(args.name)
    if setting is None:
        raise errors.InvalidSetting(f"Unknown setting {args.name}: see 'creditbook config list'")
    if args.config_command == "get":
        value = _shown(args.name, stored.get(args.name, setting.default))
        print_json({args.name: value}) if args.json else print(value)
        return 0
    new = None if args.config_command == "unset" else setting.check(args.value)
    ledger.store.set_setting(args.name, new, cli_actor(args), ledger.now())
    print(f"{args.name} {'cleared' if new is None else 'set'}")
    return 0


def _shown(name: str, value: str) -> str:
    from ..whmcs.access import SETTINGS

    return "(set, stored hashed)" if SETTINGS[name].secret and value else value


def role_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Create or list API roles."""
    from ..whmcs import ACTION_NAMES
    from ..whmcs.params import normalise_action

    if args.role_command == "list":
        roles = ledger.list_roles()
        if args.json:
            print_json({r.name: list(r.actions) for r in roles})
        else:
            table(
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
    ledger.put_role(args.name, actions, actor=cli_actor(args))
    print(f"Role {args.name}: {', '.join(ACTION_NAMES[a] for a in actions)}")
    return 0


def log_command(args: argparse.Namespace, ledger: Ledger) -> int:
    """Print the activity log, newest first."""
    lines = ledger.activity(args.client, args.limit)
    if args.json:
        print_json(
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
        table(
            ["AT", "ACTOR", "IP", "CLIENT", "WHAT"],
            [[a.at[:19], a.actor, a.ip or "-", a.client_id or "-", a.detail] for a in lines],
        )
    return 0
