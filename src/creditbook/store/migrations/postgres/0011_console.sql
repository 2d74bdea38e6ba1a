-- The web console: access levels, sessions, reversals and bulk-credit rows.
-- Admins that exist before the console had every power through the CLI: they become owners.
ALTER TABLE admins ADD COLUMN access TEXT NOT NULL DEFAULT 'manager';
UPDATE admins SET access = 'owner';

-- A session is known by the SHA-256 of its id; the id itself lives only in the browser's cookie.
CREATE TABLE console_sessions (
    id_hash  TEXT PRIMARY KEY,
    admin_id BIGINT NOT NULL,
    created  DOUBLE PRECISION NOT NULL,
    seen     DOUBLE PRECISION NOT NULL,
    ip       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_by_admin ON console_sessions (admin_id);

-- An entry can be reversed once: the claim is written in the reversal's own transaction.
CREATE TABLE reversals (
    entry_id  BIGINT PRIMARY KEY,
    client_id BIGINT NOT NULL,
    at        TEXT NOT NULL
);

-- A bulk-credit row is applied once per file, ever: claimed in the credit's own transaction.
CREATE TABLE bulk_rows (
    file TEXT NOT NULL,
    row  INTEGER NOT NULL,
    at   TEXT NOT NULL,
    PRIMARY KEY (file, row)
);

-- The client list sorts by name with keyset paging (no index on the balance: it would cost
-- every AddCredit an index update).
CREATE INDEX clients_by_name ON clients (lastname, firstname, id);
