-- Group commit on PostgreSQL: apply a batch of credits in one call (one round trip).
-- Operations are applied in their given order per client, each checked on its own: a refused
-- operation (no such client, overdraft, over the limit) changes nothing and does not affect the
-- others. Each touched client row is locked once (in id order, so concurrent batches cannot
-- deadlock) and updated once, however many credits it receives.
CREATE FUNCTION creditbook_apply_credits(
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
    next_bal BIGINT;
    r_op INT[] := '{}';
    r_balance BIGINT[] := '{}';
    r_outcome TEXT[] := '{}';
    e_op INT[] := '{}';
    e_seq BIGINT[] := '{}';
    e_balance BIGINT[] := '{}';
BEGIN
    FOR i IN
        SELECT t.ord::INT FROM unnest(p_client) WITH ORDINALITY AS t(cid, ord) ORDER BY t.cid, t.ord
    LOOP
        IF current_client IS DISTINCT FROM p_client[i] THEN
            IF found_client THEN
                UPDATE clients SET balance_cents = bal, entries = cnt WHERE id = current_client;
            END IF;
            current_client := p_client[i];
            SELECT c.balance_cents, c.entries INTO bal, cnt
            FROM clients c WHERE c.id = current_client FOR UPDATE;
            found_client := FOUND;
        END IF;
        IF NOT found_client THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'notfound'::TEXT;
            CONTINUE;
        END IF;
        next_bal := bal + p_amount[i];
        IF next_bal < 0 THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'insufficient'::TEXT;
        ELSIF next_bal > p_max THEN
            r_op := r_op || i; r_balance := r_balance || NULL::BIGINT;
            r_outcome := r_outcome || 'limit'::TEXT;
        ELSE
            bal := next_bal;
            cnt := cnt + 1;
            r_op := r_op || i; r_balance := r_balance || bal; r_outcome := r_outcome || 'ok'::TEXT;
            e_op := e_op || i; e_seq := e_seq || cnt; e_balance := e_balance || bal;
        END IF;
    END LOOP;
    IF found_client THEN
        UPDATE clients SET balance_cents = bal, entries = cnt WHERE id = current_client;
    END IF;
    INSERT INTO credits (client_id, seq, admin_id, date, description, amount_cents,
                         balance_cents, relid, created_at)
    SELECT p_client[k], s, p_admin[k], p_date[k], p_description[k], p_amount[k], b, 0, p_at[k]
    FROM unnest(e_op, e_seq, e_balance) AS e(k, s, b) ORDER BY k;
    INSERT INTO activity (at, actor, admin_id, client_id, ip, action, detail)
    SELECT p_at[k], p_actor[k], p_actor_admin[k], p_client[k], p_ip[k], 'addcredit', p_detail[k]
    FROM unnest(e_op) AS e(k) ORDER BY k;
    RETURN QUERY SELECT * FROM unnest(r_op, r_balance, r_outcome);
END
$$;
