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
ALTER TABLE reversals ADD COLUMN reversal_seq INTEGER NOT NULL DEFAULT 0;
UPDATE reversals SET reversal_seq = COALESCE((
    SELECT MIN(c.seq) FROM credits c
    WHERE c.client_id = reversals.client_id
      AND c.description LIKE 'Reversal of entry #' || reversals.entry_id || ':%'), 0);
CREATE INDEX reversals_by_reversal ON reversals (client_id, reversal_seq);

