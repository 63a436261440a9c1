-- name: delete_thread(id)!
-- Delete a thread and (by cascade) its messages.
DELETE FROM threads WHERE id = :id;
