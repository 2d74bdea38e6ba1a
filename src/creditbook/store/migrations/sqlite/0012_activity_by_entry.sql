-- A credit's activity line is found through its entry: the entry records the line's id, and the
-- index of activity by client covers only the other lines (and those written before this
-- version). One client-ordered index fewer is written per credit.
ALTER TABLE credits ADD COLUMN activity_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE activity ADD COLUMN via_entry INTEGER NOT NULL DEFAULT 0;
DROP INDEX activity_by_client;
CREATE INDEX activity_by_client ON activity (client_id, id) WHERE via_entry = 0;
