"""Creditbook: a self-hosted client-credit ledger that speaks the WHMCS API.

The public Python API::

    import creditbook
    creditbook.local_api("AddCredit", {"clientid": 1, "amount": "12.34", "description": "x"})
    with creditbook.open("sqlite:///path.db") as book:
        book.local_api("GetCredits", {"clientid": 1})
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from .config import Settings
from .errors import CreditError, StoreError
from .ledger import Ledger
from .store import Store, open_store, store_from_settings
from .version import __version__
from .whmcs import AccessPolicy, Api

__all__ = [
    "Creditbook",
    "CreditError",
    "Ledger",
    "Settings",
    "Store",
    "StoreError",
    "__version__",
    "local_api",
    "open",
    "open_store",
]


class Creditbook:
    """An open database with its ledger and in-process WHMCS API."""

    def __init__(self, store: Store, *, timezone: str | None = None) -> None:
        self.store = store
        self.ledger = Ledger(store, timezone=timezone)
        self.api = Api(self.ledger, AccessPolicy(self.ledger))

    def local_api(
        self, command: str, params: dict[str, Any] | None = None, admin_username: str | None = None
    ) -> dict[str, Any]:
        """Run a WHMCS action in-process (no authentication), returning the result dict."""
        return self.api.local(command, params or {}, admin_username)

    def credit_many(
        self, credits: Iterable[Mapping[str, Any]], admin_username: str | None = None
    ) -> list[dict[str, Any]]:
        """Add or remove many credits in one durable commit (one fsync), each checked alone.

        Each item takes AddCredit's parameters; the results are AddCredit's result dicts, in
        order (``{"result": "error", "message": ...}`` for a refused item).
        """
        return self.api.credit_many(credits, admin_username)

    def close(self) -> None:
        """Close the database connections."""
        self.store.close()

    def __enter__(self) -> Creditbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(url: str | None = None, *, settings: Settings | None = None) -> Creditbook:  # noqa: A001
    """Open (and migrate) a database: ``sqlite:///path.db``, a path, or ``postgresql://...``."""
    settings = settings or Settings.from_env()
    store = store_from_settings(replace(settings, database=url or settings.database))
    store.migrate()
    return Creditbook(store, timezone=settings.timezone or None)


_default: dict[str, Creditbook] = {}
_default_lock = threading.Lock()


def local_api(
    command: str, params: dict[str, Any] | None = None, admin_username: str | None = None
) -> dict[str, Any]:
    """Run a WHMCS action on the database in ``CREDITBOOK_DATABASE`` (default ./creditbook.db)."""
    url = Settings.from_env().database
    with _default_lock:
        book = _default.get(url)
        if book is None:
            book = _default[url] = open(url)
    return book.local_api(command, params, admin_username)
