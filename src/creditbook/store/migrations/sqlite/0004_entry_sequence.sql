-- Number each client's entries 1, 2, 3... and keep the count on the client, so that a page of a
-- long history (and its total) is an index range lookup instead of an OFFSET scan or COUNT(*).
ALTER TABLE clients ADD COLUMN entries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credits ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
UPDATE credits SET seq = r.n
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY id) AS n FROM credits) AS r
WHERE r.id = credits.id;
UPDATE clients SET entries = (SELECT COUNT(*) FROM credits WHERE credits.client_id = clients.id);
CREATE UNIQUE INDEX credits_by_client_seq ON credits (client_id, seq);
DROP INDEX credits_by_client;
