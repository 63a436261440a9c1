-- name: export_messages()
-- Every message id.
-- full scan:
SELECT id FROM messages ORDER BY id;
