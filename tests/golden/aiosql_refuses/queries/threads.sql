-- name: get_thread^
-- aiosql (mandatory_parameters) wants a parameter list.
SELECT id, name, created_at FROM threads WHERE id = ?;
