"""Every SQL statement the stores share, as constant text with ``:name`` placeholders.

The PostgreSQL store rewrites the placeholders to psycopg's ``%(name)s`` once, at import;
input never becomes SQL text.
"""

CLIENT_COLUMNS = (
    "id, firstname, lastname, companyname, email, currency_code, status, balance_cents, "
    "created_at, details"
)

# A grant: refused (no row) past the balance's range and for a closed client. A grant that never
# expires opens the client's oldest-first scan when none was open (``spend.py``).
GRANT_UPDATE = """
UPDATE clients SET balance_cents = balance_cents + :amount, entries = entries + 1,
                   last_date = CASE WHEN :date > last_date THEN :date ELSE last_date END,
                   open_from = CASE WHEN open_from = 0 AND :lasting = 1 THEN entries + 1
                                    ELSE open_from END
WHERE id = :client_id AND balance_cents + :amount <= :max AND status <> 'Closed'
RETURNING balance_cents, entries, head_hash, low_below
"""
# A client's row, locked for the rest of the transaction (an update that changes nothing).
CLIENT_LOCK = """
UPDATE clients SET entries = entries WHERE id = :client_id
RETURNING balance_cents, last_date, status
"""
# A client's entries dated after a day, summed per day in date order.
DATED_AFTER = """
SELECT date, SUM(amount_cents) FROM credits WHERE client_id = :client_id AND date > :date
GROUP BY date ORDER BY date
"""
CREDIT_INSERT = """
INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents, balance_cents,
                     relid, created_at, actor, prev_hash, hash, activity_id, kind, category,
                     expires, remaining)
VALUES (:client_id, :seq, :admin_id, :date, :description, :amount, :balance, 0, :at, :actor,
        :prev_hash, :hash, :activity_id, :kind, :category, :expires, :remaining)
"""
# A credit's activity line, numbered in advance so that its entry can record the number: the
# line is found through the entry (the index of activity by client leaves these lines out).
ACTIVITY_ENTRY_INSERT = """
INSERT INTO activity (id, at, actor, admin_id, client_id, ip, action, detail, via_entry)
VALUES (:id, :at, :actor, :admin_id, :client_id, :ip, 'addcredit', :detail, 1)
"""
# SQLite: the writer holds the database's one write lock, so the next ids follow the last.
ACTIVITY_LAST_ID = "SELECT COALESCE(MAX(id), 0) FROM activity"
# PostgreSQL: ids from the table's sequence (writers run concurrently).
ACTIVITY_NEXT_IDS = (
    "SELECT nextval(pg_get_serial_sequence('activity', 'id')) FROM generate_series(1, :n)"
)
# The transactional outbox: written in the ledger change's own transaction, only while some
# webhook endpoint is enabled (the check is one indexed read per transaction, not per write).
ANY_ENDPOINT = "SELECT 1 FROM webhook_endpoints WHERE enabled = 1 LIMIT 1"
EVENT_INSERT = """
INSERT INTO events (uid, type, client_id, seq, idem_key, data, at)
VALUES (:uid, :type, :client_id, :seq, :idem_key, :data, :at)
"""
CLIENT_HEAD = "UPDATE clients SET head_hash = :hash WHERE id = :client_id"

ACTIVITY_INSERT = """
INSERT INTO activity (at, actor, admin_id, client_id, ip, action, detail)
VALUES (:at, :actor, :admin_id, :client_id, :ip, :action, :detail)
"""
ACTIVITY_LIST = """
SELECT id, at, actor, admin_id, client_id, ip, action, detail FROM activity
ORDER BY id DESC LIMIT :limit
"""
# A client's credit lines, reached through their entries (the client index leaves them out);
# the per-client reads (log, console pages, export) add their filters and order.
ENTRY_LINES = """
SELECT a.id, a.at, a.actor, a.admin_id, a.client_id, a.ip, a.action, a.detail
FROM credits c JOIN activity a ON a.id = c.activity_id
WHERE c.client_id = :client_id AND c.activity_id > 0"""
# A client's lines: those the partial index covers, and credits' lines through their entries.
ACTIVITY_LIST_CLIENT = f"""
SELECT * FROM (
  SELECT id, at, actor, admin_id, client_id, ip, action, detail FROM activity
  WHERE client_id = :client_id AND via_entry = 0 ORDER BY id DESC LIMIT :limit) AS lines
UNION ALL
SELECT * FROM ({ENTRY_LINES} ORDER BY c.seq DESC LIMIT :limit) AS entries
ORDER BY id DESC LIMIT :limit
"""  # noqa: S608 constant text

CLIENT_INSERT = """
INSERT INTO clients (firstname, lastname, companyname, email, email_key, currency_code, status,
                     details, created_at, search_key, sort_key, low_below)
VALUES (:firstname, :lastname, :companyname, :email, :email_key, :currency_code, :status,
        :details, :at, :search_key, :sort_key,
        COALESCE((SELECT below_cents FROM alerts WHERE client_id = 0
                  AND currency = :currency_code), -1))
RETURNING id
"""
# A client's fields, all written at once (the caller merged the changes into the current row,
# read in the same transaction); the balance, entries and chain head are never touched here.
CLIENT_UPDATE = """
UPDATE clients SET firstname = :firstname, lastname = :lastname, companyname = :companyname,
                   email = :email, email_key = :email_key, status = :status,
                   currency_code = :currency_code, details = :details,
                   search_key = :search_key, sort_key = :sort_key
WHERE id = :client_id
"""
CLIENT_ENTRIES_LOCK = "UPDATE clients SET entries = entries WHERE id = :client_id RETURNING entries"
# The folded search text and sort key of clients written before they existed (``migrate``).
CLIENT_NAMES = """
SELECT id, firstname, lastname, companyname, email FROM clients
WHERE sort_key = '' AND id > :after ORDER BY id LIMIT 1000
"""
CLIENT_KEYS = "UPDATE clients SET search_key = :search_key, sort_key = :sort_key WHERE id = :id"
CLIENT_EMAIL_TAKEN = "SELECT id FROM clients WHERE email_key = :email_key"
CLIENT_GET = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE id = :client_id"  # noqa: S608 constant
CLIENT_BY_EMAIL = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE email_key = :email_key"  # noqa: S608
_CLIENT_FILTER = """
FROM clients
WHERE (:status = '' OR lower(status) = lower(:status))
  AND (:search = '' OR search_key LIKE :pattern OR id = :client_id)
"""
CLIENT_COUNT = "SELECT COUNT(*) " + _CLIENT_FILTER
CLIENT_PAGE_ASC = (
    f"SELECT {CLIENT_COLUMNS} {_CLIENT_FILTER} ORDER BY id ASC LIMIT :limit OFFSET :offset"  # noqa: S608
)
CLIENT_PAGE_DESC = (
    f"SELECT {CLIENT_COLUMNS} {_CLIENT_FILTER} ORDER BY id DESC LIMIT :limit OFFSET :offset"  # noqa: S608
)

ADMIN_COLUMNS = "id, username, password_hash, firstname, lastname, email, disabled, access"
ADMIN_INSERT = """
INSERT INTO admins (username, password_hash, firstname, lastname, email, disabled, access,
                    created_at)
VALUES (:username, :password_hash, :firstname, :lastname, :email, 0, :access, :at)
RETURNING id
"""
ADMIN_BY_NAME = f"SELECT {ADMIN_COLUMNS} FROM admins WHERE username = :username"  # noqa: S608
ADMIN_GET = f"SELECT {ADMIN_COLUMNS} FROM admins WHERE id = :admin_id"  # noqa: S608
ADMIN_LIST = f"SELECT {ADMIN_COLUMNS} FROM admins ORDER BY id"  # noqa: S608
ADMIN_SET_DISABLED = "UPDATE admins SET disabled = :disabled WHERE id = :admin_id"
ADMIN_SET_ACCESS = "UPDATE admins SET access = :access WHERE id = :admin_id"
# Locks the enabled owners' rows (an update that changes nothing) and names them.
OWNERS_LOCK = (
    "UPDATE admins SET disabled = disabled WHERE access = 'owner' AND disabled = 0 RETURNING id"
)
ADMIN_SET_PASSWORD = "UPDATE admins SET password_hash = :password_hash WHERE id = :admin_id"

CREDENTIAL_COLUMNS = (
    "c.id, c.identifier, c.secret_hash, c.admin_id, c.description, c.created_at, c.last_used_at"
)
CREDENTIAL_INSERT = """
INSERT INTO credentials (identifier, secret_hash, admin_id, description, created_at)
VALUES (:identifier, :secret_hash, :admin_id, :description, :at)
RETURNING id
"""
CREDENTIAL_GET = f"SELECT {CREDENTIAL_COLUMNS} FROM credentials c WHERE c.identifier = :identifier"  # noqa: S608
CREDENTIAL_LIST = f"""
SELECT {CREDENTIAL_COLUMNS}, a.username FROM credentials c JOIN admins a ON a.id = c.admin_id
ORDER BY c.id
"""  # noqa: S608
CREDENTIAL_ROLES = """
SELECT r.name FROM credential_roles cr JOIN roles r ON r.id = cr.role_id
WHERE cr.credential_id = :credential_id ORDER BY r.name
"""
CREDENTIAL_ADD_ROLE = """
INSERT INTO credential_roles (credential_id, role_id)
SELECT :credential_id, id FROM roles WHERE name = :name
"""
CREDENTIAL_DELETE_ROLES = "DELETE FROM credential_roles WHERE credential_id = :credential_id"
CREDENTIAL_DELETE = "DELETE FROM credentials WHERE identifier = :identifier RETURNING id"
CREDENTIAL_TOUCH = "UPDATE credentials SET last_used_at = :at WHERE id = :credential_id"

ROLE_UPSERT = """
INSERT INTO roles (name, actions) VALUES (:name, :actions)
ON CONFLICT (name) DO UPDATE SET actions = excluded.actions
"""
ROLE_LIST = "SELECT name, actions FROM roles ORDER BY name"
ROLE_EXISTS = "SELECT 1 FROM roles WHERE name = :name"

SETTING_UPSERT = """
INSERT INTO settings (name, value) VALUES (:name, :value)
ON CONFLICT (name) DO UPDATE SET value = excluded.value
"""
SETTING_DELETE = "DELETE FROM settings WHERE name = :name"
SETTING_LIST = "SELECT name, value FROM settings ORDER BY name"

IP_INSERT = "INSERT INTO ip_allow (entry, created_at) VALUES (:entry, :at) ON CONFLICT DO NOTHING"
IP_DELETE = "DELETE FROM ip_allow WHERE entry = :entry"
IP_LIST = "SELECT entry FROM ip_allow ORDER BY entry"

FAILURE_INSERT = "INSERT INTO auth_failures (ip, at, token) VALUES (:ip, :now, :token)"
FAILURE_RELEASE = "DELETE FROM auth_failures WHERE token = :token"
# Every key a name or an address is counted under (``AccessPolicy``'s login keys).
FAILURE_LIFT = """
DELETE FROM auth_failures
WHERE ip IN (:key, :api_user, :console_user, :console_address)
   OR ip LIKE :pair ESCAPE '!'
"""
FAILURE_FORGET = "DELETE FROM auth_failures WHERE at < :before"
FAILURE_BUMP = "UPDATE meta SET value = value + 1 WHERE name = 'failure_version'"
FAILURE_KEYS = "SELECT ip, COUNT(*), MAX(at) FROM auth_failures WHERE at >= :since GROUP BY ip"
FAILURE_COUNT = "SELECT COUNT(*), MAX(at) FROM auth_failures WHERE ip = :ip AND at >= :since"

VERSIONS = (
    "SELECT value FROM meta WHERE name IN ('config_version', 'failure_version') ORDER BY name"
)
CONFIG_BUMP = "UPDATE meta SET value = value + 1 WHERE name = 'config_version'"

CREDIT_COLUMNS = (
    "id, client_id, admin_id, date, description, amount_cents, balance_cents, relid, created_at, "
    "kind, category, expires, remaining, seq"
)
CREDIT_COUNT = "SELECT entries FROM clients WHERE id = :client_id"
CREDIT_TOTAL_UNTIL = """
SELECT COUNT(*), COALESCE(SUM(amount_cents), 0) FROM credits
WHERE client_id = :client_id AND date <= :until
"""
# The same from the other side, for a client that holds much of the ledger: its count and
# balance less its entries dated after the day, walking the date index (`+e.client_id`: not the
# client index). One statement, so the client's row and its entries are of one moment.
CREDIT_TOTAL_UNTIL_WALK = """
SELECT c.entries - COUNT(e.id), c.balance_cents - COALESCE(SUM(e.amount_cents), 0)
FROM clients c LEFT JOIN credits e ON +e.client_id = c.id AND e.date > :until
WHERE c.id = :client_id GROUP BY c.id, c.entries, c.balance_cents
"""
CREDIT_NTH_UNTIL = """
SELECT seq FROM credits WHERE client_id = :client_id AND date <= :until
ORDER BY seq LIMIT 1 OFFSET :skip
"""
CREDIT_PAGE_UNTIL = f"""
SELECT {CREDIT_COLUMNS}, seq FROM credits
WHERE client_id = :client_id AND seq > :after AND date <= :until
ORDER BY seq LIMIT :limit
"""  # noqa: S608
# Every client's balance at the end of a day, from one side of the date index: the entries
# dated after the day subtracted from each balance, or those up to it added up, whichever side
# is shorter (balances equal the sum of their entries: every change moves both, and `verify`
# proves it). The sample's dates, at evenly spaced ids, estimate which side that is. The sums
# come by client and are merged with the clients in Python: grouping by `+client_id` keeps
# SQLite from walking the client index (a lookup per entry) for an order it sorts cheaply.
BALANCES_CLIENTS = """
SELECT id, firstname, lastname, companyname, email, currency_code, balance_cents
FROM clients ORDER BY id
"""
_ASOF_SUMS = """
SELECT +client_id, SUM(amount_cents) FROM credits WHERE date {side} :until GROUP BY 1 ORDER BY 1
"""
ASOF_SUMS_LATER = _ASOF_SUMS.format(side=">")
ASOF_SUMS_UNTIL = _ASOF_SUMS.format(side="<=")
ENTRY_ID_RANGE = "SELECT (SELECT MIN(id) FROM credits), (SELECT MAX(id) FROM credits)"
ENTRY_DATE_AT = "SELECT date FROM credits WHERE id >= :at ORDER BY id LIMIT 1"
CREDIT_PAGE = f"""
SELECT {CREDIT_COLUMNS}, seq FROM credits WHERE client_id = :client_id AND seq > :after
ORDER BY seq LIMIT :limit
"""  # noqa: S608

# Scalar MIN and MAX each, so both stores answer from an index's ends, never a scan.
CLIENT_ID_RANGE = """
SELECT COALESCE(MIN(lo), 0), COALESCE(MAX(hi), 0) FROM (
    SELECT (SELECT MIN(id) FROM clients) AS lo, (SELECT MAX(id) FROM clients) AS hi
    UNION ALL
    SELECT (SELECT MIN(client_id) FROM credits), (SELECT MAX(client_id) FROM credits)
) r
"""

IDEM_FORGET = "DELETE FROM idempotency WHERE created_at < :before"
IDEM_CLAIM = """
INSERT INTO idempotency (scope, key, fingerprint, outcome, created_at)
VALUES (:scope, :key, :fingerprint, '', :at)
ON CONFLICT (scope, key) DO NOTHING
"""
IDEM_GET = "SELECT fingerprint, outcome FROM idempotency WHERE scope = :scope AND key = :key"
IDEM_RECORD = "UPDATE idempotency SET outcome = :outcome WHERE scope = :scope AND key = :key"

CHAIN_ENTRIES = """
SELECT id, client_id, seq, date, amount_cents, admin_id, relid, created_at, actor, description,
       prev_hash, hash, balance_cents, kind, category, expires, remaining
FROM credits WHERE client_id BETWEEN :first AND :last ORDER BY client_id, seq
"""
SLICE_HEADS = """
SELECT id, balance_cents, entries, head_hash FROM clients WHERE id BETWEEN :first AND :last
ORDER BY id
"""
CHAIN_SET = "UPDATE credits SET prev_hash = :prev_hash, hash = :hash WHERE id = :id"
SEAL_HEADS_NOW = "SELECT id, entries, head_hash FROM clients WHERE entries > 0 ORDER BY id"
SEAL_INSERT = """
INSERT INTO seals (at, clients, entries, digest) VALUES (:at, :clients, :entries, :digest)
RETURNING id
"""
SEAL_HEAD_INSERT = """
INSERT INTO seal_heads (seal_id, client_id, seq, hash) VALUES (:seal_id, :client_id, :seq, :hash)
"""
SEAL_FIND = "SELECT id, at, clients, entries, digest FROM seals WHERE digest = :digest ORDER BY id"
SEAL_HEADS = """
SELECT h.client_id, h.seq, h.hash, e.hash FROM seal_heads h
LEFT JOIN credits e ON e.client_id = h.client_id AND e.seq = h.seq
WHERE h.seal_id = :seal_id ORDER BY h.client_id
"""
