-- The second hardening round.
-- A removal keeps the balance at zero or more at the end of every day from its date on. Each
-- client keeps the latest date among its entries: only a removal dated before it (back-dated,
-- or among future-dated entries) needs to read the client's history to be checked.
ALTER TABLE clients ADD COLUMN last_date TEXT NOT NULL DEFAULT '';
UPDATE clients SET last_date = m.d
FROM (SELECT client_id, MAX(date) AS d FROM credits GROUP BY client_id) AS m
WHERE m.client_id = clients.id;
-- A login whose password takes a slow hash reserves its attempt first (a failure unless the
-- password was right, when the reservation, known by its token, is taken back).
ALTER TABLE auth_failures ADD COLUMN token TEXT NOT NULL DEFAULT '';
CREATE INDEX auth_failures_by_token ON auth_failures (token) WHERE token <> '';
-- Bulk-credit rows are known by their content (client, amount, type, description, date), so
-- the same rows in a re-saved or corrected file are recognised; the file's name is kept for
-- the preview's "already applied on <date> from <file>".
ALTER TABLE bulk_rows ADD COLUMN content TEXT NOT NULL DEFAULT '';
ALTER TABLE bulk_rows ADD COLUMN file_name TEXT NOT NULL DEFAULT '';
CREATE INDEX bulk_rows_by_content ON bulk_rows (content, at);
-- A console session carries a one-time message to show on its next page ("Credit saved: ..."),
-- so reopening a page never shows it again.
ALTER TABLE console_sessions ADD COLUMN flash TEXT NOT NULL DEFAULT '';
