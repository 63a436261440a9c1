-- Version 1: the legacy (Isar) model as relational tables.
--
-- Conventions (see README "Database"):
--   * ids are INTEGER PRIMARY KEY and keep the legacy ids (full signed 64-bit range);
--   * timestamps are canonical UTC ISO-8601 text, YYYY-MM-DDTHH:MM:SS.ffffffZ,
--     checked for shape and for being a real calendar date and time;
--   * enums are TEXT with a CHECK (... IN (...)) list, booleans INTEGER IN (0, 1);
--   * every table is STRICT; links cascade on delete;
--   * each CHECK is named "table.column", so a violation names both.

-- configuration: the app's single settings row (v1). The API key is a secret:
-- never log it.
CREATE TABLE configuration (
    id INTEGER PRIMARY KEY,
    api_key TEXT NOT NULL,
    base_url TEXT,
    model_name TEXT NOT NULL
) STRICT;

-- At most one configuration row, whatever its (legacy) id (v1).
CREATE UNIQUE INDEX configuration_singleton ON configuration ((1));

-- threads: a conversation (v1).
CREATE TABLE threads (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL CONSTRAINT "threads.created_at" CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
        AND datetime(substr(created_at, 1, 19)) IS replace(substr(created_at, 1, 19), 'T', ' ')
    )
) STRICT;

-- Threads newest first (v1).
CREATE INDEX threads_created_at ON threads (created_at);

-- modes: named prompts; built-in ones are not editable (v1).
CREATE TABLE modes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    prompt TEXT NOT NULL,
    is_editable INTEGER NOT NULL DEFAULT 1 CONSTRAINT "modes.is_editable" CHECK (is_editable IN (0, 1))
) STRICT;

-- tags: labels attached to messages; names are not unique in legacy data (v1).
CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    is_editable INTEGER NOT NULL DEFAULT 1 CONSTRAINT "tags.is_editable" CHECK (is_editable IN (0, 1))
) STRICT;

-- messages: one message of a thread, optionally carrying a file (v1).
-- file_data NULL means "no file"; an empty blob is a (legacy) empty file.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    timestamp TEXT NOT NULL CONSTRAINT "messages.timestamp" CHECK (
        timestamp GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
        AND datetime(substr(timestamp, 1, 19)) IS replace(substr(timestamp, 1, 19), 'T', ' ')
    ),
    type TEXT NOT NULL DEFAULT 'text' CONSTRAINT "messages.type" CHECK (type IN ('text', 'audio', 'image')),
    description TEXT NOT NULL DEFAULT '',
    file_data BLOB,
    mime_type TEXT,
    transcript TEXT,
    file_name TEXT
) STRICT;

-- A thread's messages in timestamp order; the rowid (id) breaks ties (v1).
CREATE INDEX messages_thread_id_timestamp ON messages (thread_id, timestamp);

-- mode_outputs: a mode's result for a thread (v1).
CREATE TABLE mode_outputs (
    id INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    mode_id INTEGER NOT NULL REFERENCES modes (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL CONSTRAINT "mode_outputs.created_at" CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
        AND datetime(substr(created_at, 1, 19)) IS replace(substr(created_at, 1, 19), 'T', ' ')
    ),
    content TEXT NOT NULL
) STRICT;

-- A thread's mode outputs newest first (v1).
CREATE INDEX mode_outputs_thread_id_created_at ON mode_outputs (thread_id, created_at);

-- A mode's outputs; also serves the cascade from modes (v1, replaced in v2).
CREATE INDEX mode_outputs_mode_id ON mode_outputs (mode_id);

-- message_tags: the many-to-many link between messages and tags (v1).
CREATE TABLE message_tags (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, tag_id)
) STRICT, WITHOUT ROWID;

-- The messages of a tag; also serves the cascade from tags (v1).
CREATE INDEX message_tags_tag_id ON message_tags (tag_id);
