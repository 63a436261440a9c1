-- A second file.

-- name: get_thread(id)^
-- The same name again.
SELECT id, name, created_at FROM threads WHERE id = :id;
