-- Balances as of a date: each client's entries by credit date, with their amounts, so that the
-- sum up to a day is an index range scan (GetCredits/GetClientsDetails asof, balances --asof).
CREATE INDEX credits_by_client_date ON credits (client_id, date, amount_cents);
