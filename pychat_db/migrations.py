"""The migration runner: brings a database to the newest version in `schema/`.

Each `schema/NNNN_name.sql` file is one version. Pending files are applied in
order, each in its own transaction, which also records the version, name,
SHA-256 of the file's text and the time in `schema_migrations` and sets
`PRAGMA user_version`. The runner refuses, changing nothing, a database newer
than the code, an applied file whose text has changed since, and a gap or a
duplicate among the files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import apsw

from pychat_db.errors import MigrationError
from pychat_db.resources import SCHEMA_DIR

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

BOOKKEEPING_TABLE = "schema_migrations"

_CREATE_BOOKKEEPING = f"""
CREATE TABLE IF NOT EXISTS {BOOKKEEPING_TABLE} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    applied_at TEXT NOT NULL
) STRICT
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema file: `version` from its number, `name` from the rest of its name."""

    version: int
    name: str
    path: Path
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    sha256: str
    applied_at: str


@dataclass(frozen=True, slots=True)
class Status:
    current: int
    head: int
    applied: tuple[AppliedMigration, ...]
    pending: tuple[Migration, ...]


def load_migrations(schema_dir: Path = SCHEMA_DIR) -> tuple[Migration, ...]:
    """Read every `NNNN_name.sql` in `schema_dir`; refuse gaps and duplicates."""
    found: dict[int, Migration] = {}
    for path in sorted(schema_dir.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path}: version {version} is also {found[version].path.name}; each version needs one file"
            )
        found[version] = Migration(version, match.group(2), path, path.read_text(encoding="utf-8"))
    migrations = tuple(found[v] for v in sorted(found))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{migration.path}: version {migration.version} follows version {expected - 1}; "
                f"version {expected} is missing"
            )
    return migrations


def applied_migrations(conn: apsw.Connection) -> tuple[AppliedMigration, ...]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (BOOKKEEPING_TABLE,)
    ).fetchone()
    if exists is None:
        return ()
    rows = conn.execute(
        f"SELECT version, name, sha256, applied_at FROM {BOOKKEEPING_TABLE} ORDER BY version"
    ).fetchall()
    return tuple(AppliedMigration(*cast(tuple[int, str, str, str], row)) for row in rows)


def user_version(conn: apsw.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    assert row is not None
    return cast(int, row[0])


def status(conn: apsw.Connection, migrations: Sequence[Migration] | None = None) -> Status:
    """Where the database stands; raises MigrationError if it cannot be migrated."""
    if migrations is None:
        migrations = load_migrations()
    head = migrations[-1].version if migrations else 0
    current = user_version(conn)
    applied = applied_migrations(conn)
    if current > head:
        raise MigrationError(
            f"database is at schema version {current}, newer than this code's {head}; upgrade pychat_db instead"
        )
    if [a.version for a in applied] != list(range(1, current + 1)):
        raise MigrationError(
            f"database says schema version {current} but records versions "
            f"{[a.version for a in applied]} as applied; it was not built by this runner"
        )
    by_version = {m.version: m for m in migrations}
    for record in applied:
        migration = by_version[record.version]
        if record.sha256 != migration.sha256:
            raise MigrationError(
                f"{migration.path.name}: changed since it was applied as version {record.version} "
                f"(sha256 {record.sha256[:12]}… then, {migration.sha256[:12]}… now); "
                "schema history is append-only: add a new migration instead"
            )
    pending = tuple(m for m in migrations if m.version > current)
    return Status(current, head, applied, pending)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextmanager
def _atomic(conn: apsw.Connection) -> Iterator[None]:
    """A savepoint (a transaction when none is open) that is undone if the block raises.

    Not APSW's `with conn:`: after an I/O error or a full disk SQLite has already
    rolled the transaction back, and `with conn:` would then replace the real error
    by "cannot rollback - no transaction is active".
    """
    conn.execute("SAVEPOINT pychat_db_migration")
    try:
        yield
        conn.execute("RELEASE pychat_db_migration")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(apsw.Error):
                conn.execute("ROLLBACK TO pychat_db_migration; RELEASE pychat_db_migration")
        raise


def migrate(
    conn: apsw.Connection,
    migrations: Sequence[Migration] | None = None,
    *,
    target: int | None = None,
    dry_run: bool = False,
) -> tuple[Migration, ...]:
    """Apply pending migrations (up to `target`, default head); return those applied.

    Each file runs in its own transaction with its bookkeeping row and the new
    `user_version`; a failing file is rolled back and raised as MigrationError.
    `dry_run` returns what would be applied and changes nothing.
    """
    state = status(conn, migrations)
    todo = tuple(m for m in state.pending if target is None or m.version <= target)
    if dry_run:
        return todo
    # Foreign key enforcement is off while migrations run, as SQLite's table-rebuild procedure
    # requires: with it on, `DROP TABLE` of a rebuilt parent would cascade-delete its children.
    # Each migration must leave no dangling reference (foreign_key_check) before it commits.
    # (The pragma is a no-op inside a transaction, so it only takes effect when none is open.)
    fk_row = conn.execute("PRAGMA foreign_keys").fetchone()
    enforcing = bool(fk_row and fk_row[0])
    if todo and enforcing:
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for migration in todo:
            try:
                with _atomic(conn):
                    conn.execute(_CREATE_BOOKKEEPING)
                    conn.execute(migration.sql)
                    dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
                    if dangling:
                        table, rowid, parent, _fk = dangling[0]
                        raise MigrationError(
                            f"{migration.path.name}: leaves {len(dangling)} row(s) referencing missing rows "
                            f"(first: {table} rowid {rowid} → {parent}); nothing of it was applied"
                        )
                    conn.execute(
                        f"INSERT INTO {BOOKKEEPING_TABLE} (version, name, sha256, applied_at) VALUES (?, ?, ?, ?)",
                        (migration.version, migration.name, migration.sha256, _now()),
                    )
                    conn.execute(f"PRAGMA user_version = {migration.version:d}")
            except apsw.Error as exc:
                raise MigrationError(f"{migration.path.name}: {exc}") from exc
    finally:
        if todo and enforcing:
            conn.execute("PRAGMA foreign_keys = ON")
    return todo
