-- Imports: which client and admin ids came from which source (a re-run skips them, and a
-- collision with the store's own rows is refused). Imported entries are marked by their actor.
CREATE TABLE imported (
    kind   TEXT NOT NULL,
    id     INTEGER NOT NULL,
    source TEXT NOT NULL,
    at     TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
