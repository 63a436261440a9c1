-- Types the real schema does not (yet) use: nullable enum, bool and timestamp, odd enum values,
-- a secret column, REAL, a composite WITHOUT ROWID key and a table-level CHECK.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL,
    password_hash BLOB NOT NULL,
    tier TEXT CONSTRAINT "accounts.tier" CHECK (tier IN ('free', 'pro-plus', '2fa', 'it''s')),
    verified INTEGER CONSTRAINT "accounts.verified" CHECK (verified IN (0, 1)),
    closed_at TEXT CONSTRAINT "accounts.closed_at" CHECK (
        closed_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
        AND datetime(substr(closed_at, 1, 19)) IS replace(substr(closed_at, 1, 19), 'T', ' ')
    ),
    balance REAL NOT NULL DEFAULT 0.0,
    CONSTRAINT "accounts.login" CHECK (length(login) BETWEEN 1 AND 64)
) STRICT;

CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    followed_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (follower_id, followed_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX follows_followed_id ON follows (followed_id);
