-- Mode outputs: a mode's result for a thread, listed newest first per thread or per mode.

-- name: get_mode_output(id)^
-- One mode output by id.
SELECT
    id,
    thread_id,
    mode_id,
    created_at,
    content
FROM mode_outputs
WHERE id = :id;

-- name: list_mode_outputs_of_thread(thread_id)
-- A thread's mode outputs, newest first (created_at, then id, descending).
SELECT
    id,
    thread_id,
    mode_id,
    created_at,
    content
FROM mode_outputs
WHERE thread_id = :thread_id
ORDER BY created_at DESC, id DESC;

-- name: list_mode_outputs_of_mode(mode_id)
-- A mode's outputs over every thread, newest first (created_at, then id, descending).
SELECT
    id,
    thread_id,
    mode_id,
    created_at,
    content
FROM mode_outputs
WHERE mode_id = :mode_id
ORDER BY created_at DESC, id DESC;

-- name: insert_mode_output(id, thread_id, mode_id, created_at, content)^
-- Store a new mode output; a NULL id is assigned by SQLite, a given (legacy) id is kept.
INSERT INTO mode_outputs (id, thread_id, mode_id, created_at, content)
VALUES (:id, :thread_id, :mode_id, :created_at, :content)
RETURNING id, thread_id, mode_id, created_at, content;

-- name: update_mode_output(id, thread_id, mode_id, created_at, content)^
-- Change a mode output's fields; returns nothing when no mode output has that id.
UPDATE mode_outputs SET
    thread_id = :thread_id,
    mode_id = :mode_id,
    created_at = :created_at,
    content = :content
WHERE id = :id
RETURNING id, thread_id, mode_id, created_at, content;

-- name: delete_mode_output(id)$
-- Delete a mode output; returns its id, nothing when absent.
DELETE FROM mode_outputs
WHERE id = :id
RETURNING id;
