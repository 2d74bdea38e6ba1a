-- The web console's second pass.
-- Finding clients whatever the case and accents: each client keeps its searchable text folded
-- (``rules.fold``: lower case, accents off, "ø" as "o"...) and its display name folded as a
-- sort key; both are written by Creditbook (``migrate`` fills them in for existing clients).
ALTER TABLE clients ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN sort_key TEXT NOT NULL DEFAULT '';
CREATE INDEX clients_by_sort_key ON clients (sort_key, id);
DROP INDEX clients_by_name;
-- A reversal names the entry it writes (by its client's sequence number), so the history links
-- a reversal and the entry it reverses both ways; those written before are found by their
-- description.
ALTER TABLE reversals ADD COLUMN reversal_seq BIGINT NOT NULL DEFAULT 0;
UPDATE reversals SET reversal_seq = COALESCE((
    SELECT MIN(c.seq) FROM credits c
    WHERE c.client_id = reversals.client_id
      AND c.description LIKE 'Reversal of entry #' || reversals.entry_id || ':%'), 0);
CREATE INDEX reversals_by_reversal ON reversals (client_id, reversal_seq);

-- The batch function of migration 0014, now refusing credit added to a closed client
-- ('closed'); removals (refunds) from a closed client go through.
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
    low_day TEXT;
    low_run BIGINT;
    later_total BIGINT;
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
    act_seq REGCLASS := pg_get_serial_sequence('activity', 'id')::regclass;
BEGIN
    FOR i IN
        SELECT t.ord::INT FROM unnest(p_client) WITH ORDINALITY AS t(cid, ord) ORDER BY t.cid, t.ord
    LOOP
        IF current_client IS DISTINCT FROM p_client[i] THEN
            IF found_client THEN
                UPDATE clients SET balance_cents = bal, entries = cnt, head_hash = head,
                                   last_date = last
                WHERE id = current_client;
            END IF;
            current_client := p_client[i];
            SELECT c.balance_cents, c.entries, c.head_hash, c.last_date, c.status = 'Closed'
            INTO bal, cnt, head, last, closed
            FROM clients c WHERE c.id = current_client FOR UPDATE;
            found_client := FOUND;
        END IF;
        IF NOT found_client THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'notfound'::TEXT;
            CONTINUE;
        END IF;
        next_bal := bal + p_amount[i];
        IF closed AND p_amount[i] > 0 THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'closed'::TEXT;
            CONTINUE;
        END IF;
        IF p_amount[i] < 0 AND p_date[i] < last AND next_bal >= 0 THEN
            -- Dated before another of the client's entries: the lowest balance at the end of
            -- a day from its date on (stored entries and this batch's) must cover it too.
            WITH later AS (
                SELECT e.date AS d, e.amount_cents AS a FROM credits e
                WHERE e.client_id = current_client AND e.date > p_date[i]
                UNION ALL
                SELECT p_date[k], p_amount[k] FROM unnest(e_op) AS x(k)
                WHERE p_client[k] = current_client AND p_date[k] > p_date[i]
            ), days AS (
                SELECT d, SUM(a) AS a FROM later GROUP BY d
            ), runs AS (
                SELECT d, SUM(a) OVER (ORDER BY d) AS r, SUM(a) OVER () AS t FROM days
            )
            SELECT d, r, t INTO low_day, low_run, later_total FROM runs ORDER BY r, d LIMIT 1;
            IF NOT FOUND THEN
                low_day := p_date[i]; low_run := 0; later_total := 0;
            END IF;
            IF low_run > 0 THEN
                low_day := p_date[i]; low_run := 0;
            END IF;
            IF bal - later_total + low_run + p_amount[i] < 0 THEN
                r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
                r_outcome := r_outcome
                    || ('backdated:' || low_day || ':' || (bal - later_total + low_run))::TEXT;
                CONTINUE;
            END IF;
        END IF;
        IF next_bal < 0 THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'insufficient'::TEXT;
        ELSIF next_bal > p_max THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'limit'::TEXT;
        ELSE
            bal := next_bal;
            cnt := cnt + 1;
            last := GREATEST(last, p_date[i]);
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
        UPDATE clients SET balance_cents = bal, entries = cnt, head_hash = head, last_date = last
        WHERE id = current_client;
    END IF;
    -- One number per applied credit, ascending along e_op (so along each client's entries).
    SELECT COALESCE(array_agg(n ORDER BY n), '{}') INTO e_act
    FROM (SELECT nextval(act_seq) AS n
          FROM generate_series(1, cardinality(e_op))) AS ids;
    INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                         balance_cents, relid, created_at, actor, prev_hash, hash, activity_id)
    SELECT p_client[k], s, p_admin[k], p_date[k], p_description[k], p_amount[k], b, 0, p_at[k],
           p_actor[k], pv, h, a
    FROM unnest(e_op, e_seq, e_balance, e_prev, e_hash, e_act) AS e(k, s, b, pv, h, a) ORDER BY k;
    INSERT INTO activity (id, at, actor, admin_id, client_id, ip, action, detail, via_entry)
    SELECT a, p_at[k], p_actor[k], p_actor_admin[k], p_client[k], p_ip[k], 'addcredit',
           p_detail[k], 1
    FROM unnest(e_op, e_act) AS e(k, a) ORDER BY a;
    IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled = 1) THEN
        INSERT INTO events (uid, type, client_id, seq, at)
        SELECT 'evt_' || replace(gen_random_uuid()::text, '-', ''),
               CASE WHEN p_amount[k] > 0 THEN 'credit.added' ELSE 'credit.removed' END,
               p_client[k], s, p_at[k]
        FROM unnest(e_op, e_seq) AS e(k, s) ORDER BY k;
    END IF;
    RETURN QUERY SELECT * FROM unnest(r_op, r_balance, r_outcome);
END
$$;
