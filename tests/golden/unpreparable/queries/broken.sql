-- name: get_thread(id)^
-- A typo in a column name.
SELECT id, nme FROM threads WHERE id = :id;
