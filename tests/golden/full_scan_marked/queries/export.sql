-- name: search_messages(text)
-- Messages whose text starts with a prefix.
-- full scan: an offline report over every message; no index serves LIKE.
SELECT m.id, m.text FROM messages AS m WHERE m.text LIKE :text;

-- name: export_message_tags()
-- Every link, in key order.
-- full scan: the export writes every link.
SELECT message_id, tag_id FROM message_tags ORDER BY message_id, tag_id;
