-- name: get_thread(id)^
-- One thread.
SELECT id, name, created_at FROM threads WHERE id = :id;
