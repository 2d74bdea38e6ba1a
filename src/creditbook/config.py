"""Settings from flags, environment and defaults, in one place.

Precedence: command-line flag, then ``CREDITBOOK_*`` environment variable, then default.
Nothing else in the package reads ``os.environ``. Access-control settings shared by all server
processes (allow-list, bans, access key, ...) live in the database instead: ``creditbook config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATABASE = "./creditbook.db"
#: The words a yes-or-no environment variable may hold (any other is an error, never "off").
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A process setting (flag or environment variable) has a value that cannot work."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Process settings.

    Attributes:
        database: ``sqlite:///path``, a file path, or ``postgresql://...``.
        host, port, workers: where and how ``creditbook serve`` listens.
        sqlite_synchronous: ``FULL`` (durable on power loss, default) or ``NORMAL``.
        group_commit: commit concurrent SQLite writes together (one flush per batch).
        timezone: IANA zone for default credit dates; the server's local zone when empty.
        pg_pool_size: PostgreSQL connections per process.
        pg_listen: keep PostgreSQL's invalidation counters cached through LISTEN/NOTIFY instead
            of reading them on every request.
        log_level: ``debug``, ``info``, ``warning`` or ``error``.
        access_log: log one line per request (never with query strings or secrets).
        request_timeout: seconds a client has to send a whole request (headers and body);
            a request not received in time is dropped unanswered and never acted on.
        max_connections: open connections per worker process; more are refused at once.
        max_connections_per_address: open connections per worker from one client address
            (trusted proxies aside; behind one, requests in progress per forwarded address).
        log_format: ``text`` (default) or ``json`` (one JSON object per line).
        secret_key_file: the key webhook signing secrets are derived from (created by
            ``webhook add`` when missing); next to a SQLite database by default, and required
            on PostgreSQL (every host needs the same file).
        webhooks: ``serve`` delivers webhooks in the background (one process at a time).
        webhook_timeout: seconds per delivery attempt.
        webhook_retry_base: seconds before the first retry (doubling, with jitter).
        webhook_retry_cap: the longest wait between retries, in seconds.
        webhook_retry_window: seconds a delivery is retried before it is marked failed, and
            an endpoint may fail continuously before it is disabled.
        webhook_lease: seconds a delivering process holds the delivery lease between renewals;
            another process takes over this long after the holder dies.
        expiry: ``serve`` expires grants past their expiry day in the background (one process
            at a time, under a lease as webhook delivery is).
        expiry_interval: seconds between expiry runs.
        expiry_notice_days: days before a grant expires that ``credit.expiring`` announces it
            (0: never).
        ssl_certfile, ssl_keyfile: serve HTTPS with this certificate chain and key (PEM), for
            an install without a proxy in front.
        grace_seconds: on SIGTERM, how long requests in flight may take to finish.
    """

    database: str = DEFAULT_DATABASE
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    sqlite_synchronous: str = "FULL"
    group_commit: bool = True
    timezone: str = ""
    pg_pool_size: int = 4
    pg_listen: bool = True
    log_level: str = "info"
    access_log: bool = True
    request_timeout: int = 15
    max_connections: int = 1000
    max_connections_per_address: int = 100
    log_format: str = "text"
    secret_key_file: str = ""
    webhooks: bool = True
    webhook_timeout: int = 10
    webhook_retry_base: int = 5
    webhook_retry_cap: int = 3600
    webhook_retry_window: int = 86400
    webhook_lease: int = 30
    expiry: bool = True
    expiry_interval: int = 60
    expiry_notice_days: int = 7
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    grace_seconds: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """Build settings from the environment, then apply flags that are not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"CREDITBOOK_{f.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            if f.type == "int":
                if not raw.strip().isdigit() or len(raw.strip()) > 9:
                    raise SettingsError(f"{name} must be a whole number, not {raw!r}")
                values[f.name] = int(raw)
            elif f.type == "bool":
                word = raw.strip().lower()
                if word not in TRUE + FALSE:
                    raise SettingsError(
                        f"{name} must be one of {', '.join(TRUE)} or {', '.join(FALSE)}, "
                        f"not {raw!r}"
                    )
                values[f.name] = word in TRUE
            else:
                values[f.name] = raw
        settings = cls(**values)
        settings = replace(settings, **{k: v for k, v in flags.items() if v is not None})
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ``SettingsError`` (one clear line) for a value that cannot work."""
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"The port must be 1 to 65535, not {self.port}")
        for name in (
            "workers",
            "pg_pool_size",
            "request_timeout",
            "max_connections",
            "max_connections_per_address",
            "webhook_timeout",
            "webhook_retry_base",
            "webhook_retry_cap",
            "webhook_retry_window",
            "webhook_lease",
            "expiry_interval",
        ):
            if not 1 <= getattr(self, name) <= 1_000_000:
                raise SettingsError(f"{name} must be 1 to 1000000, not {getattr(self, name)}")
        if not 0 <= self.expiry_notice_days <= 3660:
            raise SettingsError(
                f"expiry_notice_days must be 0 to 3660, not {self.expiry_notice_days}"
            )
        if self.sqlite_synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise SettingsError(
                f"sqlite_synchronous must be FULL, NORMAL or EXTRA, not {self.sqlite_synchronous!r}"
            )
        if self.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise SettingsError(
                f"log_level must be debug, info, warning or error, not {self.log_level!r}"
            )
        if self.log_format.lower() not in ("text", "json"):
            raise SettingsError(f"log_format must be text or json, not {self.log_format!r}")
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ValueError, OSError, ZoneInfoNotFoundError):
                raise SettingsError(
                    f"Unknown timezone {self.timezone!r}: use an IANA name such as Europe/Oslo"
                ) from None

    def key_file(self) -> str:
        """Where the secret key is: the setting, else next to a SQLite database.

        Raises ``SettingsError`` on PostgreSQL without the setting: every host must use the
        same key, so it cannot be guessed from a local path.
        """
        if self.secret_key_file:
            return os.path.expanduser(self.secret_key_file)
        path = sqlite_path(self.database)
        if path is None:
            raise SettingsError(
                "Set CREDITBOOK_SECRET_KEY_FILE to a key file that every host can read "
                "(webhook add creates it when missing)"
            )
        return os.path.abspath(os.path.expanduser(path)) + "-secret.key"

    def to_env(self) -> dict[str, str]:
        """Return the environment that rebuilds these settings in a worker process."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f"CREDITBOOK_{f.name.upper()}"] = (
                ("1" if value else "0") if isinstance(value, bool) else str(value)
            )
        return out


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite database URL (``sqlite:///path`` or a path); None for PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return path.removeprefix("sqlite://")
