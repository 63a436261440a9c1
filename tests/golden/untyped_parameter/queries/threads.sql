-- name: threads_named_like(pattern)
-- Threads whose name matches a GLOB pattern.
SELECT id, name, created_at FROM threads WHERE name GLOB :pattern;
