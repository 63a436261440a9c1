-- name: threads_named_main()
-- A double-quoted "string" is an identifier on pychat_db connections.
SELECT id, name, created_at FROM threads WHERE name = "main";
