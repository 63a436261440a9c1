-- A CHECK without the "table.column" name.
CREATE TABLE threads (
    id INTEGER PRIMARY KEY,
    archived INTEGER NOT NULL CHECK (archived IN (0, 1))
) STRICT;
