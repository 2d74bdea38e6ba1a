-- Tamper evidence: every entry carries a SHA-256 over its content and its predecessor's hash
-- (per client), the client row keeps its chain head, and seals record every head at a moment.
-- The hashes of entries written before this migration are computed by `migrate` (in Python).
ALTER TABLE credits ADD COLUMN actor TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN head_hash TEXT NOT NULL DEFAULT '';
CREATE TABLE seals (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    clients INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    digest  TEXT NOT NULL
);
CREATE INDEX seals_by_digest ON seals (digest);
CREATE TABLE seal_heads (
    seal_id   INTEGER NOT NULL REFERENCES seals (id),
    client_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (seal_id, client_id)
);
