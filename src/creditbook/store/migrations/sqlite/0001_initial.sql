-- Creditbook schema, version 1 (SQLite). Money is integer cents; timestamps are ISO-8601 UTC text.
CREATE TABLE clients (
    id            INTEGER PRIMARY KEY,
    firstname     TEXT NOT NULL,
    lastname      TEXT NOT NULL,
    companyname   TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    currency_code TEXT NOT NULL DEFAULT 'USD',
    status        TEXT NOT NULL DEFAULT 'Active',
    balance_cents INTEGER NOT NULL DEFAULT 0
                  CHECK (balance_cents >= 0 AND balance_cents <= 9999999999999999),
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL
);

CREATE TABLE admins (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    firstname     TEXT NOT NULL DEFAULT '',
    lastname      TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE credentials (
    id           INTEGER PRIMARY KEY,
    identifier   TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    admin_id     INTEGER NOT NULL REFERENCES admins (id),
    description  TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);

CREATE TABLE roles (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    actions TEXT NOT NULL
);

CREATE TABLE credential_roles (
    credential_id INTEGER NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    role_id       INTEGER NOT NULL REFERENCES roles (id),
    PRIMARY KEY (credential_id, role_id)
);

CREATE TABLE credits (
    id            INTEGER PRIMARY KEY,
    client_id     INTEGER NOT NULL REFERENCES clients (id),
    admin_id      INTEGER NOT NULL DEFAULT 0,
    date          TEXT NOT NULL,
    description   TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL,
    balance_cents INTEGER NOT NULL,
    relid         INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
CREATE INDEX credits_by_client ON credits (client_id, id);

CREATE TABLE activity (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    admin_id  INTEGER NOT NULL DEFAULT 0,
    client_id INTEGER NOT NULL DEFAULT 0,
    ip        TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX activity_by_client ON activity (client_id, id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE ip_allow (
    entry      TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
INSERT INTO ip_allow (entry, created_at) VALUES ('127.0.0.1', '1970-01-01T00:00:00Z');
INSERT INTO ip_allow (entry, created_at) VALUES ('::1', '1970-01-01T00:00:00Z');

CREATE TABLE auth_failures (
    ip TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX auth_failures_by_ip ON auth_failures (ip, at);

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (name, value) VALUES ('config_version', 1);
