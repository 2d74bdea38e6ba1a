-- Credit grants: every added credit is a grant with a category and an optional expiry date; a
-- removal spends grants in a fixed order and records what it took from which; what remains of
-- a grant expires at the end of its expiry day, once.
--   kind: 'grant' (added credit), 'removal', 'expiry', 'restore' (a reversal of a removal, which
--         gives back what it took); '' for entries written before grants (a positive one counts
--         as a paid grant that never expires, a negative one as a removal of paid credit).
--   category, expires: a grant's ('' for an entry written before grants: paid, never); an
--         expiry's category and date are its grant's.
--   remaining: what is left of a grant (kept with the entry; ``verify`` recomputes it).
ALTER TABLE credits ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN expires TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN remaining INTEGER NOT NULL DEFAULT 0;
-- Per client: the lowest number of a grant that never expires with something left (0: none:
-- the oldest-first scan starts there), and the low-balance threshold in force, in cents (-1:
-- none; the client's own, else its currency's).
ALTER TABLE clients ADD COLUMN open_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN low_below INTEGER NOT NULL DEFAULT -1;
-- Credit added before was spent oldest first: what remains of it are the newest additions that
-- add up to the balance.
UPDATE credits SET remaining = r.left_cents
FROM (
    SELECT c.id,
           MIN(c.amount_cents, k.balance_cents - (SUM(c.amount_cents)
               OVER (PARTITION BY c.client_id ORDER BY c.seq DESC) - c.amount_cents))
               AS left_cents
    FROM credits c JOIN clients k ON k.id = c.client_id
    WHERE c.amount_cents > 0
) AS r
WHERE r.id = credits.id AND r.left_cents > 0;
UPDATE clients SET open_from = m.first
FROM (SELECT client_id, MIN(seq) AS first FROM credits WHERE remaining > 0 GROUP BY client_id) AS m
WHERE m.client_id = clients.id;
-- What each spending entry (a removal, an expiry) took from which grant, and what a restore
-- gave back (negative), with the grant's category and the entry's date (for figures by
-- category as of a day). The entry's hash covers its allocations.
CREATE TABLE allocations (
    client_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    grant_seq INTEGER NOT NULL,
    amount    INTEGER NOT NULL,
    category  TEXT NOT NULL,
    date      TEXT NOT NULL,
    PRIMARY KEY (client_id, seq, grant_seq)
);
CREATE INDEX allocations_by_date ON allocations (date, client_id, category, amount);
-- Grants with an expiry date and something left, by client (spending order) and by date (the
-- expiry run); open grants of a category other than paid (figures by category). Partial, so
-- paid credit that never expires, the common case, costs no index entry.
CREATE INDEX credits_expiring_by_client ON credits (client_id, expires, seq)
    WHERE expires <> '' AND remaining > 0;
CREATE INDEX credits_expiring ON credits (expires, client_id, seq)
    WHERE expires <> '' AND remaining > 0;
CREATE INDEX credits_open_by_category ON credits (client_id, category, remaining)
    WHERE remaining > 0 AND category NOT IN ('', 'paid');
-- Categories, with the expiry period in days a grant of each gets when it names none (0: never).
CREATE TABLE categories (
    name         TEXT PRIMARY KEY,
    expires_days INTEGER NOT NULL DEFAULT 0,
    builtin      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO categories (name, expires_days, builtin) VALUES
    ('paid', 0, 1), ('promotional', 90, 1), ('goodwill', 0, 1), ('refund', 0, 1);
-- Low-balance thresholds: per currency (client_id 0) and per client (overriding it).
CREATE TABLE alerts (
    client_id   INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    below_cents INTEGER NOT NULL,
    PRIMARY KEY (client_id, currency)
);
-- Grants whose credit.expiring event was written (once per grant).
CREATE TABLE grant_notices (
    client_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (client_id, seq)
);
