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
ALTER TABLE credits ADD COLUMN remaining BIGINT NOT NULL DEFAULT 0;
-- Per client: the lowest number of a grant that never expires with something left (0: none:
-- the oldest-first scan starts there), and the low-balance threshold in force, in cents (-1:
-- none; the client's own, else its currency's).
ALTER TABLE clients ADD COLUMN open_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN low_below BIGINT NOT NULL DEFAULT -1;
-- Credit added before was spent oldest first: what remains of it are the newest additions that
-- add up to the balance.
UPDATE credits SET remaining = r.left_cents
FROM (
    SELECT c.id,
           LEAST(c.amount_cents, k.balance_cents - (SUM(c.amount_cents)
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
    client_id BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    grant_seq BIGINT NOT NULL,
    amount    BIGINT NOT NULL,
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
    expires_days BIGINT NOT NULL DEFAULT 0,
    builtin      BIGINT NOT NULL DEFAULT 0
);
INSERT INTO categories (name, expires_days, builtin) VALUES
    ('paid', 0, 1), ('promotional', 90, 1), ('goodwill', 0, 1), ('refund', 0, 1);
-- Low-balance thresholds: per currency (client_id 0) and per client (overriding it).
CREATE TABLE alerts (
    client_id   BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    below_cents BIGINT NOT NULL,
    PRIMARY KEY (client_id, currency)
);
-- Grants whose credit.expiring event was written (once per grant).
CREATE TABLE grant_notices (
    client_id BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (client_id, seq)
);

-- The batch function now applies plain grants only (paid credit that never expires: the
-- AddCredit hot path, whose entries hash as before); removals, expiries, restores and grants
-- with a category or an expiry date are applied by Creditbook's row path, which allocates.
-- Each grant is its own remaining amount, opens the client's oldest-first scan when none was
-- open, and a balance brought back to at or above the client's threshold raises
-- balance.recovered.
CREATE OR REPLACE FUNCTION creditbook_apply_credits(
    p_client BIGINT[], p_amount BIGINT[], p_admin BIGINT[], p_date TEXT[],
    p_description TEXT[], p_at TEXT[], p_actor TEXT[], p_actor_admin BIGINT[], p_ip TEXT[],
    p_detail TEXT[], p_max BIGINT
) RETURNS TABLE (op INT, balance BIGINT, outcome TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    i INT;
    current_client BIGINT := NULL;
    found_client BOOLEAN := FALSE;
    bal BIGINT;
    cnt BIGINT;
    head TEXT;
    last TEXT;
    closed BOOLEAN;
    opened BIGINT;
    below BIGINT;
    next_bal BIGINT;
    r_op INT[] := '{}';
    r_balance BIGINT[] := '{}';
    r_outcome TEXT[] := '{}';
    e_op INT[] := '{}';
    e_seq BIGINT[] := '{}';
    e_balance BIGINT[] := '{}';
    e_prev TEXT[] := '{}';
    e_hash TEXT[] := '{}';
    e_act BIGINT[] := '{}';
    a_op INT[] := '{}';
    a_before BIGINT[] := '{}';
    a_below BIGINT[] := '{}';
    act_seq REGCLASS := pg_get_serial_sequence('activity', 'id')::regclass;
BEGIN
    FOR i IN
        SELECT t.ord::INT FROM unnest(p_client) WITH ORDINALITY AS t(cid, ord) ORDER BY t.cid, t.ord
    LOOP
        IF current_client IS DISTINCT FROM p_client[i] THEN
            IF found_client THEN
                UPDATE clients SET balance_cents = bal, entries = cnt, head_hash = head,
                                   last_date = last, open_from = opened
                WHERE id = current_client;
            END IF;
            current_client := p_client[i];
            SELECT c.balance_cents, c.entries, c.head_hash, c.last_date, c.status = 'Closed',
                   c.open_from, c.low_below
            INTO bal, cnt, head, last, closed, opened, below
            FROM clients c WHERE c.id = current_client FOR UPDATE;
            found_client := FOUND;
        END IF;
        IF NOT found_client THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'notfound'::TEXT;
            CONTINUE;
        END IF;
        next_bal := bal + p_amount[i];
        IF closed THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'closed'::TEXT;
        ELSIF next_bal > p_max THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'limit'::TEXT;
        ELSE
            IF below >= 0 AND bal < below AND next_bal >= below THEN
                a_op := a_op || i; a_before := a_before || bal; a_below := a_below || below;
            END IF;
            bal := next_bal;
            cnt := cnt + 1;
            last := GREATEST(last, p_date[i]);
            IF opened = 0 THEN
                opened := cnt;
            END IF;
            e_prev := e_prev || head;
            -- The canonical text and hash of an entry, character for character the same as
            -- creditbook/chain.py (inline: a function call per credit cost a tenth of it).
            head := encode(sha256(convert_to(concat_ws('|', 'creditbook-entry-v1',
                p_client[i]::text, cnt::text, p_date[i], p_amount[i]::text, p_admin[i]::text,
                '0', p_at[i], length(p_actor[i])::text || ':' || p_actor[i],
                length(p_description[i])::text || ':' || p_description[i], head), 'UTF8')),
                'hex');
            e_hash := e_hash || head;
            r_op := r_op || i; r_balance := r_balance || bal; r_outcome := r_outcome || 'ok'::TEXT;
            e_op := e_op || i; e_seq := e_seq || cnt; e_balance := e_balance || bal;
        END IF;
    END LOOP;
    IF found_client THEN
        UPDATE clients SET balance_cents = bal, entries = cnt, head_hash = head, last_date = last,
                           open_from = opened
        WHERE id = current_client;
    END IF;
    -- One number per applied credit, ascending along e_op (so along each client's entries).
    SELECT COALESCE(array_agg(n ORDER BY n), '{}') INTO e_act
    FROM (SELECT nextval(act_seq) AS n
          FROM generate_series(1, cardinality(e_op))) AS ids;
    INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                         balance_cents, relid, created_at, actor, prev_hash, hash, activity_id,
                         kind, category, expires, remaining)
    SELECT p_client[k], s, p_admin[k], p_date[k], p_description[k], p_amount[k], b, 0, p_at[k],
           p_actor[k], pv, h, a, 'grant', 'paid', '', p_amount[k]
    FROM unnest(e_op, e_seq, e_balance, e_prev, e_hash, e_act) AS e(k, s, b, pv, h, a) ORDER BY k;
    INSERT INTO activity (id, at, actor, admin_id, client_id, ip, action, detail, via_entry)
    SELECT a, p_at[k], p_actor[k], p_actor_admin[k], p_client[k], p_ip[k], 'addcredit',
           p_detail[k], 1
    FROM unnest(e_op, e_act) AS e(k, a) ORDER BY a;
    IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled = 1) THEN
        INSERT INTO events (uid, type, client_id, seq, data, at)
        SELECT 'evt_' || replace(gen_random_uuid()::text, '-', ''), v.type, v.client_id, v.seq,
               v.data, v.at
        FROM (
            SELECT k, 0 AS n, 'credit.added' AS type, p_client[k] AS client_id, s AS seq,
                   '' AS data, p_at[k] AS at
            FROM unnest(e_op, e_seq) AS e(k, s)
            UNION ALL
            SELECT k, 1, 'balance.recovered', p_client[k], e.s,
                   '{"previous_balance":"' || (b / 100)::text || '.' || lpad((b % 100)::text, 2, '0')
                   || '","threshold":"' || (w / 100)::text || '.' || lpad((w % 100)::text, 2, '0')
                   || '"}', p_at[k]
            FROM unnest(a_op, a_before, a_below) AS a(k, b, w)
            JOIN unnest(e_op, e_seq) AS e(j, s) ON e.j = a.k
        ) AS v ORDER BY v.k, v.n;
    END IF;
    RETURN QUERY SELECT * FROM unnest(r_op, r_balance, r_outcome);
END
$$;
