-- Webhooks: endpoints, the transactional outbox (events written in the ledger change's own
-- transaction), deliveries (one per event and endpoint, fanned out by the dispatcher), and the
-- lease that lets exactly one process deliver. Times the dispatcher computes with are epoch
-- seconds (REAL); event times are ISO-8601 UTC text like every other row. An event's uid is
-- 128 random bits: unique without an index (a unique index on random text cost a fifth of
-- AddCredit's throughput: every commit touched pages all over it).
CREATE TABLE webhook_endpoints (
    id             INTEGER PRIMARY KEY,
    uid            TEXT NOT NULL UNIQUE,
    url            TEXT NOT NULL,
    events         TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    enabled        INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    secret_version INTEGER NOT NULL DEFAULT 1,
    failures       INTEGER NOT NULL DEFAULT 0,
    failing_since  REAL,
    retry_at       REAL NOT NULL DEFAULT 0,
    disabled_note  TEXT NOT NULL DEFAULT ''
);
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    uid       TEXT NOT NULL,
    type      TEXT NOT NULL,
    client_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL DEFAULT 0,
    idem_key  TEXT NOT NULL DEFAULT '',
    data      TEXT NOT NULL DEFAULT '',
    at        TEXT NOT NULL,
    fanned    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_unfanned ON events (id) WHERE fanned = 0;
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY,
    endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints (id),
    event_id    INTEGER NOT NULL REFERENCES events (id),
    client_id   INTEGER NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     REAL NOT NULL,
    created_at  REAL NOT NULL,
    last_at     REAL,
    last_status INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    done_at     REAL
);
CREATE INDEX deliveries_pending ON webhook_deliveries (endpoint_id, client_id, id)
    WHERE status = 'pending';
CREATE INDEX deliveries_oldest ON webhook_deliveries (endpoint_id, id) WHERE status = 'pending';
CREATE INDEX deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX deliveries_by_event ON webhook_deliveries (event_id);
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
