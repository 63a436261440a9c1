-- Every operation kind and typing rule, against the real schema.

-- name: get_thread(id)^
-- One thread by id.
SELECT id, name, created_at FROM threads WHERE id = :id;

-- name: list_threads_before(before_created_at, page_limit)
-- Threads older than the cursor, newest first.
SELECT id, name, created_at FROM threads
WHERE created_at < :before_created_at
ORDER BY created_at DESC
LIMIT :page_limit;

-- name: thread_names_with_counts(thread_id)
-- A thread's name and message count; a LEFT JOIN makes the message side nullable.
-- column n: int
SELECT t.name, m.type, count(m.id) AS n
FROM threads AS t
LEFT JOIN messages AS m ON t.id = m.thread_id
WHERE t.id = :thread_id
GROUP BY t.name, m.type;

-- name: count_messages_of_type(thread_id, kind)$
-- How many of a thread's messages have a type.
-- param kind: messages.type
-- column n: int
SELECT count(*) AS n FROM messages WHERE thread_id = :thread_id AND type = :kind;

-- name: latest_message_time(thread_id)$
-- When the thread's newest message was written.
-- column latest: messages.timestamp | None
SELECT max(timestamp) AS latest FROM messages WHERE thread_id = :thread_id;

-- name: insert_tag(id, name, description, is_editable)<!
-- Store a tag; returns its id.
INSERT INTO tags (id, name, description, is_editable)
VALUES (:id, :name, :description, :is_editable)
RETURNING id;

-- name: rename_mode(id, name)<!
-- Rename a mode; returns it.
UPDATE modes SET name = :name WHERE id = :id RETURNING id, name;

-- name: delete_tags_of_messages(message_ids)!
-- Unlink every tag from the messages (a JSON array of ids).
DELETE FROM message_tags WHERE message_id IN (SELECT value FROM json_each(:message_ids));

-- name: add_links*!
-- Link many tags to messages.
INSERT INTO message_tags (message_id, tag_id) VALUES (:message_id, :tag_id);

-- name: vacuum_tags#
-- Forget unused editable tags.
DELETE FROM tags WHERE is_editable = 1 AND id NOT IN (SELECT tag_id FROM message_tags);
