-- name: get_thread()^
-- Positional parameters cannot be typed or named.
SELECT id, name, created_at FROM threads WHERE id = ?;
