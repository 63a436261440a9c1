-- Messages: a thread's messages in (timestamp, id) order with keyset pagination.
-- Their tags are loaded per page in one query (tags.sql: list_tags_of_messages).

-- name: get_message(id)^
-- One message by id (without its tags).
SELECT
    id,
    thread_id,
    text,
    timestamp,
    type,
    description,
    file_data,
    mime_type,
    transcript,
    file_name
FROM messages
WHERE id = :id;

-- name: list_messages_first(thread_id, page_limit)
-- A thread's first messages in (timestamp, id) order; page_limit -1 means all.
SELECT
    id,
    thread_id,
    text,
    timestamp,
    type,
    description,
    file_data,
    mime_type,
    transcript,
    file_name
FROM messages
WHERE thread_id = :thread_id
ORDER BY timestamp, id
LIMIT :page_limit;

-- name: list_messages_after(thread_id, after_timestamp, after_id, page_limit)
-- A thread's messages after the cursor (timestamp, id), in that order; page_limit -1 means all.
SELECT
    id,
    thread_id,
    text,
    timestamp,
    type,
    description,
    file_data,
    mime_type,
    transcript,
    file_name
FROM messages
WHERE thread_id = :thread_id AND (timestamp, id) > (:after_timestamp, :after_id)
ORDER BY timestamp, id
LIMIT :page_limit;

-- name: list_messages_last(thread_id, page_limit)
-- A thread's latest messages, newest first (timestamp, then id, descending); page_limit -1 means all.
SELECT
    id,
    thread_id,
    text,
    timestamp,
    type,
    description,
    file_data,
    mime_type,
    transcript,
    file_name
FROM messages
WHERE thread_id = :thread_id
ORDER BY timestamp DESC, id DESC
LIMIT :page_limit;

-- name: list_messages_before(thread_id, before_timestamp, before_id, page_limit)
-- A thread's messages before the cursor (timestamp, id), newest first; page_limit -1 means all.
SELECT
    id,
    thread_id,
    text,
    timestamp,
    type,
    description,
    file_data,
    mime_type,
    transcript,
    file_name
FROM messages
WHERE thread_id = :thread_id AND (timestamp, id) < (:before_timestamp, :before_id)
ORDER BY timestamp DESC, id DESC
LIMIT :page_limit;

-- name: list_messages_of_tag(tag_id)
-- The messages carrying a tag, in (timestamp, id) order.
SELECT
    m.id,
    m.thread_id,
    m.text,
    m.timestamp,
    m.type,
    m.description,
    m.file_data,
    m.mime_type,
    m.transcript,
    m.file_name
FROM message_tags AS mt
INNER JOIN messages AS m ON mt.message_id = m.id
WHERE mt.tag_id = :tag_id
ORDER BY m.timestamp, m.id;

-- name: insert_message(id, thread_id, text, timestamp, type, description, file_data, mime_type, transcript, file_name)^
-- Store a new message; a NULL id is assigned by SQLite, a given (legacy) id is kept.
INSERT INTO messages (id, thread_id, text, timestamp, type, description, file_data, mime_type, transcript, file_name)
VALUES (:id, :thread_id, :text, :timestamp, :type, :description, :file_data, :mime_type, :transcript, :file_name)
RETURNING id, thread_id, text, timestamp, type, description, file_data, mime_type, transcript, file_name;

-- name: update_message(id, thread_id, text, timestamp, type, description, file_data, mime_type, transcript, file_name)^
-- Change a message's fields (not its tags); returns nothing when no message has that id.
UPDATE messages SET
    thread_id = :thread_id,
    text = :text,
    timestamp = :timestamp,
    type = :type,
    description = :description,
    file_data = :file_data,
    mime_type = :mime_type,
    transcript = :transcript,
    file_name = :file_name
WHERE id = :id
RETURNING id, thread_id, text, timestamp, type, description, file_data, mime_type, transcript, file_name;

-- name: delete_message(id)$
-- Delete a message and its tag links; returns its id, nothing when absent.
DELETE FROM messages
WHERE id = :id
RETURNING id;
