"""Streaming reads for ``creditbook export``: every row of a table, in id order, filtered.

Constant statements only: a filter not given is passed as 0 or "" and the statement skips it.
A client filter has statements of its own, so it uses the per-client indexes.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import queries as Q
from .sql import Row, SqlBase

CLIENT_COLUMNS = (
    "id, firstname, lastname, companyname, email, status, currency_code, "
    "CAST(balance_cents AS TEXT), created_at, details"
)


def _amount(column: str) -> str:
    """SQL (both dialects) giving integer cents as the wire text, e.g. -730 -> '-7.30'."""
    return (
        f"CASE WHEN {column} < 0 THEN '-' ELSE '' END || CAST(abs({column}) / 100 AS TEXT)"
        f" || '.' || substr(CAST(100 + abs({column}) % 100 AS TEXT), 2)"
    )


# Amounts are formatted by the database: on 10,000,000 rows that is a fifth of the export's time.
CREDIT_COLUMNS = (
    f"id, client_id, date, description, {_amount('amount_cents')}, "
    f"{_amount('balance_cents')}, admin_id, relid, created_at, actor, hash"
)
ACTIVITY_COLUMNS = "id, at, actor, admin_id, client_id, ip, action, detail"

QUERIES = {
    ("clients", False): f"""
SELECT {CLIENT_COLUMNS} FROM clients
WHERE (:start = '' OR created_at >= :start) AND (:end = '' OR created_at < :end)
ORDER BY id""",  # noqa: S608 constant text
    ("clients", True): f"SELECT {CLIENT_COLUMNS} FROM clients WHERE id = :client_id",  # noqa: S608
    ("credits", False): f"""
SELECT {CREDIT_COLUMNS} FROM credits
WHERE (:start = '' OR date >= :start) AND (:end = '' OR date < :end)
ORDER BY id""",  # noqa: S608 constant text
    ("credits", True): f"""
SELECT {CREDIT_COLUMNS} FROM credits
WHERE client_id = :client_id AND (:start = '' OR date >= :start) AND (:end = '' OR date < :end)
ORDER BY seq""",  # noqa: S608 constant text
    ("activity", False): f"""
SELECT {ACTIVITY_COLUMNS} FROM activity
WHERE (:start = '' OR at >= :start) AND (:end = '' OR at < :end)
ORDER BY id""",  # noqa: S608 constant text
    # A client's lines: those the partial index covers, and credits' lines through their entries.
    ("activity", True): f"""
SELECT {ACTIVITY_COLUMNS} FROM activity
WHERE client_id = :client_id AND via_entry = 0 AND (:start = '' OR at >= :start)
  AND (:end = '' OR at < :end)
UNION ALL
{Q.ENTRY_LINES} AND (:start = '' OR a.at >= :start)
  AND (:end = '' OR a.at < :end)
ORDER BY id""",  # noqa: S608 constant text
}
# An id range of an append-only table, for an export split across processes.
RANGES = {
    "credits": f"""
SELECT {CREDIT_COLUMNS} FROM credits
WHERE id BETWEEN :lo AND :hi AND (:start = '' OR date >= :start) AND (:end = '' OR date < :end)
ORDER BY id""",  # noqa: S608 constant text
    "activity": f"""
SELECT {ACTIVITY_COLUMNS} FROM activity
WHERE id BETWEEN :lo AND :hi AND (:start = '' OR at >= :start) AND (:end = '' OR at < :end)
ORDER BY id""",  # noqa: S608 constant text
}
ID_RANGE = {
    "credits": "SELECT MIN(id), MAX(id) FROM credits",
    "activity": "SELECT MIN(id), MAX(id) FROM activity",
}


class ExportReads(SqlBase):
    """Streams of whole tables for exports."""

    def export_rows(self, table: str, client_id: int, start: str, end: str) -> Iterator[list[Row]]:
        """Batches of rows of ``clients``, ``credits`` or ``activity`` by id (a client's credits
        by their sequence), optionally one client's and within [start, end) of their date or
        time. Credit amounts come formatted; a client's balance comes as cents in text."""
        sql = QUERIES[(table, bool(client_id))]
        return self._batches(sql, client_id=client_id, start=start, end=end)

    def export_range(
        self, table: str, lo: int, hi: int, start: str, end: str
    ) -> Iterator[list[Row]]:
        """``export_rows`` of an append-only table (credits, activity) for ids in [lo, hi]."""
        return self._batches(RANGES[table], lo=lo, hi=hi, start=start, end=end)

    def id_range(self, table: str) -> tuple[int, int]:
        """The lowest and highest id of an append-only table ((0, 0) when empty)."""
        with self._read() as cur:
            row = self._run(cur, ID_RANGE[table]).fetchone()
        return (int(row[0]), int(row[1])) if row[0] is not None else (0, 0)
