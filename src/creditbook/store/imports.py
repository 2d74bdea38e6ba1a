"""Writes and reads an import needs: rows with the source's own ids, provenance, and checks.

Imported rows are written with their ids; ``imported`` records which client and admin ids came
from which source, so a re-run knows what is already there and a collision with the store's own
rows is refused. Imported entries carry the actor ``import:<kind>``; the store's id sequences
are moved past the imported ids when an import run ends (PostgreSQL; SQLite does it by itself).
Nothing here writes an outbox row: imported history emits no webhook events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..model import Actor
from ..replay import GrantReplay
from . import grant_sql as G
from . import queries as Q
from .protocol import Allocation, ChainEntry
from .spend import REMAINING_SET
from .sql import Cursor, SqlBase

#: Entries the import itself makes (opening-balance adjustments) take ids from here up, above
#: every id WHMCS can give (int(10) unsigned), so later syncs never collide with them.
ADJUSTMENT_IDS = 2**32

FOREIGN_CLIENTS = """
SELECT c.id FROM clients c
LEFT JOIN imported i ON i.kind = 'client' AND i.id = c.id AND i.source = :source
WHERE i.id IS NULL
"""
FOREIGN_CREDITS = """
SELECT cr.id FROM credits cr
LEFT JOIN imported i ON i.kind = 'client' AND i.id = cr.client_id AND i.source = :source
WHERE cr.id < :adjustments AND (i.id IS NULL OR cr.actor NOT LIKE 'import:%')
"""
FOREIGN_ADMINS = """
SELECT a.id, a.username FROM admins a
LEFT JOIN imported i ON i.kind = 'admin' AND i.id = a.id AND i.source = :source
WHERE i.id IS NULL
"""
IMPORTED_ADMINS = "SELECT id FROM imported WHERE kind = 'admin' AND source = :source"
CLIENT_STATE = """
SELECT id, balance_cents, entries, head_hash FROM clients WHERE id BETWEEN :lo AND :hi
"""
CREDIT_IDS = "SELECT id FROM credits WHERE client_id BETWEEN :lo AND :hi AND id < :adjustments"
NEXT_ADJUSTMENT = "SELECT MAX(id) FROM credits WHERE id >= :adjustments"
CLIENT_INSERT = """
INSERT INTO clients (id, firstname, lastname, companyname, email, email_key, currency_code,
                     status, balance_cents, details, created_at, entries, head_hash, search_key,
                     sort_key)
VALUES (:id, :firstname, :lastname, :companyname, :email, :email_key, :currency_code, :status,
        0, :details, :created_at, 0, '', :search_key, :sort_key)
"""
CLIENT_MOVE = """
UPDATE clients SET balance_cents = :balance, entries = :entries, head_hash = :head,
                   last_date = (SELECT COALESCE(MAX(date), '') FROM credits WHERE client_id = :id)
WHERE id = :id
"""
CREDIT_INSERT = """
INSERT INTO credits (id, client_id, seq, admin_id, date, description, amount_cents,
                     balance_cents, relid, created_at, actor, prev_hash, hash)
VALUES (:id, :client_id, :seq, :admin_id, :date, :description, :amount, :balance, :relid, :at,
        :actor, :prev_hash, :hash)
"""
ADMIN_INSERT = """
INSERT INTO admins (id, username, password_hash, firstname, lastname, email, disabled, created_at)
VALUES (:id, :username, '!imported', :firstname, :lastname, :email, 1, :at)
"""
USERNAME_TAKEN = "SELECT id FROM admins WHERE username = :username"
PROVENANCE = "INSERT INTO imported (kind, id, source, at) VALUES (:kind, :id, :source, :at)"
EMAIL_KEYS = "SELECT email_key FROM clients"
CREDIT_OWNER = "SELECT client_id FROM credits WHERE id = :id"
OPEN_FROM_RANGE = """
UPDATE clients SET open_from = COALESCE((
    SELECT MIN(c.seq) FROM credits c
    WHERE c.client_id = clients.id AND c.expires = '' AND c.remaining > 0), 0)
WHERE id BETWEEN :lo AND :hi
"""
IMPORTED_TOTALS = """
SELECT c.id, c.currency_code, c.balance_cents, COALESCE(SUM(cr.amount_cents), 0)
FROM clients c JOIN imported i ON i.kind = 'client' AND i.id = c.id AND i.source = :source
LEFT JOIN credits cr ON cr.client_id = c.id
GROUP BY c.id, c.currency_code, c.balance_cents
ORDER BY c.id
"""


class Rollback(Exception):
    """Raised to undo a dry run's single transaction."""


class ImportStore(SqlBase):
    """What ``creditbook.importer`` needs from a store."""

    def foreign_ids(self, source: str) -> tuple[set[int], set[int], dict[int, str]]:
        """Client ids, credit ids and admins (id -> username) not imported from ``source``."""
        with self._read() as cur:
            clients = {int(r[0]) for r in self._run(cur, FOREIGN_CLIENTS, source=source)}
            credits = {
                int(r[0])
                for r in self._run(cur, FOREIGN_CREDITS, source=source, adjustments=ADJUSTMENT_IDS)
            }
            admins = {int(r[0]): r[1] for r in self._run(cur, FOREIGN_ADMINS, source=source)}
        return clients, credits, admins

    def credit_owner(self, credit_id: int) -> int | None:
        """The client an entry belongs to, or None when there is no such entry."""
        with self._read() as cur:
            row = self._run(cur, CREDIT_OWNER, id=credit_id).fetchone()
        return None if row is None else int(row[0])

    def email_keys(self) -> set[str]:
        """Every client's e-mail key (an imported duplicate gets a key of its own)."""
        with self._read() as cur:
            return {r[0] for r in self._run(cur, EMAIL_KEYS)}

    def record_import(self, cur: Cursor, actor: str, at: str, detail: str) -> None:
        """One activity line for an import run."""
        self._activity(cur, Actor(actor), at, "import", detail)

    def imported_admins(self, source: str) -> set[int]:
        """Admin ids already imported from ``source``."""
        with self._read() as cur:
            return {int(r[0]) for r in self._run(cur, IMPORTED_ADMINS, source=source)}

    @contextmanager
    def import_session(self, dry_run: bool) -> Iterator[Any]:
        """Yield ``chunk()``, a context manager for one transaction of the import.

        Normally every chunk commits on its own (an interrupted import keeps whole chunks).
        In a dry run all chunks share one transaction that is rolled back at the end.
        """
        if not dry_run:

            @contextmanager
            def chunk() -> Iterator[Cursor]:
                with self._write() as cur:
                    yield cur

            yield chunk
            with self._write() as cur:
                self._after_copy(cur)
            return
        try:
            with self._write() as outer:

                @contextmanager
                def shared() -> Iterator[Cursor]:
                    yield outer

                yield shared
                raise Rollback
        except Rollback:
            pass

    def client_state(self, cur: Cursor, lo: int, hi: int) -> dict[int, tuple[int, int, str]]:
        """Balance, entry count and chain head of the store's clients with ids in a range."""
        rows = self._run(cur, CLIENT_STATE, lo=lo, hi=hi).fetchall()
        return {int(r[0]): (int(r[1]), int(r[2]), r[3]) for r in rows}

    def credit_ids(self, cur: Cursor, lo: int, hi: int) -> set[int]:
        """Ids of the entries (not adjustments) of clients with ids in a range."""
        rows = self._run(cur, CREDIT_IDS, lo=lo, hi=hi, adjustments=ADJUSTMENT_IDS)
        return {int(r[0]) for r in rows}

    def next_adjustment_id(self) -> int:
        """The id the next opening-balance adjustment takes."""
        with self._read() as cur:
            row = self._run(cur, NEXT_ADJUSTMENT, adjustments=ADJUSTMENT_IDS).fetchone()
        return ADJUSTMENT_IDS if row[0] is None else int(row[0]) + 1

    def username_taken(self, cur: Cursor, username: str) -> bool:
        """Whether an admin already has this username."""
        return self._run(cur, USERNAME_TAKEN, username=username).fetchone() is not None

    def settle_grants(self, cur: Cursor, lo: int, hi: int) -> None:
        """Set what remains of each grant of the clients in an id range from their entries
        (imported credit is paid and never expires: an imported removal takes the oldest
        first), where each client's scan of grants starts, and the thresholds in force."""
        replay = GrantReplay([])
        updates: list[dict[str, Any]] = []
        moves = map(Allocation._make, self._run(cur, G.ALLOCATIONS_OF_CLIENTS, first=lo, last=hi))
        entries = map(ChainEntry._make, self._run(cur, Q.CHAIN_ENTRIES, first=lo, last=hi))
        pending = next(moves, None)
        client = -1
        stored: dict[int, int] = {}
        for e in entries:
            if e.client_id != client:
                updates += _changed(client, replay.left(), stored)
                replay.close(client)
                client, stored = e.client_id, {}
            spent = []
            while pending is not None and (pending.client_id, pending.seq) <= (client, e.seq):
                if (pending.client_id, pending.seq) == (client, e.seq):
                    spent.append((pending.grant_seq, pending.amount))
                pending = next(moves, None)
            if e.kind or e.amount_cents or spent:
                replay.entry(e, spent)
            if e.amount_cents > 0 and e.kind in ("", "grant"):
                stored[e.seq] = e.remaining
        updates += _changed(client, replay.left(), stored)
        self.write_rows(cur, REMAINING_SET, updates)
        self._run(cur, OPEN_FROM_RANGE, lo=lo, hi=hi)
        self._run(cur, G.THRESHOLDS_REFRESH_RANGE, lo=lo, hi=hi)

    def write_rows(self, cur: Cursor, sql: str, rows: list[dict[str, Any]]) -> None:
        """Insert or update rows with one of this module's constant statements."""
        if rows:
            self._run_many(cur, sql, rows)

    def imported_totals(self, source: str) -> Iterator[tuple[int, str, int, int]]:
        """Per imported client: id, currency, balance and the sum of its entries."""
        for r in self._stream(IMPORTED_TOTALS, source=source):
            yield int(r[0]), r[1], int(r[2]), int(r[3])

    def imported_totals_in(self, cur: Cursor, source: str) -> list[tuple[int, str, int, int]]:
        """``imported_totals`` inside a transaction (a dry run's own, before it rolls back)."""
        rows = self._run(cur, IMPORTED_TOTALS, source=source).fetchall()
        return [(int(r[0]), r[1], int(r[2]), int(r[3])) for r in rows]


def _changed(client_id: int, left: dict[int, int], stored: dict[int, int]) -> list[dict[str, Any]]:
    """Updates for the grants whose replayed remaining amount is not the stored one."""
    return [
        {"client_id": client_id, "seq": seq, "remaining": cents}
        for seq, cents in left.items()
        if stored.get(seq) != cents
    ]
