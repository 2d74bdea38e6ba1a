-- Controls: four-eyes approval of large console changes, and two-factor login.
-- Approval rules per currency: a change above ``above_cents`` (or any removal, with
-- ``removals``) made in the console waits for a second person.
CREATE TABLE approval_rules (
    currency    TEXT PRIMARY KEY,
    above_cents INTEGER NOT NULL,
    removals    INTEGER NOT NULL DEFAULT 0
);
-- A change waiting for approval, and its fate: pending, then approved (applied), refused
-- (approved but the ledger refused it then), rejected, or expired. ``deciding`` marks the one
-- decision that won while it is applied.
CREATE TABLE approval_requests (
    id           INTEGER PRIMARY KEY,
    client_id    INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    description  TEXT NOT NULL,
    date         TEXT NOT NULL DEFAULT '',
    category     TEXT NOT NULL DEFAULT '',
    expires      TEXT NOT NULL DEFAULT '',
    entry_id     INTEGER NOT NULL DEFAULT 0,
    requested_by INTEGER NOT NULL,
    requester    TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    decided_by   INTEGER NOT NULL DEFAULT 0,
    decider      TEXT NOT NULL DEFAULT '',
    decided_at   TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    result       TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approval_requests_by_status ON approval_requests (status, id);
CREATE INDEX approval_requests_by_client ON approval_requests (client_id, id);
-- Two-factor login: an admin's TOTP secret (encrypted with the server's key file), whether it
-- was confirmed, and the last time step used (a code is valid once); recovery codes, hashed.
CREATE TABLE admin_totp (
    admin_id   INTEGER PRIMARY KEY,
    secret     TEXT NOT NULL,
    confirmed  INTEGER NOT NULL DEFAULT 0,
    last_step  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE recovery_codes (
    admin_id INTEGER NOT NULL,
    hash     TEXT NOT NULL,
    used_at  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (admin_id, hash)
);
-- A session is whole ('') or waits for the second factor ('code') or for enrolment ('enrol').
ALTER TABLE console_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT '';
-- Passkeys (WebAuthn): an admin's registered credentials, as a second factor or (an owner's
-- setting) instead of the password; a session keeps the challenge of a ceremony in progress.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY,
    admin_id      INTEGER NOT NULL,
    credential_id TEXT NOT NULL UNIQUE,
    public_key    TEXT NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    name          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX passkeys_by_admin ON passkeys (admin_id);
ALTER TABLE console_sessions ADD COLUMN challenge TEXT NOT NULL DEFAULT '';
