-- A messages table whose foreign key has no index: deleting a thread scans every message.
CREATE TABLE threads (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
) STRICT;

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    text TEXT NOT NULL
) STRICT;
