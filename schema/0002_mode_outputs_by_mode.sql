-- Version 2: list a mode's outputs newest first without a sort.
--
-- v1 indexed mode_outputs (mode_id) only, so "outputs of a mode, newest first"
-- sorted every output of the mode. (mode_id, created_at) serves that listing,
-- the lookups by mode_id and the ON DELETE CASCADE from modes alike.

DROP INDEX mode_outputs_mode_id;

-- A mode's outputs newest first (v2).
CREATE INDEX mode_outputs_mode_id_created_at ON mode_outputs (mode_id, created_at);
