"""Constant statements for the web console's reads and writes (``console.py``)."""

from __future__ import annotations

import re

from .queries import CLIENT_COLUMNS, CREDIT_COLUMNS, ENTRY_LINES

SESSION_INSERT = """
INSERT INTO console_sessions (id_hash, admin_id, created, seen, ip, stage)
VALUES (:id_hash, :admin_id, :now, :now, :ip, :stage)
"""
SESSION_GET = """
SELECT admin_id, created, seen, flash, stage FROM console_sessions WHERE id_hash = :id_hash
"""
SESSION_STAGE = "UPDATE console_sessions SET stage = :stage WHERE id_hash = :id_hash"
SESSION_CHALLENGE_SET = """
UPDATE console_sessions SET challenge = :challenge WHERE id_hash = :id_hash
"""
#: A challenge is used once: read and cleared together (the clearing decides).
SESSION_CHALLENGE_TAKE = """
UPDATE console_sessions SET challenge = '' WHERE id_hash = :id_hash AND challenge = :challenge
"""
SESSION_CHALLENGE_GET = "SELECT challenge FROM console_sessions WHERE id_hash = :id_hash"
SESSION_TOUCH = "UPDATE console_sessions SET seen = :now, flash = '' WHERE id_hash = :id_hash"
SESSION_FLASH = "UPDATE console_sessions SET flash = :flash WHERE id_hash = :id_hash"
SESSION_DELETE = "DELETE FROM console_sessions WHERE id_hash = :id_hash"
SESSION_DELETE_ADMIN = "DELETE FROM console_sessions WHERE admin_id = :admin_id"
SESSION_FORGET = "DELETE FROM console_sessions WHERE seen < :idle_before OR created < :born_before"

REVERSAL_CLAIM = """
INSERT INTO reversals (entry_id, client_id, at, reversal_seq)
VALUES (:entry_id, :client_id, :at, :reversal_seq)
ON CONFLICT (entry_id) DO NOTHING
"""
REVERSAL_FIND = "SELECT 1 FROM reversals WHERE entry_id = :entry_id"

#: An entry with who made it, whether it was reversed (and by which entry), and the entry it
#: reverses when it is a reversal (0: none, or a reversal older than the links).
_ENTRY = f"""
SELECT {", ".join("c." + c.strip() for c in CREDIT_COLUMNS.split(","))}, c.seq, c.actor,
       CASE WHEN r.entry_id IS NULL THEN 0 ELSE 1 END, COALESCE(rc.id, 0), COALESCE(o.entry_id, 0)
FROM credits c
LEFT JOIN reversals r ON r.entry_id = c.id
LEFT JOIN credits rc ON rc.client_id = r.client_id AND rc.seq = r.reversal_seq
LEFT JOIN reversals o ON o.client_id = c.client_id AND o.reversal_seq = c.seq
"""  # noqa: S608 constant text
ENTRY_GET = _ENTRY + "WHERE c.id = :entry_id"
#: The sum of a client's entries on one day up to an id (the date index: covering).
SAME_DAY_BEFORE = """
SELECT COALESCE(SUM(amount_cents), 0) FROM credits
WHERE date = :date AND id < :entry_id AND +client_id = :client_id
"""
#: A client's net change per day among its entries numbered after ``after``, and the highest
#: number read (the chart's daily series, brought up to date from the entries since).
DAY_SUMS = """
SELECT date, SUM(amount_cents), MAX(seq) FROM credits
WHERE client_id = :client_id AND seq > :after GROUP BY date
"""
#: A history, newest date first, keyed on (date, id) (the caller narrows the date range to the
#: key's date: the planner bounds the index range by the dates, not by the key), read one of
#: two ways (the
#: store picks by the client's share of all entries): the client's own entries, sorted (cheap
#: for any client of ordinary size), or a walk down the date index from the range's end,
#: skipping other clients' entries until a page is full (cheap for a client that holds a good
#: part of the ledger). `+c.client_id` keeps SQLite from the client index in the second.
_HISTORY_DATES = """WHERE {client} = :client_id AND c.date >= :date_from AND c.date <= :date_to
  AND (c.date, c.id) < (:k_date, :k_id)
ORDER BY c.date DESC, c.id DESC LIMIT :limit"""
HISTORY_DATES = _ENTRY + _HISTORY_DATES.format(client="c.client_id")
HISTORY_DATES_WALK = _ENTRY + _HISTORY_DATES.format(client="+c.client_id")
#: The same upwards: the entries just above a (date, id), oldest first (the "Newer" page).
_HISTORY_NEWER = """WHERE {client} = :client_id AND c.date >= :date_from AND c.date <= :date_to
  AND (c.date, c.id) > (:k_date, :k_id)
ORDER BY c.date, c.id LIMIT :limit"""
HISTORY_NEWER = _ENTRY + _HISTORY_NEWER.format(client="c.client_id")
HISTORY_NEWER_WALK = _ENTRY + _HISTORY_NEWER.format(client="+c.client_id")
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


#: Status (or ``below``: balances below their low-balance alert), and the search: folded text
#: (``rules.fold``) anywhere in the client's folded names, company and e-mail, or the client's id.
_CLIENT_FILTER = """
WHERE (:status = '' OR status = :status
       OR (:status = 'below' AND low_below >= 0 AND balance_cents < low_below))
  AND (:pattern = '' OR search_key LIKE :pattern OR id = :client_id)
"""


#: Sort orders: the key's columns (compared with the last row's) and the ``ORDER BY``. Names
#: sort as shown (first name first), case and accents folded; balances by currency first.
SORTS = {
    "name": ("(sort_key, id) > (:k_sort, :k_id)", "sort_key, id"),
    "-name": ("(sort_key, id) < (:k_sort, :k_id)", "sort_key DESC, id DESC"),
    "balance": (
        "(currency_code, balance_cents, id) > (:k_currency, :k_balance, :k_id)",
        "currency_code, balance_cents, id",
    ),
    "-balance": (
        "(currency_code > :k_currency OR (currency_code = :k_currency"
        " AND (balance_cents, id) < (:k_balance, :k_id)))",
        "currency_code, balance_cents DESC, id DESC",
    ),
    "id": ("id > :k_id", "id"),
    "-id": ("id < :k_id", "id DESC"),
}
#: A search reads the table in storage order and sorts what matched: following an index in
#: sort order would fetch every row at random for a term that matches few. Wrapping the
#: columns in a no-op expression keeps the planner off those indexes (both dialects).
_SCAN = (
    ("sort_key", "(sort_key || '')"),
    ("currency_code", "(currency_code || '')"),
    ("balance_cents", "(balance_cents + 0)"),
    ("id", "(id + 0)"),
)


def _unindexed(sql: str) -> str:
    for column, expression in _SCAN:
        sql = re.sub(rf"(?<![:\w]){column}\b", expression, sql)
    return sql


class ClientQueries:
    """The client list's statements: the count, and per sort order the first page and the
    page after a key (keyset paging: an index seek, never an OFFSET scan); a search has
    scanning variants of both."""

    def __init__(self) -> None:
        select = f"SELECT {CLIENT_COLUMNS} FROM clients {_CLIENT_FILTER}"  # noqa: S608 constant
        self.count = "SELECT COUNT(*) FROM clients " + _CLIENT_FILTER  # noqa: S608 constant text
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


CLIENTS = ClientQueries()

_ACTIVITY = "SELECT id, at, actor, admin_id, client_id, ip, action, detail FROM activity "
_ACTIVITY_FILTER = """AND id {cmp} :key AND (:admin_id = 0 OR admin_id = :admin_id)
  AND at >= :at_from AND at < :at_to
ORDER BY id {order} LIMIT :limit"""
# A client's lines: those the partial index covers, and credits' lines through their entries.
_ACTIVITY_CLIENT = f"""
SELECT * FROM (
  {_ACTIVITY} WHERE client_id = :client_id AND via_entry = 0 {_ACTIVITY_FILTER}) AS lines
UNION ALL
SELECT * FROM (
  {ENTRY_LINES} AND c.activity_id {{cmp}} :key
    AND (:admin_id = 0 OR a.admin_id = :admin_id) AND a.at >= :at_from AND a.at < :at_to
  ORDER BY c.seq {{order}} LIMIT :limit) AS entries
ORDER BY id {{order}} LIMIT :limit"""  # noqa: S608 constant text
#: Pages newest first below an id, and the lines just above an id ("Newer"), oldest first.
ACTIVITY_PAGE = _ACTIVITY + "WHERE 1 = 1 " + _ACTIVITY_FILTER.format(cmp="<", order="DESC")
ACTIVITY_PAGE_CLIENT = _ACTIVITY_CLIENT.format(cmp="<", order="DESC")
ACTIVITY_NEWER = _ACTIVITY + "WHERE 1 = 1 " + _ACTIVITY_FILTER.format(cmp=">", order="ASC")
ACTIVITY_NEWER_CLIENT = _ACTIVITY_CLIENT.format(cmp=">", order="ASC")
