"""Constant statements for the web console's reads and writes (``console.py``)."""

from __future__ import annotations

import re

from .queries import CLIENT_COLUMNS, CREDIT_COLUMNS, ENTRY_LINES

SESSION_INSERT = """
INSERT INTO console_sessions (id_hash, admin_id, created, seen, ip)
VALUES (:id_hash, :admin_id, :now, :now, :ip)
"""
SESSION_GET = "SELECT admin_id, created, seen, flash FROM console_sessions WHERE id_hash = :id_hash"
SESSION_TOUCH = "UPDATE console_sessions SET seen = :now, flash = '' WHERE id_hash = :id_hash"
SESSION_FLASH = "UPDATE console_sessions SET flash = :flash WHERE id_hash = :id_hash"
SESSION_DELETE = "DELETE FROM console_sessions WHERE id_hash = :id_hash"
SESSION_DELETE_ADMIN = "DELETE FROM console_sessions WHERE admin_id = :admin_id"
SESSION_FORGET = "DELETE FROM console_sessions WHERE seen < :idle_before OR created < :born_before"

REVERSAL_CLAIM = """
INSERT INTO reversals (entry_id, client_id, at) VALUES (:entry_id, :client_id, :at)
ON CONFLICT (entry_id) DO NOTHING
"""
REVERSAL_FIND = "SELECT 1 FROM reversals WHERE entry_id = :entry_id"

#: An entry with who made it and whether it was reversed.
_ENTRY = f"""
SELECT {", ".join("c." + c.strip() for c in CREDIT_COLUMNS.split(","))}, c.seq, c.actor,
       CASE WHEN r.entry_id IS NULL THEN 0 ELSE 1 END
FROM credits c LEFT JOIN reversals r ON r.entry_id = c.id
"""  # noqa: S608 constant text
ENTRY_GET = _ENTRY + "WHERE c.id = :entry_id"
#: A client's history, newest first, keyed on ``seq`` (``before``).
HISTORY = (
    _ENTRY + "WHERE c.client_id = :client_id AND c.seq < :before ORDER BY c.seq DESC LIMIT :limit"
)
#: A date-filtered history, newest date first, keyed on (date, id), read one of two ways (the
#: store picks by the client's share of all entries): the client's own entries, sorted (cheap
#: for any client of ordinary size), or a walk down the date index from the range's end,
#: skipping other clients' entries until a page is full (cheap for a client that holds a good
#: part of the ledger). `+c.client_id` keeps SQLite from the client index in the second.
_HISTORY_DATES = """WHERE {client} = :client_id AND c.date >= :date_from AND c.date <= :date_to
  AND (c.date, c.id) < (:k_date, :k_id)
ORDER BY c.date DESC, c.id DESC LIMIT :limit"""
HISTORY_DATES = _ENTRY + _HISTORY_DATES.format(client="c.client_id")
HISTORY_DATES_WALK = _ENTRY + _HISTORY_DATES.format(client="+c.client_id")
#: Points of a balance chart: the entries at up to ``CHART_POINTS`` sequence numbers, in one
#: statement (unused slots repeat a number).
CHART_POINTS = 60
#: Placeholder names are letters only (the PostgreSQL store's placeholder pattern).
SLOT_NAMES = [f"s{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(CHART_POINTS)]
_SLOTS = ", ".join(f":{name}" for name in SLOT_NAMES)
ENTRIES_AT_SEQS = f"""
SELECT seq, date, balance_cents FROM credits WHERE client_id = :client_id AND seq IN ({_SLOTS})
ORDER BY seq"""  # noqa: S608 constant text: numbered placeholders

TOTALS = """
SELECT currency_code, SUM(balance_cents), SUM(CASE WHEN balance_cents > 0 THEN 1 ELSE 0 END),
       COUNT(*)
FROM clients GROUP BY currency_code ORDER BY currency_code
"""
RECENT = """
SELECT c.id, c.client_id, c.date, c.description, c.amount_cents, c.balance_cents, c.created_at,
       c.actor, k.firstname, k.lastname, k.companyname, k.currency_code
FROM credits c JOIN clients k ON k.id = c.client_id
ORDER BY c.id DESC LIMIT :limit
"""
LAST_ID = "SELECT COALESCE(MAX(id), 0) FROM credits"
#: A client's entries and (about) how many the ledger holds: the last id.
CLIENT_SHARE = f"SELECT entries, ({LAST_ID}) FROM clients WHERE id = :client_id"  # noqa: S608
CREATED_AT_ID = "SELECT created_at FROM credits WHERE id >= :id ORDER BY id LIMIT 1"
#: Net change per day and currency of entries dated after a day, among entries from an id on.
DAILY = """
SELECT c.date, k.currency_code, SUM(c.amount_cents)
FROM credits c JOIN clients k ON k.id = c.client_id
WHERE c.id >= :first_id AND c.date > :since
GROUP BY c.date, k.currency_code
"""


def _client_filter(like: str) -> str:
    """Status and search; ``like`` is the dialect's case-insensitive LIKE (SQLite's LIKE is)."""
    # One match over the fields joined: a single LIKE per row, and "ann lee" finds Ann Lee.
    return f"""
WHERE (:status = '' OR status = :status)
  AND (:pattern = ''
       OR (firstname || ' ' || lastname || ' ' || companyname || ' ' || email_key) {like} :pattern)
"""


#: Sort orders: the key's columns (compared with the last row's) and the ``ORDER BY``.
SORTS = {
    "name": ("(lastname, firstname, id) > (:k_last, :k_first, :k_id)", "lastname, firstname, id"),
    "-name": (
        "(lastname, firstname, id) < (:k_last, :k_first, :k_id)",
        "lastname DESC, firstname DESC, id DESC",
    ),
    "balance": ("(balance_cents, id) > (:k_balance, :k_id)", "balance_cents, id"),
    "-balance": ("(balance_cents, id) < (:k_balance, :k_id)", "balance_cents DESC, id DESC"),
    "id": ("id > :k_id", "id"),
    "-id": ("id < :k_id", "id DESC"),
}
#: A search reads the table in storage order and sorts what matched: following an index in
#: sort order would fetch every row at random for a term that matches few. Wrapping the
#: columns in a no-op expression keeps the planner off those indexes (both dialects).
_SCAN = (
    ("lastname", "(lastname || '')"),
    ("firstname", "(firstname || '')"),
    ("balance_cents", "(balance_cents + 0)"),
    ("id", "(id + 0)"),
)


def _unindexed(sql: str) -> str:
    for column, expression in _SCAN:
        sql = re.sub(rf"(?<![:\w]){column}\b", expression, sql)
    return sql


class ClientQueries:
    """The client list's statements in one dialect: the count, and per sort order the first
    page and the page after a key (keyset paging: an index seek, never an OFFSET scan); a
    search has scanning variants of both."""

    def __init__(self, like: str) -> None:
        where = _client_filter(like)
        select = f"SELECT {CLIENT_COLUMNS} FROM clients {where}"  # noqa: S608 constant text
        self.count = "SELECT COUNT(*) FROM clients " + where  # noqa: S608 constant text
        self.first = {k: f"{select} ORDER BY {o} LIMIT :limit" for k, (_, o) in SORTS.items()}
        self.after = {
            k: f"{select} AND {key} ORDER BY {o} LIMIT :limit" for k, (key, o) in SORTS.items()
        }
        self.search_first = {
            k: f"{select} ORDER BY {_unindexed(o)} LIMIT :limit" for k, (_, o) in SORTS.items()
        }
        self.search_after = {
            k: f"{select} AND {_unindexed(key)} ORDER BY {_unindexed(o)} LIMIT :limit"
            for k, (key, o) in SORTS.items()
        }


CLIENTS = {"sqlite": ClientQueries("LIKE"), "postgres": ClientQueries("ILIKE")}

_ACTIVITY = "SELECT id, at, actor, admin_id, client_id, ip, action, detail FROM activity "
_ACTIVITY_FILTER = """AND id < :before AND (:admin_id = 0 OR admin_id = :admin_id)
  AND at >= :at_from AND at < :at_to
ORDER BY id DESC LIMIT :limit"""
ACTIVITY_PAGE = _ACTIVITY + "WHERE 1 = 1 " + _ACTIVITY_FILTER
# A client's lines: those the partial index covers, and credits' lines through their entries.
ACTIVITY_PAGE_CLIENT = f"""
SELECT * FROM (
  {_ACTIVITY} WHERE client_id = :client_id AND via_entry = 0 {_ACTIVITY_FILTER}) AS lines
UNION ALL
SELECT * FROM (
  {ENTRY_LINES} AND c.activity_id < :before
    AND (:admin_id = 0 OR a.admin_id = :admin_id) AND a.at >= :at_from AND a.at < :at_to
  ORDER BY c.seq DESC LIMIT :limit) AS entries
ORDER BY id DESC LIMIT :limit"""  # noqa: S608 constant text
