-- Configuration: the app's single settings row (the schema allows at most one).
-- The API key is a secret: these queries never log it, callers must not either.

-- name: get_configuration()^
-- The configuration row, or nothing when none was saved yet.
SELECT
    id,
    api_key,
    base_url,
    model_name
FROM configuration;

-- name: upsert_configuration(id, api_key, base_url, model_name)^
-- Save the configuration: insert it, or replace the single row (keeping its id unless one is given).
INSERT INTO configuration (id, api_key, base_url, model_name)
VALUES (coalesce(:id, (SELECT c.id FROM configuration AS c)), :api_key, :base_url, :model_name)
ON CONFLICT DO UPDATE SET
    id = excluded.id,
    api_key = excluded.api_key,
    base_url = excluded.base_url,
    model_name = excluded.model_name
RETURNING id, api_key, base_url, model_name;

-- name: delete_configuration()$
-- Forget the configuration; returns the id of the removed row, nothing when there was none.
DELETE FROM configuration
RETURNING id;
