"""Shared settings (stored in the database, the same for every process): their defaults, how a
new value is checked, and the address helpers they use."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from .. import errors

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Setting:
    """A setting stored in the database: its default and how to check a new value."""

    default: str
    check: Callable[[str], str]
    secret: bool = False
    help: str = ""


def _count(low: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.isascii() or not value.isdigit() or int(value) < low or len(value) > 9:
            raise errors.InvalidSetting(f"Expected a whole number of at least {low}")
        return str(int(value))

    return check


def _networks(value: str) -> str:
    entries = [e.strip() for e in value.split(",") if e.strip()]
    for entry in entries:
        network = parse_network(entry)
        if network.prefixlen < (8 if network.version == 4 else 16):
            raise errors.InvalidSetting(
                f"{entry} is too broad for trusted proxies: any client in it could forge its "
                "address with X-Forwarded-For (name the proxies, at most a /8 or an IPv6 /16)"
            )
    return ",".join(entries)


def _currencies(value: str) -> str:
    from .. import currencies

    try:
        return ",".join(currencies.parse_list(value))
    except ValueError as exc:
        raise errors.InvalidSetting(str(exc)) from None


def _yes_no(value: str) -> str:
    word = value.strip().lower()
    if word not in ("yes", "no"):
        raise errors.InvalidSetting("Expected yes or no")
    return word


def _access_key(value: str) -> str:
    if len(value) < 8:
        raise errors.InvalidSetting("The access key must be at least 8 characters")
    return hash_key(value)


SETTINGS: dict[str, Setting] = {
    "api_access_key": Setting(
        "", _access_key, secret=True, help="key that bypasses the IP allow-list (stored hashed)"
    ),
    "ban_failures": Setting(
        "3",
        _count(1),
        help="failed logins that ban an API client's address, or a console username at one address",
    ),
    "ban_user_failures": Setting(
        "10", _count(1), help="failed logins that ban a username, from any address"
    ),
    "ban_address_failures": Setting(
        "30",
        _count(1),
        help="failed console logins that ban an address, whatever the usernames (spraying)",
    ),
    "ban_minutes": Setting("15", _count(1), help="failure window and ban length, in minutes"),
    "trusted_proxies": Setting(
        "", _networks, help="proxies whose X-Forwarded-For is believed (comma list)"
    ),
    "idempotency_hours": Setting("24", _count(1), help="how long idempotency keys are kept"),
    "console_idle_minutes": Setting(
        "30", _count(1), help="web console: minutes without a request that end a session"
    ),
    "console_session_hours": Setting(
        "12", _count(1), help="web console: hours after logging in that end a session"
    ),
    "currencies": Setting(
        "ISO4217",
        _currencies,
        help="currency codes clients may hold (ISO4217: every ISO 4217 code; creditbook "
        "currency add|remove)",
    ),
    "csv_bom": Setting(
        "no",
        _yes_no,
        help="console CSV downloads start with a UTF-8 byte order mark (yes/no, for Excel)",
    ),
    "bulk_repeat_days": Setting(
        "30",
        _count(1),
        help="bulk credit: days a row applied before is recognised when uploaded again",
    ),
    "approval_days": Setting(
        "7", _count(1), help="four-eyes approval: days a request waits before it expires"
    ),
    "approval_owners_only": Setting(
        "no", _yes_no, help="four-eyes approval: only owners approve (yes/no; else managers too)"
    ),
    "console_require_2fa": Setting(
        "no", _yes_no, help="console: every admin needs a second factor (yes/no)"
    ),
    "console_passkey_login": Setting(
        "no", _yes_no, help="console: admins with a passkey may log in with it alone (yes/no)"
    ),
}


def hash_key(value: str) -> str:
    """Return the stored form of an access key."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def parse_network(entry: str) -> Network:
    """Parse an address or CIDR range for the allow-list."""
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise errors.InvalidSetting(f"Not an IP address or CIDR range: {entry}") from None
