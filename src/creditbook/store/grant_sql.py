"""The statements of credit grants: categories, thresholds, open grants, expiry, figures."""

from __future__ import annotations

CATEGORIES = """
SELECT name, expires_days, builtin FROM categories ORDER BY name <> 'paid', builtin DESC, name
"""
CATEGORY_SET = """
INSERT INTO categories (name, expires_days, builtin) VALUES (:name, :days, 0)
ON CONFLICT (name) DO UPDATE SET expires_days = excluded.expires_days
"""
CATEGORY_DELETE = "DELETE FROM categories WHERE name = :name AND builtin = 0"
CATEGORY_USED = "SELECT 1 FROM credits WHERE category = :name LIMIT 1"

ALERTS = """
SELECT a.client_id, a.currency, a.below_cents, COALESCE(k.firstname, ''),
       COALESCE(k.lastname, ''), COALESCE(k.companyname, '')
FROM alerts a LEFT JOIN clients k ON k.id = a.client_id
ORDER BY a.currency, a.client_id
"""
ALERT_GET = "SELECT below_cents FROM alerts WHERE client_id = :client_id AND currency = :currency"
ALERT_SET = """
INSERT INTO alerts (client_id, currency, below_cents) VALUES (:client_id, :currency, :below)
ON CONFLICT (client_id, currency) DO UPDATE SET below_cents = excluded.below_cents
"""
ALERT_DELETE = "DELETE FROM alerts WHERE client_id = :client_id AND currency = :currency"
#: The threshold in force for clients of a currency (one client, or all when ``client_id`` is 0):
#: the client's own, else the currency's, else none (-1).
THRESHOLDS_REFRESH = """
UPDATE clients SET low_below = COALESCE(
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = clients.id AND a.currency = clients.currency_code),
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = 0 AND a.currency = clients.currency_code),
    -1)
WHERE currency_code = :currency AND (:client_id = 0 OR id = :client_id)
"""
#: The thresholds of the clients of an id range (after an import wrote clients of its own).
THRESHOLDS_REFRESH_RANGE = """
UPDATE clients SET low_below = COALESCE(
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = clients.id AND a.currency = clients.currency_code),
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = 0 AND a.currency = clients.currency_code),
    -1)
WHERE id BETWEEN :lo AND :hi
"""
#: Every client's threshold.
THRESHOLDS_REFRESH_ALL = """
UPDATE clients SET low_below = COALESCE(
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = clients.id AND a.currency = clients.currency_code),
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = 0 AND a.currency = clients.currency_code),
    -1)
WHERE low_below <> COALESCE(
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = clients.id AND a.currency = clients.currency_code),
    (SELECT a.below_cents FROM alerts a
     WHERE a.client_id = 0 AND a.currency = clients.currency_code),
    -1)
"""

_OPEN = "SELECT id, seq, date, category, expires, amount_cents, remaining FROM credits"
#: A client's open grants with an expiry date, soonest first; those that never expire, oldest
#: first (from the client's ``open_from``).
OPEN_EXPIRING = f"""
{_OPEN} WHERE client_id = :client_id AND expires <> '' AND remaining > 0
ORDER BY expires, seq LIMIT :limit
"""  # noqa: S608
OPEN_LASTING = f"""
{_OPEN} WHERE client_id = :client_id AND seq >= :start AND expires = '' AND remaining > 0
ORDER BY seq LIMIT :limit
"""  # noqa: S608
#: What remains of a client's open grants per category other than paid (paid is the rest).
CLIENT_CATEGORIES = """
SELECT category, SUM(remaining) FROM credits
WHERE client_id = :client_id AND remaining > 0 AND category NOT IN ('', 'paid')
GROUP BY category
"""
CLIENT_NEXT_EXPIRY = """
SELECT expires, SUM(remaining) FROM credits
WHERE client_id = :client_id AND expires <> '' AND remaining > 0
GROUP BY expires ORDER BY expires LIMIT 1
"""
CLIENT_OPEN_FROM = "SELECT open_from FROM clients WHERE id = :client_id"
#: Credit owed per currency in categories other than paid (paid is the rest of the balances).
TOTALS_BY_CATEGORY = """
SELECT k.currency_code, c.category, SUM(c.remaining) FROM credits c
JOIN clients k ON k.id = c.client_id
WHERE c.remaining > 0 AND c.category NOT IN ('', 'paid')
GROUP BY k.currency_code, c.category ORDER BY 1, 2
"""
#: What expires from a day to another (inclusive) per currency and category.
EXPIRING_BETWEEN = """
SELECT k.currency_code, c.category, SUM(c.remaining), COUNT(*) FROM credits c
JOIN clients k ON k.id = c.client_id
WHERE c.expires <> '' AND c.remaining > 0 AND c.expires >= :first AND c.expires <= :last
GROUP BY k.currency_code, c.category ORDER BY 1, 2
"""
#: The allocations of a client's entries in a range of numbers, with their grants' entry ids.
ALLOCATIONS_BETWEEN = """
SELECT a.seq, a.grant_seq, g.id, a.amount FROM allocations a
JOIN credits g ON g.client_id = a.client_id AND g.seq = a.grant_seq
WHERE a.client_id = :client_id AND a.seq >= :first AND a.seq <= :last
ORDER BY a.seq, a.grant_seq
"""
#: The allocations of the clients of an id range (``verify``), in chain order.
ALLOCATIONS_OF_CLIENTS = """
SELECT client_id, seq, grant_seq, amount FROM allocations
WHERE client_id BETWEEN :first AND :last ORDER BY client_id, seq, grant_seq
"""

# --- the expiry run ------------------------------------------------------------------------------
_DUE = "expires <> '' AND remaining > 0 AND expires < :today"
#: Clients with grants past their expiry day, after a client id (the next chunk's bound).
DUE_CLIENTS = f"""
SELECT client_id FROM credits WHERE {_DUE} AND client_id > :after
ORDER BY client_id LIMIT :limit
"""  # noqa: S608
_DUE_LOCK = f"""
SELECT id, balance_cents, entries, head_hash, last_date, status, open_from, low_below
FROM clients WHERE id IN (
    SELECT client_id FROM credits WHERE {_DUE} AND client_id > :after AND client_id <= :upto)
ORDER BY id"""  # noqa: S608
#: The clients of a chunk, locked in id order (PostgreSQL; SQLite's writer lock is whole).
DUE_LOCK = _DUE_LOCK
DUE_LOCK_ROWS = _DUE_LOCK + " FOR UPDATE"
DUE_GRANTS = f"""
SELECT client_id, id, seq, remaining, category, expires, date, amount_cents, kind FROM credits
WHERE {_DUE} AND client_id > :after AND client_id <= :upto
ORDER BY client_id, expires, seq
"""  # noqa: S608
#: How many grants are past their expiry day and the oldest such day (for /metrics).
OVERDUE = f"SELECT COUNT(*), MIN(expires) FROM credits WHERE {_DUE}"  # noqa: S608
#: Grants expiring within the notice window that have not been announced yet.
NOTICE_DUE = """
SELECT c.client_id, c.id, c.seq, c.remaining, c.category, c.expires FROM credits c
WHERE c.expires <> '' AND c.remaining > 0 AND c.expires >= :today AND c.expires <= :until
  AND NOT EXISTS (SELECT 1 FROM grant_notices n WHERE n.client_id = c.client_id AND n.seq = c.seq)
ORDER BY c.expires, c.client_id, c.seq LIMIT :limit
"""
NOTICE_CLAIM = """
INSERT INTO grant_notices (client_id, seq, at) VALUES (:client_id, :seq, :at)
ON CONFLICT (client_id, seq) DO NOTHING
"""

# --- figures by category as of a day --------------------------------------------------------------
#: What remains of open grants per client and category other than paid, now.
OPEN_BY_CATEGORY = """
SELECT client_id, category, SUM(remaining) FROM credits
WHERE remaining > 0 AND category NOT IN ('', 'paid')
GROUP BY client_id, category ORDER BY client_id
"""
#: Per client and category: grants (and entries written before grants, as paid) dated on one
#: side of a day, less what spending entries dated on that side took from each category.
_SIDE = """
SELECT client_id, category, SUM(cents) FROM (
    SELECT +client_id AS client_id, CASE WHEN kind = '' THEN 'paid' ELSE category END AS category,
           amount_cents AS cents
    FROM credits WHERE date {side} :until AND kind IN ('', 'grant')
    UNION ALL
    SELECT client_id, category, -amount FROM allocations WHERE date {side} :until
) AS moves GROUP BY client_id, category ORDER BY client_id
"""
CATEGORY_SUMS_LATER = _SIDE.format(side=">")
CATEGORY_SUMS_UNTIL = _SIDE.format(side="<=")
