-- name: count_threads()$
-- How many threads there are.
SELECT count(*) AS n FROM threads;
