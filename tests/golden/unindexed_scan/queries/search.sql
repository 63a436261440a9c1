-- name: search_messages(text)
-- Messages whose text starts with a prefix: no index serves LIKE here.
SELECT m.id, m.text FROM messages AS m WHERE m.text LIKE :text;
