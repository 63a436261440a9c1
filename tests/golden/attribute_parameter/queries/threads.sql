-- name: rename_thread(t)^
-- aiosql turns :t.name into :t__name and expects t=obj at call time; the wrappers pass values by name.
UPDATE threads SET name = :t.name WHERE id = :t.id RETURNING id, name, created_at;
