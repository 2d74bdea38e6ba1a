"""Four-eyes approval's statements (``store.approvals``), constant text with named parameters."""

from __future__ import annotations

RULES = "SELECT currency, above_cents, removals FROM approval_rules ORDER BY currency"
RULE_OF = "SELECT above_cents, removals FROM approval_rules WHERE currency = :currency"
RULE_SET = """
INSERT INTO approval_rules (currency, above_cents, removals) VALUES (:currency, :above, :removals)
ON CONFLICT (currency) DO UPDATE SET above_cents = excluded.above_cents,
                                     removals = excluded.removals
"""
RULE_DELETE = "DELETE FROM approval_rules WHERE currency = :currency"
_COLUMNS = """id, client_id, kind, amount_cents, currency, description, date, category, expires,
entry_id, requested_by, requester, requested_at, expires_at, status, decided_by, decider,
decided_at, note, result, payload"""
REQUEST_INSERT = """
INSERT INTO approval_requests (client_id, kind, amount_cents, currency, description, date,
    category, expires, entry_id, requested_by, requester, requested_at, expires_at, payload)
VALUES (:client_id, :kind, :amount_cents, :currency, :description, :date, :category, :expires,
    :entry_id, :requested_by, :requester, :requested_at, :expires_at, :payload)
RETURNING id
"""
REQUEST = f"SELECT {_COLUMNS} FROM approval_requests WHERE id = :id"  # noqa: S608
PENDING = f"""
SELECT {_COLUMNS} FROM approval_requests WHERE status = 'pending' AND expires_at > :now
ORDER BY id LIMIT :limit
"""  # noqa: S608
OF_CLIENT = f"""
SELECT {_COLUMNS} FROM approval_requests WHERE client_id = :client_id
ORDER BY id DESC LIMIT :limit
"""  # noqa: S608
RECENT = f"""
SELECT {_COLUMNS} FROM approval_requests WHERE status <> 'pending'
ORDER BY id DESC LIMIT :limit
"""  # noqa: S608
#: The one decision that wins: only a pending request not yet expired moves on.
CLAIM = """
UPDATE approval_requests SET status = :status, decided_by = :decided_by, decider = :decider,
    decided_at = :at, note = :note
WHERE id = :id AND status = 'pending' AND expires_at > :at
"""
SETTLE = "UPDATE approval_requests SET status = :status, result = :result WHERE id = :id"
EXPIRE = """
UPDATE approval_requests SET status = 'expired', decided_at = :now
WHERE status = 'pending' AND expires_at <= :now
"""
