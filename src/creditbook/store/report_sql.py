"""The month-end reports' statements (``store.reports``), constant text with named parameters."""

from __future__ import annotations

#: The entries dated in a range, per currency, category and roll-forward column (their amount,
#: and how many were recorded after a moment, and their amount): grants and entries written
#: before grants move the balance themselves ("reversed" when recorded as a reversal); other
#: kinds move it through their allocations (column "none" here).
PERIOD_ENTRIES = """
SELECT k.currency_code, CASE WHEN c.kind = 'grant' THEN c.category ELSE 'paid' END,
       CASE WHEN c.kind NOT IN ('', 'grant') THEN 'none'
            WHEN r.entry_id IS NOT NULL THEN 'reversed'
            WHEN c.amount_cents < 0 THEN 'spent' ELSE 'added' END AS col,
       SUM(c.amount_cents), SUM(CASE WHEN c.created_at > :after THEN 1 ELSE 0 END),
       SUM(CASE WHEN c.created_at > :after THEN c.amount_cents ELSE 0 END)
FROM credits c
JOIN clients k ON k.id = c.client_id
LEFT JOIN reversals r ON r.client_id = c.client_id AND r.reversal_seq = c.seq
WHERE c.date >= :first AND c.date <= :last
GROUP BY 1, 2, col
"""
#: What the spending entries dated in a range took from (or gave back to) each category, per
#: currency and roll-forward column: expiry, reversal (a restore, or a removal recorded as a
#: grant's reversal) or spending.
PERIOD_ALLOCATIONS = """
SELECT k.currency_code, a.category,
       CASE WHEN e.kind = 'expiry' THEN 'expired'
            WHEN e.kind = 'restore' OR r.entry_id IS NOT NULL THEN 'reversed'
            ELSE 'spent' END AS col,
       SUM(a.amount)
FROM allocations a
JOIN clients k ON k.id = a.client_id
JOIN credits e ON e.client_id = a.client_id AND e.seq = a.seq
LEFT JOIN reversals r ON r.client_id = a.client_id AND r.reversal_seq = a.seq
WHERE a.date >= :first AND a.date <= :last
GROUP BY 1, 2, col
"""
#: Every entry's amount moves its client's balance: their sum per currency over a range.
NET_BY_CURRENCY = """
SELECT k.currency_code, SUM(c.amount_cents) FROM credits c JOIN clients k ON k.id = c.client_id
WHERE c.date >= :first AND c.date <= :last GROUP BY 1
"""
BALANCE_TOTALS = "SELECT currency_code, SUM(balance_cents) FROM clients GROUP BY currency_code"
CLIENT_CURRENCIES = "SELECT id, currency_code, balance_cents FROM clients"
#: Entries dated in a range but recorded after a moment (back-dated after the period closed).
LATE_ENTRIES = """
SELECT c.id, c.client_id, k.currency_code, c.date, c.created_at, c.amount_cents, c.kind,
       c.category, c.description
FROM credits c JOIN clients k ON k.id = c.client_id
WHERE c.date >= :first AND c.date <= :last AND c.created_at > :after
ORDER BY c.created_at, c.id
"""
#: The entries dated in a range with their clients' currencies (the journal), in date order;
#: a reversal names the entry it reverses.
JOURNAL_ENTRIES = """
SELECT c.id, c.client_id, c.seq, k.currency_code, c.date, c.amount_cents, c.kind, c.category,
       c.description, COALESCE(r.entry_id, 0)
FROM credits c JOIN clients k ON k.id = c.client_id
LEFT JOIN reversals r ON r.client_id = c.client_id AND r.reversal_seq = c.seq
WHERE c.date >= :first AND c.date <= :last
ORDER BY c.date, c.id
"""
#: The allocations of the entries dated in a range, in the same order as ``JOURNAL_ENTRIES``.
JOURNAL_ALLOCATIONS = """
SELECT c.id, a.category, a.amount FROM allocations a
JOIN credits c ON c.client_id = a.client_id AND c.seq = a.seq
WHERE a.date >= :first AND a.date <= :last
ORDER BY c.date, c.id, a.grant_seq
"""
#: Clients imported from a source, and their balances and entry ids (reconciliation).
IMPORTED_CLIENTS = """
SELECT c.id, c.balance_cents, c.currency_code, i.at FROM clients c
JOIN imported i ON i.kind = 'client' AND i.id = c.id AND i.source = :source
WHERE c.id >= :first AND c.id <= :last ORDER BY c.id
"""
ENTRIES_OF_CLIENTS = """
SELECT id, client_id, date, amount_cents, description, actor FROM credits
WHERE client_id >= :first AND client_id <= :last ORDER BY client_id, id
"""
IMPORTED_RANGE = """
SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM imported
WHERE kind = 'client' AND source = :source
"""
#: The currencies and categories the entries dated in a range use (the journal's checks).
JOURNAL_USES = """
SELECT DISTINCT k.currency_code, m.category FROM (
    SELECT client_id, CASE WHEN kind = 'grant' THEN category ELSE 'paid' END AS category
    FROM credits WHERE date >= :first AND date <= :last AND kind IN ('', 'grant')
    UNION ALL
    SELECT client_id, category FROM allocations WHERE date >= :first AND date <= :last
) AS m JOIN clients k ON k.id = m.client_id
"""
#: Each currency's net movement per month (every entry moves its client's balance by its
#: amount), for the closing-balance chart.
MONTHLY_NET = """
SELECT k.currency_code, m.month, SUM(m.cents) FROM (
    SELECT client_id, substr(date, 1, 7) AS month, amount_cents AS cents FROM credits
    WHERE date >= :first AND date <= :last
) AS m JOIN clients k ON k.id = m.client_id
GROUP BY k.currency_code, m.month
"""
#: The closing balance per currency and how many clients hold credit, as of a day, summed in the
#: database (PostgreSQL aggregates in parallel what SQLite's streamed merge does client by
#: client): today's balance less what is dated after the day, or what is dated up to it.
CLOSING_LATER = """
SELECT k.currency_code, SUM(k.balance_cents - COALESCE(l.cents, 0)),
       SUM(CASE WHEN k.balance_cents - COALESCE(l.cents, 0) > 0 THEN 1 ELSE 0 END)
FROM clients k
LEFT JOIN (SELECT client_id, SUM(amount_cents) AS cents FROM credits WHERE date > :until
           GROUP BY client_id) AS l ON l.client_id = k.id
GROUP BY k.currency_code
"""
CLOSING_UNTIL = """
SELECT k.currency_code, SUM(u.cents), SUM(CASE WHEN u.cents > 0 THEN 1 ELSE 0 END)
FROM (SELECT client_id, SUM(amount_cents) AS cents FROM credits WHERE date <= :until
      GROUP BY client_id) AS u
JOIN clients k ON k.id = u.client_id
GROUP BY k.currency_code
"""
#: The same per category: each client's split as ``balances --by category`` computes it (what
#: remains of open grants outside paid today, paid the rest of the balance, less what moved per
#: category after the day; or the movements up to it), summed per currency and category.
_MOVES = """
    SELECT client_id, CASE WHEN kind = '' THEN 'paid' ELSE category END AS category,
           amount_cents AS cents
    FROM credits WHERE date {side} :until AND kind IN ('', 'grant')
    UNION ALL
    SELECT client_id, CASE WHEN category = '' THEN 'paid' ELSE category END, -amount
    FROM allocations WHERE date {side} :until
"""
_OPEN = """
    SELECT client_id, category, SUM(remaining) AS cents FROM credits
    WHERE remaining > 0 AND category NOT IN ('', 'paid') GROUP BY client_id, category
"""
CLOSING_BY_CATEGORY_LATER = f"""
WITH open AS ({_OPEN})
SELECT k.currency_code, s.category, SUM(s.cents),
       SUM(CASE WHEN s.cents > 0 THEN 1 ELSE 0 END)
FROM (
    SELECT client_id, category, SUM(cents) AS cents FROM (
        SELECT client_id, category, cents FROM open
        UNION ALL
        SELECT client_id, 'paid', -cents FROM open
        UNION ALL
        SELECT id, 'paid', balance_cents FROM clients
        UNION ALL
        SELECT client_id, category, -cents FROM ({_MOVES.format(side=">")}) AS later
    ) AS parts GROUP BY client_id, category
) AS s JOIN clients k ON k.id = s.client_id
GROUP BY k.currency_code, s.category
"""  # noqa: S608
CLOSING_BY_CATEGORY_UNTIL = f"""
SELECT k.currency_code, s.category, SUM(s.cents),
       SUM(CASE WHEN s.cents > 0 THEN 1 ELSE 0 END)
FROM (
    SELECT client_id, category, SUM(cents) AS cents FROM ({_MOVES.format(side="<=")}) AS moves
    GROUP BY client_id, category
) AS s JOIN clients k ON k.id = s.client_id
GROUP BY k.currency_code, s.category
"""  # noqa: S608
