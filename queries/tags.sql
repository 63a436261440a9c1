-- Tags: labels on messages, and the message_tags links between them.

-- name: get_tag(id)^
-- One tag by id.
SELECT
    id,
    name,
    description,
    is_editable
FROM tags
WHERE id = :id;

-- name: list_tags()
-- Every tag, by name and id.
SELECT
    id,
    name,
    description,
    is_editable
FROM tags
ORDER BY name, id;

-- name: insert_tag(id, name, description, is_editable)^
-- Store a new tag; a NULL id is assigned by SQLite, a given (legacy) id is kept.
INSERT INTO tags (id, name, description, is_editable)
VALUES (:id, :name, :description, :is_editable)
RETURNING id, name, description, is_editable;

-- name: update_tag(id, name, description, is_editable)^
-- Change a tag's fields; returns nothing when no tag has that id.
UPDATE tags SET
    name = :name,
    description = :description,
    is_editable = :is_editable
WHERE id = :id
RETURNING id, name, description, is_editable;

-- name: delete_tag(id)$
-- Delete a tag and its links to messages; returns its id, nothing when absent.
DELETE FROM tags
WHERE id = :id
RETURNING id;

-- name: list_tags_of_message(message_id)
-- The tags of one message, by tag id.
SELECT
    t.id,
    t.name,
    t.description,
    t.is_editable
FROM message_tags AS mt
INNER JOIN tags AS t ON mt.tag_id = t.id
WHERE mt.message_id = :message_id
ORDER BY mt.tag_id;

-- name: list_tags_of_messages(message_ids)
-- The tags of a page of messages in one query: message_ids is a JSON array of ids; rows by message, then tag id.
SELECT
    mt.message_id,
    t.id,
    t.name,
    t.description,
    t.is_editable
FROM json_each(:message_ids) AS page
INNER JOIN message_tags AS mt ON page.value = mt.message_id
INNER JOIN tags AS t ON mt.tag_id = t.id
ORDER BY mt.message_id, mt.tag_id;

-- name: attach_tag(message_id, tag_id)$
-- Link a tag to a message (nothing changes when already linked); returns the message id when a link was added.
INSERT INTO message_tags (message_id, tag_id)
VALUES (:message_id, :tag_id)
ON CONFLICT DO NOTHING
RETURNING message_id;

-- name: detach_tag(message_id, tag_id)$
-- Unlink a tag from a message; returns the message id when a link was removed.
DELETE FROM message_tags
WHERE message_id = :message_id AND tag_id = :tag_id
RETURNING message_id;

-- name: detach_tags_not_in(message_id, tag_ids)
-- Remove the message's links to tags whose ids are not in tag_ids (a JSON array); returns the removed tag ids.
DELETE FROM message_tags
WHERE message_id = :message_id AND tag_id NOT IN (SELECT keep.value FROM json_each(:tag_ids) AS keep)
RETURNING tag_id;

-- name: attach_tags(message_id, tag_ids)
-- Link every tag in tag_ids (a JSON array) to the message, keeping existing links; returns the added tag ids.
INSERT INTO message_tags (message_id, tag_id)
SELECT
    :message_id AS message_id,
    wanted.value AS tag_id
FROM json_each(:tag_ids) AS wanted
WHERE true
ON CONFLICT DO NOTHING
RETURNING tag_id;
