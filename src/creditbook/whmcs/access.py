"""Access control (spec section 4): allow-list, access key, bans, trusted proxies, and caching.

Access-control data lives in the database, shared by every server process. Each request reads two
counters in one query: ``config_version`` (when another process or the CLI changed anything, the
caches of settings, allow-list, roles, credentials and admins are dropped and reloaded) and
``failure_version`` (when any process recorded an authentication failure, cached ban decisions
are dropped).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .. import errors, metrics
from ..ledger import Ledger
from ..model import Admin, Credential
from ..rules import clean_text
from .settings import SETTINGS, Network, Setting, hash_key, parse_network

__all__ = ["SETTINGS", "AccessPolicy", "Setting", "hash_key", "parse_network"]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


#: The client address of a request whose forwarded address cannot be read. No allow-list entry
#: matches it and it is refused before authentication, so it can never borrow the proxy's trust
#: nor earn the proxy a ban.
UNKNOWN_CLIENT = "unknown"
_HOST_PORT = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?|([0-9.]+):([0-9]{1,5})")


def forwarded_address(hop: str) -> str | None:
    """Read one X-Forwarded-For hop: an address, ``1.2.3.4:port`` or ``[v6]:port``; else None."""
    hop = hop.strip()
    match = _HOST_PORT.fullmatch(hop)
    if match is not None:
        if int(match.group(2) or match.group(4) or 0) > 65535:
            return None
        hop = match.group(1) or match.group(3)
    addr = _address(hop)
    return None if addr is None else str(addr)


K = TypeVar("K")
V = TypeVar("V")


def _remember(cache: dict[K, V], key: K, value: V, limit: int = 10_000) -> V:
    """Store a value in a per-process cache that is emptied when it grows past ``limit``.

    The caches are keyed by what clients send (addresses, identifiers), so they must stay
    bounded; dropping everything at once is simple and costs one reload per entry.
    """
    if len(cache) > limit:
        cache.clear()
    cache[key] = value
    return value


def _contains(networks: list[Network], address: str) -> bool:
    addr = _address(address)
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login attempt counted before its password is checked (``AccessPolicy.reserve``).

    Attributes:
        token: names the reservation, to take it back when the password was right.
        left: failed logins the tightest of its keys allows after this one.
    """

    token: str
    left: int


def lift_keys(target: str) -> dict[str, str]:
    """The failure keys ``admin unban`` clears for a username or an address (``Q.FAILURE_LIFT``)."""
    address = _address(target)
    if address is not None:
        ip = str(address)
        return {
            "key": ip,
            "api_user": "",
            "console_user": "",
            "console_address": f"console:{ip}",
            "pair": f"console-pair:%|{ip}",
        }
    user = target.lower()
    escaped = "".join("!" + c if c in "!%_" else c for c in user)
    return {
        "key": "",
        "api_user": f"api-user:{user}",
        "console_user": f"console-user:{user}",
        "console_address": "",
        "pair": f"console-pair:{escaped}|%",
    }


class AccessPolicy:
    """Everything a request needs from access-control data, cached per config version."""

    def __init__(self, ledger: Ledger, clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.clock = clock
        self._version = -1
        self._failures = -1
        self._banned_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self.settings: dict[str, str] = {}
        self._allowed: list[Network] = []
        self._proxies: list[Network] = []
        self.roles: dict[str, frozenset[str]] = {}
        self._credentials: dict[str, Credential | None] = {}
        self._admins: dict[int, Admin | None] = {}
        self._touched: dict[int, float] = {}
        self._peers: dict[str, str] = {}  # socket address -> canonical form
        self._proxy_peers: dict[str, bool] = {}  # socket address -> a trusted proxy
        self._allowed_ips: dict[str, bool] = {}  # address -> on the allow-list
        #: Failures that could not be recorded in the database (it was unavailable).
        self._unsaved: dict[str, list[float]] = {}

    def refresh(self) -> None:
        """Reload cached data if anything changed since the last request."""
        store = self.ledger.store
        version, failures = store.versions()
        if failures != self._failures or version != self._version:
            self._banned_until = {}
            self._failures = failures
        if version == self._version:
            return
        with self._lock:
            stored = store.get_settings()
            self.settings = {k: stored.get(k, s.default) for k, s in SETTINGS.items()}
            self._allowed = [parse_network(e) for e in store.list_ips()]
            self._allowed_ips = {}
            self._proxies = [
                parse_network(e) for e in self.settings["trusted_proxies"].split(",") if e
            ]
            self._proxy_peers = {}
            self.roles = {r.name: frozenset(r.actions) for r in store.list_roles()}
            self._credentials = {}
            self._admins = {}
            self._version = version

    def number(self, name: str) -> int:
        """Return a numeric setting."""
        return int(self.settings.get(name) or SETTINGS[name].default)

    def yes(self, name: str) -> bool:
        """Return a yes/no setting."""
        return (self.settings.get(name) or SETTINGS[name].default) == "yes"

    def trusted_proxy(self, peer: str) -> bool:
        """Tell whether a peer is a trusted proxy (its forwarded headers are believed)."""
        if not self._proxies:
            return False
        known = self._proxy_peers.get(peer)
        if known is None:
            known = _remember(self._proxy_peers, peer, _contains(self._proxies, peer))
        return known

    def address_of(self, scope: Mapping[str, object]) -> str:
        """The client address of an ASGI request, for every transport: the socket's peer, or
        behind trusted proxies the address they forwarded (all X-Forwarded-For lines, in
        order, as one list: a client's own line cannot hide behind the proxy's)."""
        client = scope.get("client")
        peer = str(client[0]) if isinstance(client, (tuple, list)) and client else ""
        raw = scope.get("headers")
        lines = [
            v.decode("latin-1")
            for k, v in (raw if isinstance(raw, (list, tuple)) else ())
            if k.lower() == b"x-forwarded-for"
        ]
        return self.client_ip(peer, {"x-forwarded-for": ", ".join(lines)} if lines else {})

    def client_ip(self, peer: str, headers: Mapping[str, str]) -> str:
        """Return the client address, believing X-Forwarded-For only from trusted proxies."""
        canonical = self._peers.get(peer)
        if canonical is None:
            canonical = _remember(self._peers, peer, str(_address(peer) or peer))
        peer = canonical
        forwarded = headers.get("x-forwarded-for")
        if forwarded is None or not _contains(self._proxies, peer):
            return peer
        for hop in reversed(forwarded.split(",")):
            address = forwarded_address(hop)
            if address is None:
                return UNKNOWN_CLIENT
            if not _contains(self._proxies, address):
                return address
        return peer

    def check(self, ip: str, accesskey: str | None) -> None:
        """Refuse banned addresses, wrong access keys and addresses not on the allow-list."""
        if ip == UNKNOWN_CLIENT:
            raise errors.InvalidIP(ip)
        if self.is_banned(ip):
            raise errors.IPBanned()
        if accesskey is not None:
            stored = self.settings.get("api_access_key", "")
            if stored and hmac.compare_digest(hash_key(accesskey), stored):
                return
            self.record_failure(ip)
            raise errors.InvalidAccessKey()
        allowed = self._allowed_ips.get(ip)
        if allowed is None:
            allowed = _remember(self._allowed_ips, ip, _contains(self._allowed, ip))
        if not allowed:
            raise errors.InvalidIP(ip)

    def is_banned(self, ip: str) -> bool:
        """Tell whether an address has too many recent authentication failures.

        The answer is cached until some process records a failure: with no new failure a
        count can only fall as time passes, and a ban's end is known when it starts.
        """
        return self.banned_until(ip) > self.clock()

    def banned_until(self, ip: str) -> float:
        """When the ban on an address (or any key failures are counted under) ends; 0 for none."""
        until = self._banned_until.get(ip)
        if until is None:
            window = self.number("ban_minutes") * 60
            since = self.clock() - window
            unsaved = [t for t in self._unsaved.get(ip, ()) if t >= since]
            try:
                count, last = self.ledger.store.count_auth_failures(ip, since)
            except errors.StoreError:
                count, last = 0, 0.0
            count += len(unsaved)
            last = max([last, *unsaved])
            until = last + window if count >= self.number("ban_failures") else 0.0
            _remember(self._banned_until, ip, until, limit=100_000)
        return until

    def record_failure(self, ip: str) -> None:
        """Count an authentication failure against an address.

        While the database cannot be written the failure is kept in this process's memory, so
        that an outage does not open a window for guessing: bans keep working per process.
        """
        now = self.clock()
        metrics.AUTH_FAILURES.inc()
        try:
            self.ledger.store.record_auth_failure(ip, now, now - 24 * 3600)
        except errors.StoreError:
            recent = [t for t in self._unsaved.get(ip, []) if t >= now - 24 * 3600]
            _remember(self._unsaved, ip, [*recent[-99:], now], limit=100_000)
            self._banned_until.pop(ip, None)

    def login_keys(self, transport: str, username: str, ip: str) -> list[tuple[str, int]]:
        """The keys a login's failures count under, each with its limit.

        API: the address (the API's own ban) and the username. Console: the username at this
        address (a typo storm bans its typist, not the whole office), the username from
        anywhere, and the address across usernames with a much higher limit (spraying).
        """
        # Keys are stored text: what text cannot hold (NUL, lone surrogates) is replaced.
        user = clean_text(username.lower()[:64])[0]
        if transport == "api":
            return [
                (ip, self.number("ban_failures")),
                (f"api-user:{user}", self.number("ban_user_failures")),
            ]
        return [
            (f"console-pair:{user}|{ip}", self.number("ban_failures")),
            (f"console-user:{user}", self.number("ban_user_failures")),
            (f"console:{ip}", self.number("ban_address_failures")),
        ]

    def reserve(self, limits: list[tuple[str, int]]) -> Attempt:
        """Count a login attempt before its password is checked (so that simultaneous guesses
        cannot all be checked); raise ``IPBanned`` (the first key is over its limit) or
        ``LoginBanned`` (another is) and count nothing when a key is already banned."""
        now = self.clock()
        window = self.number("ban_minutes") * 60.0
        token = secrets.token_hex(12)
        until, counts = self.ledger.store.reserve_attempt(limits, now, window, token)
        self._banned_until = {}
        if until:
            if counts[0] > limits[0][1]:
                raise errors.IPBanned(until)
            raise errors.LoginBanned(until)
        left = min(limit - count for (_, limit), count in zip(limits, counts, strict=True))
        return Attempt(token, left)

    def bans(self) -> list[tuple[str, str, float]]:
        """The login bans in force: (what to unban, what is banned, when it ends)."""
        window = self.number("ban_minutes") * 60.0
        now = self.clock()
        limits = {
            "console-pair": self.number("ban_failures"),
            "console-user": self.number("ban_user_failures"),
            "api-user": self.number("ban_user_failures"),
            "console": self.number("ban_address_failures"),
            "": self.number("ban_failures"),
        }
        out = []
        for key, count, last in self.ledger.store.auth_failure_keys(now - window):
            kind, rest = ("", key) if ":" not in key or _address(key) else key.split(":", 1)
            if count < limits.get(kind, limits[""]) or last + window <= now:
                continue
            if kind == "console-pair":
                user, _, ip = rest.rpartition("|")
                out.append((user, f"console login of {user} from {ip}", last + window))
            elif kind in ("console-user", "api-user"):
                where = "console" if kind == "console-user" else "API"
                out.append((rest, f"{where} login of {rest} from anywhere", last + window))
            else:
                where = "console logins" if kind == "console" else "API requests"
                out.append((rest, f"{where} from {rest}", last + window))
        return sorted(out, key=lambda ban: ban[1])

    def release(self, attempt: Attempt) -> None:
        """Take back a reserved attempt: its password was right."""
        self.ledger.store.release_attempt(attempt.token)
        self._banned_until = {}

    def credential(self, identifier: str) -> Credential | None:
        """Return a credential (cached until access-control data changes)."""
        if identifier not in self._credentials:
            return _remember(self._credentials, identifier, self.ledger.credential(identifier))
        return self._credentials[identifier]

    def admin(self, admin_id: int) -> Admin | None:
        """Return an admin by id (cached until access-control data changes)."""
        if admin_id not in self._admins:
            self._admins[admin_id] = self.ledger.store.get_admin(admin_id)
        return self._admins[admin_id]

    def touch(self, credential: Credential) -> None:
        """Record a credential's use, at most once a minute per process."""
        now = self.clock()
        if now - self._touched.get(credential.id, 0.0) >= 60:
            self._touched[credential.id] = now
            self.ledger.store.touch_credential(credential.id, self.ledger.now())


def canonical_network(entry: str) -> str:
    """Return an allow-list entry in canonical form: an address, or a CIDR range."""
    network = parse_network(entry)
    if network.num_addresses == 1 and "/" not in entry:
        return str(network.network_address)
    return str(network)
