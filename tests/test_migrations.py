"""The migration runner: applying, bookkeeping, every refusal, dry runs, the CLI, and old → head equality."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import apsw
import pytest

from codegen.schema import BOOL, ENUM, TIMESTAMP, Schema, diff_snapshots, introspect, snapshot
from pychat_db.connection import connect
from pychat_db.errors import MigrationError
from pychat_db.migrations import Migration, load_migrations, migrate, status, user_version
from pychat_db.resources import SCHEMA_DIR

MIGRATIONS = load_migrations()
HEAD = MIGRATIONS[-1].version
SNAPSHOTS = SCHEMA_DIR / "snapshots"
Run = Callable[..., subprocess.CompletedProcess[str]]


def schema_dump(conn: apsw.Connection) -> list[tuple[Any, ...]]:
    """Everything SQLite knows about the schema, and the version: nothing may change when refused."""
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name").fetchall()
    return [*rows, ("user_version", user_version(conn))]


def copy_schema(tmp_path: Path, versions: int = HEAD) -> Path:
    directory = tmp_path / "schema"
    directory.mkdir()
    for migration in MIGRATIONS[:versions]:
        shutil.copy(migration.path, directory / migration.path.name)
    return directory


def test_migrate_applies_every_version_and_records_it(tmp_path: Path) -> None:
    conn = connect(tmp_path / "chat.db")
    applied = migrate(conn)
    assert [m.version for m in applied] == list(range(1, HEAD + 1))
    assert user_version(conn) == HEAD
    rows = conn.execute("SELECT version, name, sha256, applied_at FROM schema_migrations ORDER BY version").fetchall()
    for (version, name, sha, applied_at), migration in zip(rows, MIGRATIONS, strict=True):
        assert (version, name) == (migration.version, migration.name)
        assert sha == hashlib.sha256(migration.path.read_bytes()).hexdigest()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", applied_at)
    assert migrate(conn) == ()  # idempotent
    assert status(conn).pending == ()


@pytest.fixture
def memory_db_empty() -> apsw.Connection:
    return connect(":memory:")


def test_target_stops_at_a_version(memory_db_empty: apsw.Connection) -> None:
    migrate(memory_db_empty, target=1)
    assert user_version(memory_db_empty) == 1
    assert [m.version for m in status(memory_db_empty).pending] == list(range(2, HEAD + 1))


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "chat.db")
    before = schema_dump(conn)
    would = migrate(conn, dry_run=True)
    assert [m.version for m in would] == list(range(1, HEAD + 1))
    assert schema_dump(conn) == before
    migrate(conn, target=1)
    before = schema_dump(conn)
    assert [m.version for m in migrate(conn, dry_run=True)] == list(range(2, HEAD + 1))
    assert schema_dump(conn) == before


def test_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    conn = connect(tmp_path / "chat.db")
    migrate(conn)
    before = schema_dump(conn)
    older_code = load_migrations(copy_schema(tmp_path, versions=1))
    with pytest.raises(MigrationError, match=rf"^database is at schema version {HEAD}, newer than this code's 1; "):
        migrate(conn, older_code)
    assert schema_dump(conn) == before


def test_refuses_an_applied_file_whose_text_changed(tmp_path: Path) -> None:
    schema_dir = copy_schema(tmp_path)
    conn = connect(tmp_path / "chat.db")
    migrate(conn, load_migrations(schema_dir), target=1)
    before = schema_dump(conn)
    first = schema_dir / MIGRATIONS[0].path.name
    first.write_text(first.read_text(encoding="utf-8") + "\n-- an innocent-looking edit\n", encoding="utf-8")
    with pytest.raises(MigrationError, match=rf"^{re.escape(first.name)}: changed since it was applied as version 1 "):
        migrate(conn, load_migrations(schema_dir))
    assert schema_dump(conn) == before


def test_refuses_a_gap_in_versions(tmp_path: Path) -> None:
    schema_dir = copy_schema(tmp_path, versions=1)
    (schema_dir / "0003_later.sql").write_text("CREATE TABLE later (id INTEGER PRIMARY KEY) STRICT;\n")
    with pytest.raises(MigrationError, match=r"0003_later\.sql: version 3 follows version 1; version 2 is missing$"):
        load_migrations(schema_dir)


def test_refuses_a_duplicate_version(tmp_path: Path) -> None:
    schema_dir = copy_schema(tmp_path, versions=1)
    (schema_dir / "0001_again.sql").write_text("CREATE TABLE again (id INTEGER PRIMARY KEY) STRICT;\n")
    with pytest.raises(MigrationError, match=r": version 1 is also 0001_\w+\.sql; each version needs one file$"):
        load_migrations(schema_dir)


def test_a_failing_migration_is_rolled_back_whole(tmp_path: Path) -> None:
    schema_dir = copy_schema(tmp_path)
    bad = schema_dir / f"{HEAD + 1:04d}_broken.sql"
    bad.write_text("CREATE TABLE half (id INTEGER PRIMARY KEY) STRICT;\nCREATE INDEX nope ON missing (x);\n")
    conn = connect(tmp_path / "chat.db")
    with pytest.raises(MigrationError, match=rf"^{bad.name}: .*no such table: main\.missing"):
        migrate(conn, load_migrations(schema_dir))
    assert user_version(conn) == HEAD  # the good ones before it stay applied
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_schema")}
    assert "half" not in names
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (HEAD,)


# --- Drift-style verification: every older version migrated to head equals a fresh head -----------------------


def _value(column: Any, key: int) -> object:
    if column.kind == TIMESTAMP:
        return "1969-12-31T23:59:59.000001Z"
    if column.kind == ENUM:
        return column.enum_values[-1]
    if column.kind == BOOL:
        return 0
    return {"INTEGER": key, "TEXT": f"text {key} ✓", "BLOB": bytes([0, 255, key % 256]), "REAL": 0.5}[
        column.decl_type.upper()
    ]


def fill(
    conn: apsw.Connection, schema: Schema, key: int, skip: tuple[str, ...] = ()
) -> dict[str, list[tuple[Any, ...]]]:
    """One row per table with id/keys `key` (foreign keys pointing at the parents' rows); returns what was written."""
    written: dict[str, list[tuple[Any, ...]]] = {name: [] for name in skip}
    pending = [t for t in schema.tables if t.name not in skip]
    while pending:
        table = next(
            t for t in pending if all(fk.ref_table in written or fk.ref_table == t.name for fk in t.foreign_keys)
        )
        pending.remove(table)
        values = tuple(_value(c, key) for c in table.columns)
        names = ", ".join(c.name for c in table.columns)
        conn.execute(f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(values))})", values)
        written[table.name] = [values]
    return written


def read_back(conn: apsw.Connection, schema: Schema) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t.name: conn.execute(f"SELECT {', '.join(c.name for c in t.columns)} FROM {t.name} ORDER BY rowid").fetchall()
        if not t.without_rowid
        else conn.execute(f"SELECT {', '.join(c.name for c in t.columns)} FROM {t.name}").fetchall()
        for t in schema.tables
    }


def load_snapshot(version: int) -> dict[str, Any]:
    document = json.loads((SNAPSHOTS / f"{version:04d}.json").read_text(encoding="utf-8"))
    document.pop("_generated")
    return dict(document)


def test_a_snapshot_exists_for_every_version_and_matches_its_history(tmp_path: Path) -> None:
    assert sorted(p.name for p in SNAPSHOTS.glob("*.json")) == [f"{m.version:04d}.json" for m in MIGRATIONS]
    conn = connect(":memory:")
    for migration in MIGRATIONS:
        migrate(conn, target=migration.version)
        assert diff_snapshots(load_snapshot(migration.version), snapshot(introspect(conn))) == []


def upgrade_problems(db: Path, migrations: Sequence[Migration], start: int, expected: dict[str, Any]) -> list[str]:
    """Drift's check: a database at `start` holding rows, migrated to head, against the head snapshot `expected`.

    Returns what is wrong, as "path: expected X, got Y" lines (none when all is well).
    """
    conn = connect(db)
    migrate(conn, migrations, target=start)
    written: dict[str, list[tuple[Any, ...]]] = {}
    old_schema = introspect(conn)
    with conn:
        written = fill(conn, old_schema, key=-(2**63))
    migrate(conn, migrations)
    head = introspect(conn)
    problems = diff_snapshots(expected, snapshot(head))
    problems += diff_snapshots(written, read_back(conn, old_schema), path="rows")
    with conn:  # the migrated database takes new rows like a fresh one
        fill(conn, head, key=2**63 - 1, skip=("configuration",))  # a singleton
    problems += [f"foreign_key_check: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
    problems += [f"integrity_check: {row}" for row in conn.execute("PRAGMA integrity_check") if row != ("ok",)]
    conn.close()
    return problems


@pytest.mark.parametrize("start", range(HEAD))
def test_an_old_database_migrated_to_head_equals_a_fresh_one_and_keeps_its_rows(tmp_path: Path, start: int) -> None:
    fresh = connect(":memory:")
    migrate(fresh)
    assert snapshot(introspect(fresh)) == load_snapshot(HEAD)
    problems = upgrade_problems(tmp_path / "old.db", MIGRATIONS, start, load_snapshot(HEAD))
    assert problems == [], "\n".join(problems)


def test_the_upgrade_check_catches_a_migration_that_loses_data(tmp_path: Path) -> None:
    """A table rebuild that forgets a column's data passes on a fresh database, not on an old one with rows."""
    schema_dir = copy_schema(tmp_path)
    (schema_dir / f"{HEAD + 1:04d}_rebuild_tags.sql").write_text(
        """
        CREATE TABLE tags_new (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            is_editable INTEGER NOT NULL DEFAULT 1 CONSTRAINT "tags.is_editable" CHECK (is_editable IN (0, 1))
        ) STRICT;
        INSERT INTO tags_new (id, name, is_editable) SELECT id, name, is_editable FROM tags;
        DROP TABLE tags;
        ALTER TABLE tags_new RENAME TO tags;
        CREATE INDEX message_tags_tag_id_again ON message_tags (tag_id);
        """,
        encoding="utf-8",
    )
    migrations = load_migrations(schema_dir)
    fresh = connect(":memory:")
    migrate(fresh, migrations)
    problems = upgrade_problems(tmp_path / "old.db", migrations, HEAD, snapshot(introspect(fresh)))
    assert problems == ["rows.tags[0][2]: expected 'text -9223372036854775808 ✓', got ''"]


def test_diff_snapshots_reports_expected_and_got() -> None:
    expected = {"tables": {"t": {"columns": [{"name": "a", "not_null": True}]}}}
    actual = {"tables": {"t": {"columns": [{"name": "a", "not_null": False}]}, "u": {}}}
    assert diff_snapshots(expected, actual) == [
        "schema.tables.t.columns[0].not_null: expected True, got False",
        "schema.tables.u: expected nothing, got {}",
    ]


# --- python -m pychat_db.migrate ----------------------------------------------------------------------------


def test_cli_status_dry_run_up(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    names = [f"{m.version:04d}_{m.name}" for m in MIGRATIONS]

    dry = run("pychat_db.migrate", "--db", db, "up", "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert dry.stdout.splitlines() == [f"would apply {n}" for n in names]
    assert not db.exists()  # a dry run creates no database

    up = run("pychat_db.migrate", "--db", db, "up")
    assert (up.returncode, up.stderr) == (0, "")
    assert up.stdout.splitlines() == [f"applied {n}" for n in names]

    again = run("pychat_db.migrate", "--db", db, "up")
    assert again.stdout == f"up to date at version {HEAD}\n"

    state = run("pychat_db.migrate", "--db", db, "status")
    assert state.returncode == 0
    lines = state.stdout.splitlines()
    assert lines[:2] == [f"database: {db}", f"version:  {HEAD} (head {HEAD})"]
    assert [line.split()[:2] for line in lines[2:]] == [["applied", n] for n in names]


def test_cli_status_of_a_partly_migrated_database_lists_pending(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    conn = connect(db)
    migrate(conn, target=1)
    conn.close()
    state = run("pychat_db.migrate", "--db", db, "status")
    assert state.returncode == 0
    assert f"version:  1 (head {HEAD})" in state.stdout
    assert [line.strip() for line in state.stdout.splitlines() if "pending" in line] == [
        f"pending {m.version:04d}_{m.name}" for m in MIGRATIONS[1:]
    ]
    dry = run("pychat_db.migrate", "--db", db, "up", "--dry-run")
    assert dry.stdout.splitlines() == [f"would apply {m.version:04d}_{m.name}" for m in MIGRATIONS[1:]]
    conn = connect(db)
    assert user_version(conn) == 1


def test_cli_refuses_a_newer_database_with_exit_1(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    conn = connect(db)
    migrate(conn)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    for args in (["up"], ["status"], ["up", "--dry-run"]):
        result = run("pychat_db.migrate", "--db", db, *args)
        assert result.returncode == 1, args
        assert result.stdout == ""
        assert result.stderr == (
            f"Error: database is at schema version 99, newer than this code's {HEAD}; upgrade pychat_db instead\n"
        )


def test_cli_status_of_a_missing_database_is_an_error(run: Run, tmp_path: Path) -> None:
    result = run("pychat_db.migrate", "--db", tmp_path / "nope.db", "status")
    assert result.returncode == 1
    assert result.stderr == f"Error: {tmp_path / 'nope.db'}: no such database\n"
    assert not (tmp_path / "nope.db").exists()


def test_cli_usage_errors_exit_2(run: Run, tmp_path: Path) -> None:
    assert run("pychat_db.migrate", "--db", tmp_path / "x.db", "down").returncode == 2
    assert run("pychat_db.migrate").returncode == 2
    assert "status" in run("pychat_db.migrate", "--help").stdout


def test_a_table_rebuild_keeps_the_children_and_enforcement_comes_back(tmp_path: Path) -> None:
    """Migrations run with foreign keys off (SQLite's rebuild procedure): DROP TABLE cascades nothing."""
    schema_dir = copy_schema(tmp_path)
    (schema_dir / f"{HEAD + 1:04d}_rebuild_tags.sql").write_text(
        """
        CREATE TABLE tags_new (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            is_editable INTEGER NOT NULL DEFAULT 1 CONSTRAINT "tags.is_editable" CHECK (is_editable IN (0, 1))
        ) STRICT;
        INSERT INTO tags_new SELECT id, name, description, is_editable FROM tags;
        DROP TABLE tags;
        ALTER TABLE tags_new RENAME TO tags;
        """,
        encoding="utf-8",
    )
    migrations = load_migrations(schema_dir)
    fresh = connect(":memory:")
    migrate(fresh, migrations)
    assert upgrade_problems(tmp_path / "old.db", migrations, HEAD, snapshot(introspect(fresh))) == []
    assert fresh.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_a_migration_leaving_dangling_references_is_refused_whole(tmp_path: Path) -> None:
    schema_dir = copy_schema(tmp_path)
    conn = connect(tmp_path / "chat.db")
    migrate(conn, load_migrations(schema_dir))
    with conn:
        fill(conn, introspect(conn), key=5)
    bad = schema_dir / f"{HEAD + 1:04d}_drop_tags.sql"
    bad.write_text("CREATE TABLE kept (id INTEGER PRIMARY KEY) STRICT;\nDROP TABLE tags;\n", encoding="utf-8")
    before = schema_dump(conn)
    with pytest.raises(MigrationError, match=rf"^{bad.name}: leaves 1 row\(s\) referencing missing rows .*→ tags\)"):
        migrate(conn, load_migrations(schema_dir))
    assert schema_dump(conn) == before
    assert conn.execute("SELECT count(*) FROM tags").fetchone() == (1,)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
