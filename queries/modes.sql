-- Modes: named prompts run over a thread; the built-in ones are seeded here, once.

-- name: get_mode(id)^
-- One mode by id.
SELECT
    id,
    name,
    prompt,
    is_editable
FROM modes
WHERE id = :id;

-- name: list_modes()
-- Every mode, built-in ones first, then by name and id.
SELECT
    id,
    name,
    prompt,
    is_editable
FROM modes
ORDER BY is_editable, name, id;

-- name: insert_mode(id, name, prompt, is_editable)^
-- Store a new mode; a NULL id is assigned by SQLite, a given (legacy) id is kept.
INSERT INTO modes (id, name, prompt, is_editable)
VALUES (:id, :name, :prompt, :is_editable)
RETURNING id, name, prompt, is_editable;

-- name: update_mode(id, name, prompt, is_editable)^
-- Change a mode's fields; returns nothing when no mode has that id.
UPDATE modes SET
    name = :name,
    prompt = :prompt,
    is_editable = :is_editable
WHERE id = :id
RETURNING id, name, prompt, is_editable;

-- name: delete_mode(id)$
-- Delete a mode and its outputs; returns its id, nothing when absent.
DELETE FROM modes
WHERE id = :id
RETURNING id;

-- name: seed_builtin_modes()
-- Insert the built-in (not editable) modes when the modes table is empty; returns the rows inserted.
-- This list is the one definition of the built-in modes.
INSERT INTO modes (name, prompt, is_editable)
SELECT
    builtin.column1,
    builtin.column2,
    0 AS is_editable
FROM (
    VALUES
    (
        'Summary',
        'Summarise this conversation in a few short paragraphs. Keep names, numbers and decisions; leave out small talk.'
    ),
    (
        'Action items',
        'List the action items agreed in this conversation as a checklist: who does what, and by when if said.'
    ),
    (
        'Key points',
        'List the key points of this conversation as short bullet points, most important first.'
    ),
    (
        'Translate',
        'Translate this conversation into English, keeping who said what. Leave text already in English as it is.'
    ),
    (
        'Questions',
        'List the questions raised in this conversation that were not answered.'
    )
) AS builtin
WHERE NOT EXISTS (SELECT 1 FROM modes)
RETURNING id, name, prompt, is_editable;
