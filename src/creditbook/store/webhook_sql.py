"""The SQL of the webhook tables (constant text with ``:name`` placeholders)."""

ENDPOINT_COLUMNS = (
    "id, uid, url, events, description, enabled, created_at, secret_version, failures, "
    "failing_since, retry_at, disabled_note"
)
ENDPOINT_INSERT = """
INSERT INTO webhook_endpoints (uid, url, events, description, created_at)
VALUES (:uid, :url, :events, :description, :at) RETURNING id
"""
ENDPOINT_LIST = f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"  # noqa: S608
ENDPOINT_GET = f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = :id"  # noqa: S608
ENDPOINT_ENABLE = """
UPDATE webhook_endpoints SET enabled = :enabled, disabled_note = :note, failures = 0,
    failing_since = NULL, retry_at = 0
WHERE id = :id
"""
ENDPOINT_DELETE_DELIVERIES = "DELETE FROM webhook_deliveries WHERE endpoint_id = :id"
ENDPOINT_DELETE = "DELETE FROM webhook_endpoints WHERE id = :id"
ENDPOINT_HEALTHY = """
UPDATE webhook_endpoints SET failures = 0, failing_since = NULL, retry_at = 0 WHERE id = :id
"""
ENDPOINT_FAILING = """
UPDATE webhook_endpoints SET failures = :failures, failing_since = :since, retry_at = :retry_at
WHERE id = :id
"""
ENDPOINT_DISABLE = """
UPDATE webhook_endpoints SET enabled = 0, disabled_note = :note WHERE id = :id
"""
ENDPOINT_FAIL_PENDING = """
UPDATE webhook_deliveries SET status = 'failed', done_at = :now, last_error = :note
WHERE endpoint_id = :id AND status = 'pending'
"""
FANOUT_BOUND = """
SELECT MAX(id) FROM (SELECT id FROM events WHERE fanned = 0 ORDER BY id LIMIT :limit) AS batch
"""
# Deliveries get their ids in event order, so a client's events keep their order per endpoint.
FANOUT_INSERT = """
INSERT INTO webhook_deliveries (endpoint_id, event_id, client_id, next_at, created_at)
SELECT w.id, e.id, e.client_id, :now, :now
FROM events e JOIN webhook_endpoints w
  ON w.enabled = 1 AND w.created_at <= e.at
 AND (',' || w.events || ',') LIKE ('%,' || e.type || ',%')
WHERE e.fanned = 0 AND e.id <= :upto
ORDER BY e.id, w.id
"""
FANOUT_MARK = "UPDATE events SET fanned = 1 WHERE fanned = 0 AND id <= :upto"
# The oldest pending delivery of each of an endpoint's clients, if it is due: a failing event
# holds back its client's later ones on that endpoint, and nobody else's.
DUE = """
SELECT d.id, d.endpoint_id, d.attempts, d.created_at, e.uid, e.type, e.client_id, e.idem_key,
       e.data, e.at, c.id, c.amount_cents, c.balance_cents, c.description, c.date, c.admin_id,
       c.kind, c.category, c.expires, c.remaining
FROM (SELECT MIN(id) AS id FROM webhook_deliveries
      WHERE endpoint_id = :endpoint_id AND status = 'pending' GROUP BY client_id) AS h
JOIN webhook_deliveries d ON d.id = h.id
JOIN events e ON e.id = d.event_id
LEFT JOIN credits c ON c.client_id = e.client_id AND c.seq = e.seq AND e.seq > 0
WHERE d.next_at <= :now ORDER BY d.id LIMIT :limit
"""
# A failing endpoint is probed with its oldest pending delivery only (the head of its client),
# when the endpoint's own wait is over (that wait, not the delivery's, decides).
PROBE = """
SELECT d.id, d.endpoint_id, d.attempts, d.created_at, e.uid, e.type, e.client_id, e.idem_key,
       e.data, e.at, c.id, c.amount_cents, c.balance_cents, c.description, c.date, c.admin_id,
       c.kind, c.category, c.expires, c.remaining
FROM (SELECT id FROM webhook_deliveries
      WHERE endpoint_id = :endpoint_id AND status = 'pending' ORDER BY id LIMIT 1) AS h
JOIN webhook_deliveries d ON d.id = h.id
JOIN events e ON e.id = d.event_id
LEFT JOIN credits c ON c.client_id = e.client_id AND c.seq = e.seq AND e.seq > 0
"""
DELIVERED = """
UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_at = :now,
    last_status = :status, last_error = '', done_at = :now
WHERE id = :id
"""
RETRY = """
UPDATE webhook_deliveries SET status = :state, attempts = attempts + 1, last_at = :now,
    last_status = :status, last_error = :error, next_at = :next_at, done_at = :done_at
WHERE id = :id
"""
DELIVERY_COLUMNS = """
SELECT d.id, d.endpoint_id, e.uid, e.type, d.client_id, d.status, d.attempts, d.next_at,
       d.created_at, d.last_at, d.last_status, d.last_error, d.done_at
FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
"""
DELIVERIES = (
    DELIVERY_COLUMNS
    + """
WHERE (:endpoint_id = 0 OR d.endpoint_id = :endpoint_id) AND (:failed = 0 OR d.status = 'failed')
ORDER BY d.id DESC LIMIT :limit
"""
)
REDELIVER = """
INSERT INTO webhook_deliveries (endpoint_id, event_id, client_id, next_at, created_at)
SELECT endpoint_id, event_id, client_id, :now, :now FROM webhook_deliveries WHERE id = :id
RETURNING id
"""
BACKLOG = """
SELECT (SELECT COUNT(*) FROM events WHERE fanned = 0),
       (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'),
       (SELECT MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'),
       (SELECT MIN(at) FROM events WHERE fanned = 0)
"""
LEASE_ROW = """
INSERT INTO leases (name, holder, expires_at) VALUES (:name, '', 0) ON CONFLICT (name) DO NOTHING
"""
LEASE_TAKE = """
UPDATE leases SET holder = :holder, expires_at = :until
WHERE name = :name AND (holder = :holder OR expires_at < :now)
"""
LEASE_RELEASE = "UPDATE leases SET expires_at = 0 WHERE name = :name AND holder = :holder"
PRUNE_DELIVERIES = """
DELETE FROM webhook_deliveries WHERE status <> 'pending' AND done_at < :before
"""
PRUNE_EVENTS = """
DELETE FROM events WHERE fanned = 1 AND at < :before
AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id)
"""
