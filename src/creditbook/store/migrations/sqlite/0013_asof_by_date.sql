-- Balances as of a day through an index by entry date instead of one by client and date.
-- Entries are mostly dated the day they are written and ids only grow, so a new entry lands at
-- the end of this index (an append) rather than on a random page of a client-ordered one: one
-- random page fewer per credit. A client's sum up to a day reads its own entries
-- (credits_by_client_seq); every client's (balances --asof) is each balance minus the entries
-- dated after the day, or the entries up to it, whichever side of the index is shorter.
DROP INDEX credits_by_client_date;
CREATE INDEX credits_by_date ON credits (date, id, client_id, amount_cents);
