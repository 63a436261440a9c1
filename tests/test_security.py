"""Secrets, file modes and hostile database files.

* A database whose schema is not its version's (an added table, trigger, view
  or index, a dropped index, an altered table) is refused by
  `pychat_db.schema_check.check_schema`, naming what differs.
* `trusted_schema=OFF` really stops a schema object from calling an
  application function; DQS and `cell_size_check` hold on the library's
  connections.
* Every file the tools create (database, `-wal`, `-shm`, report, reject file,
  export files) is 0600 under a 022 umask, and the API key appears in no
  output of any tool run (stdout, stderr, report, reject file).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from pychat_db.connection import connect
from pychat_db.database import Database
from pychat_db.errors import SchemaMismatch
from pychat_db.migrations import load_migrations, migrate
from pychat_db.schema_check import check_schema, expected_schema, schema_differences
from tests.support.commands import run_module
from tests.support.exports import api_key, make_export
from tests.support.mutations import refresh_manifest


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the schema must be ours ---------------------------------------------------------------

HOSTILE = {
    "table": ("CREATE TABLE stolen (k TEXT)", "unexpected table stolen"),
    "trigger": (
        "CREATE TRIGGER leak AFTER INSERT ON configuration BEGIN UPDATE threads SET name = new.api_key; END",
        "unexpected trigger leak",
    ),
    "view": ("CREATE VIEW everything AS SELECT * FROM configuration", "unexpected view everything"),
    "index": ("CREATE INDEX messages_text ON messages (text)", "unexpected index messages_text"),
    "dropped index": ("DROP INDEX messages_thread_id_timestamp", "missing index messages_thread_id_timestamp"),
    "altered table": (
        "ALTER TABLE threads ADD COLUMN note TEXT",
        "table threads differs from its definition in the migration files",
    ),
}


def test_a_migrated_database_is_ours(db_path: Path) -> None:
    conn = connect(db_path)
    assert schema_differences(conn) == []
    check_schema(conn)
    conn.close()


def test_every_version_is_checked_against_its_own_files(tmp_path: Path) -> None:
    migrations = load_migrations()
    for version in range(len(migrations) + 1):
        conn = connect(tmp_path / f"v{version}.db")
        migrate(conn, target=version)
        check_schema(conn)
        assert set(expected_schema(version)) == {
            (kind, name)
            for kind, name in conn.execute("SELECT type, name FROM sqlite_schema").fetchall()
            if not name.startswith("sqlite_stat")
        }
        conn.close()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_schema_that_is_not_ours_is_refused(db_path: Path, case: str) -> None:
    sql, phrase = HOSTILE[case]
    conn = connect(db_path)
    conn.execute(sql)
    with pytest.raises(SchemaMismatch, match=phrase) as caught:
        check_schema(conn)
    message = str(caught.value)
    assert str(db_path) in message and "schema version 2" in message and "refusing" in message
    conn.close()


def test_a_foreign_database_at_version_0_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(SchemaMismatch, match=r"schema version 0 .*unexpected table notes"):
        check_schema(conn)
    conn.close()


def test_statistics_tables_are_allowed(db_path: Path) -> None:
    conn = connect(db_path)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA optimize")
    check_schema(conn)
    conn.close()


def test_database_refuses_a_hostile_file(db_path: Path) -> None:
    conn = connect(db_path)
    conn.execute(HOSTILE["trigger"][0])
    conn.close()
    with pytest.raises(SchemaMismatch, match="unexpected trigger leak"):
        Database(db_path)


@pytest.mark.parametrize(
    "args",
    [
        ("pychat_db.migrate", "--db", "{db}", "up"),
        ("tools.export", "--db", "{db}", "--out", "{tmp}/out"),
        ("tools.verify", "examples/export", "--db", "{db}"),
    ],
    ids=["migrate", "export", "verify"],
)
def test_tools_refuse_a_hostile_file(db_path: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    conn = connect(db_path)
    conn.execute(HOSTILE["trigger"][0])
    conn.close()
    before = db_path.read_bytes()
    module, *rest = (a.format(db=db_path, tmp=tmp_path) for a in args)
    result = run_module(module, *rest)
    assert result.returncode == 1, result.stderr
    assert "unexpected trigger leak" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert db_path.read_bytes() == before


# -- connection settings that defend against a crafted file ----------------------------------


def test_trusted_schema_off_blocks_functions_in_schema_objects(tmp_path: Path) -> None:
    calls: list[int] = []

    def side_effect(x: int) -> int:
        calls.append(x)
        return x

    conn = connect(tmp_path / "t.db")
    conn.create_scalar_function("side_effect", side_effect, 1)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("CREATE VIEW v AS SELECT side_effect(x) AS y FROM t")
    assert conn.execute("SELECT side_effect(2)").fetchall() == [(2,)]  # direct use is fine
    with pytest.raises(apsw.SQLError, match="unsafe use of side_effect"):
        conn.execute("SELECT y FROM v").fetchall()
    assert calls == [2]
    conn.close()


def test_database_connection_carries_the_defences(tmp_path: Path) -> None:
    with Database(tmp_path / "chat.db") as db:
        conn = db.connection
        assert conn.execute("PRAGMA trusted_schema").fetchall() == [(0,)]
        assert conn.execute("PRAGMA cell_size_check").fetchall() == [(1,)]
        assert conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, -1) == 0
        assert conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, -1) == 0
        assert conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, -1) == 1
        with pytest.raises(apsw.SQLError, match="no such column"):
            conn.execute('SELECT "not a string"')


def test_database_wal_and_shm_are_0600(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "chat.db"
    with Database(path) as db:
        with db.transaction():
            db.connection.execute("INSERT INTO threads (name, created_at) VALUES ('t', '2024-01-01T00:00:00.000000Z')")
        for suffix in ("", "-wal", "-shm"):
            file = Path(f"{path}{suffix}")
            assert file.exists(), suffix
            assert mode(file) == 0o600, (suffix, oct(mode(file)))


# -- the tools: modes of what they write, and the API key in nothing they say ------------------


def test_tool_outputs_are_0600_and_never_show_the_api_key(tmp_path: Path, umask_022: None) -> None:
    export = make_export(tmp_path / "export")
    key = api_key(export)
    # a copy with one bad row, so that a reject file has content and a strict import fails
    damaged = make_export(tmp_path / "damaged")
    messages = damaged / "messages.ndjson"
    lines = messages.read_bytes().splitlines(keepends=True)
    bad = lines[3].replace(b'"timestamp":"', b'"timestamp":"not a time', 1)
    assert bad != lines[3]
    messages.write_bytes(b"".join([*lines[:3], bad, *lines[4:]]))
    refresh_manifest(damaged)

    db = tmp_path / "chat.db"
    out = tmp_path / "out"
    t = tmp_path
    runs = {
        "import": run_module("tools.import", export, "--db", db, "--report", t / "import-report.json"),
        "verify": run_module("tools.verify", export, "--db", db, "--samples", "20", "--report", t / "verify.json"),
        "export": run_module("tools.export", "--db", db, "--out", out),
        "import with rejects": run_module(
            "tools.import",
            damaged,
            "--db",
            t / "partial.db",
            "--reject-file",
            t / "rejects.ndjson",
            "--report",
            t / "rejects-report.json",
        ),
        "failing import": run_module(
            "tools.import", damaged, "--db", t / "refused.db", "--report", t / "refused-report.json"
        ),
        "failing verify": run_module("tools.verify", damaged, "--db", db, "--samples", "20"),
        "migrate status": run_module("pychat_db.migrate", "--db", db, "status"),
    }
    expected_codes = {"failing import": 1, "failing verify": 1}
    for name, result in runs.items():
        assert result.returncode == expected_codes.get(name, 0), f"{name}: {result.stderr}"
        for stream in (result.stdout, result.stderr):
            assert key not in stream, f"{name} printed the API key"
            assert key[:12] not in stream, f"{name} printed part of the API key"

    created = [db, t / "partial.db", *sorted(out.iterdir())]
    reports = ["rejects.ndjson", "import-report.json", "verify.json", "rejects-report.json", "refused-report.json"]
    created += [t / name for name in reports]
    sides = [Path(f"{base}{s}") for base in (db, t / "partial.db") for s in ("-wal", "-shm")]
    created += [side for side in sides if side.exists()]  # left by a reader, if any
    assert [f.name for f in created if not f.exists()] == []
    loose = {file.name: oct(mode(file)) for file in created if mode(file) != 0o600}
    assert loose == {}, f"files readable by others: {loose}"
    for report in reports:
        text = (t / report).read_text(encoding="utf-8")
        assert key not in text and key[:12] not in text, report
    assert (t / "rejects.ndjson").stat().st_size > 0
    assert not (t / "refused.db").exists()


def test_the_api_key_is_redacted_in_the_model_and_in_errors(tmp_path: Path) -> None:
    from pychat_db.errors import PychatDbError
    from pychat_db.models import Configuration

    key = "sk-secret-0123456789abcdefghij"
    config = Configuration(api_key=key, model_name="m")
    assert key not in repr(config) and key not in str(config)
    with Database(tmp_path / "chat.db") as db:
        db.configuration.upsert(config)
        assert key not in repr(db.configuration.get())
        db.connection.execute(
            "CREATE TRIGGER no_second BEFORE UPDATE ON configuration BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        with pytest.raises(PychatDbError) as caught:
            db.configuration.upsert(Configuration(api_key=key + "-2", model_name="m2"))
        assert key not in str(caught.value) and key not in repr(caught.value)


def test_an_imported_database_is_ours(tmp_path: Path) -> None:
    """The importer drops and rebuilds indexes; the result must still pass the schema check."""
    export = make_export(tmp_path / "export", messages=30)
    db = tmp_path / "chat.db"
    result = run_module("tools.import", export, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    conn = connect(db, readonly=True)
    assert schema_differences(conn) == []
    conn.close()
