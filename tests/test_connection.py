"""The connection factory: every pragma of schema/pragmas.sql read back, file modes, driver settings."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from pychat_db.connection import connect, pragma_statements
from pychat_db.migrations import migrate

# What `PRAGMA name` reads back for each value pragmas.sql may set.
_READ_BACK = {"ON": 1, "OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3, "MEMORY": 2, "FILE": 1, "DEFAULT": 0, "WAL": "wal"}
_PRAGMA = re.compile(r"^PRAGMA (\w+) = (\S+)$")


def expected_pragmas() -> dict[str, object]:
    expected: dict[str, object] = {}
    for statement in pragma_statements():
        match = _PRAGMA.match(statement)
        assert match, f"pragmas.sql: {statement!r} is not `PRAGMA name = value`"
        name, value = match.groups()
        expected[name] = int(value) if re.fullmatch(r"-?\d+", value) else _READ_BACK[value.upper()]
    return expected


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_pragmas_file_sets_what_the_project_needs() -> None:
    assert expected_pragmas() == {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "trusted_schema": 0,
        "cell_size_check": 1,
        "temp_store": 2,
        "cache_size": -32768,
    }


@pytest.mark.parametrize("name", sorted(expected_pragmas()))
def test_each_pragma_is_read_back_on_a_file_connection(tmp_path: Path, name: str) -> None:
    conn = connect(tmp_path / "chat.db")
    assert conn.execute(f"PRAGMA {name}").fetchone() == (expected_pragmas()[name],)


def test_pragmas_hold_on_every_new_connection_to_an_existing_database(db_path: Path) -> None:
    for _ in range(2):
        conn = connect(db_path)
        for name, value in expected_pragmas().items():
            assert conn.execute(f"PRAGMA {name}").fetchone() == (value,), name
        conn.close()


def test_pragmas_false_leaves_sqlite_defaults(tmp_path: Path) -> None:
    conn = connect(tmp_path / "raw.db", pragmas=False)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_readonly_connection_reads_the_pragmas_it_can_and_refuses_writes(db_path: Path) -> None:
    conn = connect(db_path, readonly=True)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # persistent, set by the writer
    with pytest.raises(apsw.ReadOnlyError):
        conn.execute("INSERT INTO tags (name) VALUES ('x')")


def test_readonly_connection_to_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such database"):
        connect(tmp_path / "missing.db", readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_database_wal_and_shm_files_are_created_0600(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "chat.db"
    conn = connect(path)
    migrate(conn)
    with conn:
        conn.execute("INSERT INTO tags (name) VALUES ('x')")
    reader = connect(path, readonly=True)
    assert reader.execute("SELECT count(*) FROM tags").fetchone() == (1,)
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        assert file.exists(), suffix
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, suffix
    reader.close()
    conn.close()


def test_an_existing_file_is_opened_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    connect(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "no such column"',
        'SELECT count(*) FROM tags WHERE name = "x"',
    ],
)
def test_double_quoted_strings_are_identifiers_only_in_dml(memory_db: apsw.Connection, sql: str) -> None:
    with pytest.raises(apsw.SQLError, match="no such column"):
        memory_db.execute(sql)


def test_double_quoted_strings_are_identifiers_only_in_ddl(memory_db: apsw.Connection) -> None:
    with pytest.raises(apsw.SQLError, match="no such column"):
        memory_db.execute('CREATE INDEX tags_oops ON tags ("not a column")')


def test_driver_configuration_is_read_back(memory_db: apsw.Connection) -> None:
    assert memory_db.config(apsw.SQLITE_DBCONFIG_DQS_DML, -1) == 0
    assert memory_db.config(apsw.SQLITE_DBCONFIG_DQS_DDL, -1) == 0
    assert memory_db.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, -1) == 1


def test_defensive_mode_keeps_the_schema_out_of_reach(memory_db: apsw.Connection) -> None:
    memory_db.execute("PRAGMA writable_schema = ON")
    with pytest.raises(apsw.Error):
        memory_db.execute("UPDATE sqlite_schema SET sql = 'CREATE TABLE x (y)' WHERE name = 'tags'")
    assert memory_db.execute("SELECT count(*) FROM tags").fetchone() == (0,)
