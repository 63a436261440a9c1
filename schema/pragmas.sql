-- Pragmas applied to every connection the library opens (pychat_db.connection).
-- Each one is read back by tests/test_connection.py. Order matters: journal_mode
-- must not run inside a transaction.

-- Enforce REFERENCES ... ON DELETE CASCADE; SQLite leaves this off by default.
PRAGMA foreign_keys = ON;

-- Readers never block the writer and the writer never blocks readers.
PRAGMA journal_mode = WAL;

-- In WAL mode NORMAL never corrupts the database; a commit is durable once the
-- next checkpoint syncs (a power cut may lose the last commits, never mix them).
PRAGMA synchronous = NORMAL;

-- Wait up to 5 s for another writer instead of failing at once with SQLITE_BUSY.
PRAGMA busy_timeout = 5000;

-- Functions with side effects may not run from schema objects (views, triggers,
-- CHECKs) of a database someone else crafted.
PRAGMA trusted_schema = OFF;

-- Detect corrupt b-tree cells before they are used instead of crashing on them.
PRAGMA cell_size_check = ON;

-- Temporary b-trees (sorts, the import's index builds) stay in memory.
PRAGMA temp_store = MEMORY;

-- 32 MiB page cache per connection (negative = KiB).
PRAGMA cache_size = -32768;
