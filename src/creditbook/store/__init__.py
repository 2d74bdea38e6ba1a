"""Storage: the Store protocol and its SQLite and PostgreSQL implementations."""

from __future__ import annotations

import os

from ..config import Settings, sqlite_path
from .protocol import (
    Allocation,
    Balance,
    ChainEntry,
    ChainHead,
    ClientPage,
    CreditOp,
    IdempotencyKey,
    NewClient,
    Replay,
    Seal,
    Store,
    Waitable,
)

__all__ = [
    "Balance",
    "Allocation",
    "ChainEntry",
    "ChainHead",
    "ClientPage",
    "CreditOp",
    "IdempotencyKey",
    "NewClient",
    "Replay",
    "Seal",
    "Store",
    "Waitable",
    "open_store",
    "store_from_settings",
]


def store_from_settings(settings: Settings) -> Store:
    """Open the store named by process settings (database URL, durability, pool, batching)."""
    return open_store(
        settings.database,
        synchronous=settings.sqlite_synchronous,
        pool_size=settings.pg_pool_size,
        group_commit=settings.group_commit,
        listen=settings.pg_listen,
    )


def open_store(
    url: str,
    *,
    synchronous: str = "FULL",
    pool_size: int = 4,
    group_commit: bool = True,
    listen: bool = True,
) -> Store:
    """Open a store from a URL: ``sqlite:///path``, a plain file path, or ``postgresql://...``."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size, group_commit=group_commit, listen=listen)
    path = sqlite_path(url) or ""
    if not path or path == ":memory:":
        raise ValueError("SQLite needs a file path (an in-memory database cannot be shared)")
    from .sqlite import SQLiteStore

    return SQLiteStore(os.path.expanduser(path), synchronous=synchronous, group_commit=group_commit)
