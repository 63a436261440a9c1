-- Threads: conversations, listed newest first with keyset pagination on (created_at, id).

-- name: get_thread(id)^
-- One thread by id.
SELECT
    id,
    name,
    created_at
FROM threads
WHERE id = :id;

-- name: list_threads_first(page_limit)
-- The newest threads, newest first (created_at, then id, descending); page_limit -1 means all.
SELECT
    id,
    name,
    created_at
FROM threads
ORDER BY created_at DESC, id DESC
LIMIT :page_limit;

-- name: list_threads_before(before_created_at, before_id, page_limit)
-- The threads older than the cursor (created_at, id), newest first; page_limit -1 means all.
SELECT
    id,
    name,
    created_at
FROM threads
WHERE (created_at, id) < (:before_created_at, :before_id)
ORDER BY created_at DESC, id DESC
LIMIT :page_limit;

-- name: insert_thread(id, name, created_at)^
-- Store a new thread; a NULL id is assigned by SQLite, a given (legacy) id is kept.
INSERT INTO threads (id, name, created_at)
VALUES (:id, :name, :created_at)
RETURNING id, name, created_at;

-- name: update_thread(id, name, created_at)^
-- Change a thread's fields; returns nothing when no thread has that id.
UPDATE threads SET
    name = :name,
    created_at = :created_at
WHERE id = :id
RETURNING id, name, created_at;

-- name: delete_thread(id)$
-- Delete a thread, its messages (and their tag links) and mode outputs; returns its id, nothing when absent.
DELETE FROM threads
WHERE id = :id
RETURNING id;
