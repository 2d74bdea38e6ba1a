"""Copy a whole Creditbook from one store to another, table by table, from one snapshot.

Used by ``creditbook backup`` (PostgreSQL into a SQLite file) and ``creditbook restore`` (a
backup file into an empty store of either kind). The source is read in one consistent snapshot
(PostgreSQL: one ``REPEATABLE READ`` transaction), the target is written in one transaction, so
a copy is all or nothing. Table and column names are the constants below, never input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from .. import errors
from .base import SqlStore

#: Every table, parents before children, with its columns (the same in both dialects).
TABLES: tuple[tuple[str, str], ...] = (
    (
        "admins",
        "id, username, password_hash, firstname, lastname, email, disabled, access, created_at",
    ),
    (
        "clients",
        "id, firstname, lastname, companyname, email, email_key, currency_code, status, "
        "balance_cents, details, created_at, entries, head_hash, last_date, search_key, "
        "sort_key, open_from, low_below",
    ),
    ("roles", "id, name, actions"),
    (
        "credentials",
        "id, identifier, secret_hash, admin_id, description, created_at, last_used_at",
    ),
    ("credential_roles", "credential_id, role_id"),
    (
        "credits",
        "id, client_id, admin_id, date, description, amount_cents, balance_cents, relid, "
        "created_at, seq, actor, prev_hash, hash, activity_id, kind, category, expires, "
        "remaining",
    ),
    ("allocations", "client_id, seq, grant_seq, amount, category, date"),
    ("categories", "name, expires_days, builtin"),
    ("alerts", "client_id, currency, below_cents"),
    ("grant_notices", "client_id, seq, at"),
    ("activity", "id, at, actor, admin_id, client_id, ip, action, detail, via_entry"),
    ("settings", "name, value"),
    ("ip_allow", "entry, created_at"),
    ("auth_failures", "ip, at, token"),
    ("meta", "name, value"),
    ("idempotency", "scope, key, fingerprint, outcome, created_at"),
    ("seals", "id, at, clients, entries, digest"),
    ("seal_heads", "seal_id, client_id, seq, hash"),
    (
        "webhook_endpoints",
        "id, uid, url, events, description, enabled, created_at, secret_version, failures, "
        "failing_since, retry_at, disabled_note",
    ),
    ("events", "id, uid, type, client_id, seq, idem_key, data, at, fanned"),
    ("imported", "kind, id, source, at"),
    ("reversals", "entry_id, client_id, at, reversal_seq"),
    ("approval_rules", "currency, above_cents, removals"),
    (
        "approval_requests",
        "id, client_id, kind, amount_cents, currency, description, date, category, expires, "
        "entry_id, requested_by, requester, requested_at, expires_at, status, decided_by, "
        "decider, decided_at, note, result, payload",
    ),
    ("admin_totp", "admin_id, secret, confirmed, last_step, created_at"),
    ("recovery_codes", "admin_id, hash, used_at"),
    (
        "passkeys",
        "id, admin_id, credential_id, public_key, sign_count, name, created_at, last_used",
    ),
    ("bulk_rows", "file, row, at, content, file_name"),
    (
        "webhook_deliveries",
        "id, endpoint_id, event_id, client_id, status, attempts, next_at, created_at, last_at, "
        "last_status, last_error, done_at",
    ),
)
CLIENT_TOTALS = "SELECT id, balance_cents, entries FROM clients ORDER BY id"
#: Tables whose ids come from a sequence on PostgreSQL (reset after a restore).
IDENTITY_TABLES = (
    "admins",
    "clients",
    "roles",
    "credentials",
    "credits",
    "activity",
    "seals",
    "webhook_endpoints",
    "events",
    "webhook_deliveries",
    "approval_requests",
    "passkeys",
)

SELECTS = {t: f"SELECT {cols} FROM {t} ORDER BY {cols.split(',')[0]}" for t, cols in TABLES}  # noqa: S608
INSERTS = {
    t: f"INSERT INTO {t} ({cols}) VALUES ("  # noqa: S608
    + ", ".join(f":{c.strip()}" for c in cols.split(","))
    + ")"
    for t, cols in TABLES
}
COUNTS = {t: f"SELECT COUNT(*) FROM {t}" for t, _ in TABLES}  # noqa: S608
#: Rows a freshly migrated store holds before anything is written (defaults, counters).
SEEDED = ("ip_allow", "meta", "categories")
CLEAR_SEEDED = {t: f"DELETE FROM {t}" for t in SEEDED}  # noqa: S608
#: One statement per table a copy writes: any row there means the store is in use.
ANY_ROW = {t: f"SELECT 1 FROM {t} LIMIT 1" for t, _ in TABLES if t not in SEEDED}  # noqa: S608
_CHUNK = 5000

Progress = Callable[[str, int], None]


def is_empty(store: SqlStore) -> bool:
    """Tell whether a store holds nothing a copy would write (a target to copy into)."""
    with store._read() as cur:
        return all(store._run(cur, sql).fetchone() is None for sql in ANY_ROW.values())


def copy_store(
    source: SqlStore, target: SqlStore, progress: Progress | None = None, pace: float = 0.0
) -> int:
    """Copy every table of ``source`` into the empty ``target``; return the rows copied.

    ``pace``: after each chunk, pause for that many times the chunk's own time, so that a copy
    taken from a live service (``backup``) leaves it the CPU it needs (1.0: at most half).
    """
    if not is_empty(target):
        raise errors.Conflict(f"The target store is not empty: {target.url}")
    copied = 0
    with target._write() as out:
        for table in SEEDED:
            target._run(out, CLEAR_SEEDED[table])
        with source._snapshot() as stream:
            for table, cols in TABLES:
                names = [c.strip() for c in cols.split(",")]
                chunk: list[dict[str, object]] = []
                started = time.perf_counter()
                for row in stream(SELECTS[table]):
                    chunk.append(dict(zip(names, row, strict=True)))
                    if len(chunk) >= _CHUNK:
                        target._run_many(out, INSERTS[table], chunk)
                        copied += len(chunk)
                        chunk = []
                        if progress is not None:
                            progress(table, copied)
                        if pace:
                            time.sleep(pace * (time.perf_counter() - started))
                        started = time.perf_counter()
                if chunk:
                    target._run_many(out, INSERTS[table], chunk)
                    copied += len(chunk)
                if progress is not None:
                    progress(table, copied)
        target._after_copy(out)
    return copied


def client_totals(store: SqlStore) -> Iterator[tuple[int, int, int]]:
    """Every client's id, balance and entry count, by id (to compare a copy with its source)."""
    for row in store._stream(CLIENT_TOTALS):
        yield int(row[0]), int(row[1]), int(row[2])


def row_counts(store: SqlStore) -> dict[str, int]:
    """Return every table's row count (to compare a copy with its source)."""
    with store._read() as cur:
        return {t: int(store._run(cur, COUNTS[t]).fetchone()[0]) for t, _ in TABLES}
