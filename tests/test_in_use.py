"""`tools.import --force` never replaces a database another connection has open (issue 15, section 3).

Each test holds the database in a real process (`tests/support/db_holder.py`, the
`sqlite3` shell), runs the real command, and checks: exit 1 with the one sentence,
the database and its side files byte-identical, no temporary file left, and the
holder's own writes afterwards intact (`integrity_check`, rows and tags present).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from pychat_db.connection import connect
from pychat_db.exchange.importing import NoProgress
from pychat_db.exchange.loader import ImportFailed, ImportOptions, import_source
from pychat_db.exchange.reader import ExportDirectory
from pychat_db.locks import HOLDER, DatabaseInUse, ensure_not_in_use, holding, processes_with_open
from tests.support.commands import ROOT
from tests.support.faulty_vfs import import_leftovers
from tests.support.import_exports import sample_rows, write_export, write_lines

REFUSAL = "Error: chat.db is open in another process; stop the app and retry"
SIDES = ("", "-wal", "-shm", "-journal")
HAS_PROC = Path("/proc/self/fd").is_dir()


def run_tool(module: str, *args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` run in `cwd` (so that a path is shown as given there)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", module, *(os.fspath(a) for a in args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def files(db: Path) -> dict[str, bytes]:
    return {s: Path(f"{db}{s}").read_bytes() for s in SIDES if Path(f"{db}{s}").exists()}


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Path, Path]:
    """(export, database): the sample export imported into tmp_path/chat.db."""
    export = write_export(tmp_path / "x", sample_rows())
    result = run_tool("tools.import", export, "--db", "chat.db", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return export, tmp_path / "chat.db"


class Holder:
    """`python -m tests.support.db_holder MODE DB` (see there)."""

    def __init__(self, mode: str, db: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.db_holder", mode, str(db)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        assert self.stdout.readline().strip() == "ready"

    def write(self, count: int) -> None:
        self.stdin.write(f"write {count}\n")
        self.stdin.flush()
        assert self.stdout.readline().strip() == f"wrote {count}"

    def close(self) -> int:
        self.stdin.close()
        return self.process.wait(timeout=60)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.process.poll() is None:
            holder.process.kill()
            holder.process.wait()


def messages_and_tags(db: Path) -> tuple[int, int, list[tuple[str, ...]]]:
    """(messages, message_tags, integrity_check) read by a fresh connection."""
    conn = apsw.Connection(str(db))
    try:
        check = [tuple(r) for r in conn.execute("PRAGMA integrity_check")]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()
        tags = conn.execute("SELECT count(*) FROM message_tags").fetchone()
        assert messages is not None and tags is not None
        return int(messages[0]), int(tags[0]), check
    finally:
        conn.close()


@pytest.mark.parametrize(
    "mode",
    [
        "apsw",
        "sqlite3",
        "read-tx",
        "write-tx",
        pytest.param("opened", marks=pytest.mark.skipif(not HAS_PROC, reason="holds no lock: seen in /proc only")),
        pytest.param("rollback", marks=pytest.mark.skipif(not HAS_PROC, reason="holds no lock: seen in /proc only")),
    ],
)
def test_force_refuses_a_database_another_process_holds(
    mode: str, imported: tuple[Path, Path], holders: list[Holder], tmp_path: Path
) -> None:
    export, db = imported
    if mode == "rollback":
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA journal_mode = DELETE").fetchone() == ("delete",)
        conn.close()
    messages, tags, _ = messages_and_tags(db)
    holder = Holder(mode, db)
    holders.append(holder)
    before = files(db)
    write_lines(export, "tags.ndjson", [b'{"id":1,"name":"new","description":"","isEditable":true}'])
    write_lines(export, "message_tags.ndjson", [b'{"messageId":1,"tagId":1}'])

    result = run_tool("tools.import", export, "--db", "chat.db", "--force", "--quiet", cwd=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert REFUSAL in result.stderr.splitlines(), result.stderr
    assert "Traceback" not in result.stderr
    assert files(db) == before
    assert import_leftovers(tmp_path) == []
    holder.write(50)  # the app goes on writing to the file it has open
    assert holder.close() == 0
    pending = 1 if mode == "write-tx" else 0
    assert messages_and_tags(db) == (messages + 50 + pending, tags + 2 * (50 + pending), [("ok",)])


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 shell")
def test_force_refuses_a_database_the_sqlite3_shell_has_open(imported: tuple[Path, Path], tmp_path: Path) -> None:
    export, db = imported
    messages, tags, _ = messages_and_tags(db)
    shell = subprocess.Popen(
        ["sqlite3", str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert shell.stdin is not None and shell.stdout is not None
    try:
        shell.stdin.write("SELECT count(*) FROM messages;\n")
        shell.stdin.flush()
        assert shell.stdout.readline().strip() == str(messages)
        before = files(db)
        result = run_tool("tools.import", export, "--db", "chat.db", "--force", "--quiet", cwd=tmp_path)
        assert result.returncode == 1 and REFUSAL in result.stderr.splitlines(), result.stderr
        assert files(db) == before
        shell.stdin.write(
            "PRAGMA foreign_keys = ON;\n"
            "INSERT INTO messages (thread_id, text, timestamp) "
            "VALUES ((SELECT min(id) FROM threads), 'shell', '2024-01-01T00:00:00.000000Z');\n"
            "INSERT INTO message_tags VALUES (last_insert_rowid(), (SELECT min(id) FROM tags));\n"
            ".quit\n"
        )
        shell.stdin.close()
        assert shell.wait(timeout=60) == 0
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
    assert messages_and_tags(db) == (messages + 1, tags + 1, [("ok",)])


def test_force_replaces_once_nobody_holds_it(
    imported: tuple[Path, Path], holders: list[Holder], tmp_path: Path
) -> None:
    export, db = imported
    holder = Holder("apsw", db)
    holders.append(holder)
    holder.write(3)
    assert holder.close() == 0  # the app stopped: the same command now replaces the file
    write_lines(export, "tags.ndjson", [b'{"id":1,"name":"new","description":"","isEditable":true}'])
    write_lines(export, "message_tags.ndjson", [b'{"messageId":1,"tagId":1}'])
    result = run_tool("tools.import", export, "--db", "chat.db", "--force", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT id, name FROM tags").fetchall() == [(1, "new")]
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    assert import_leftovers(tmp_path) == []


def helper_answer(db: Path) -> str:
    """What the lock helper answers for `db` right now (it takes nothing for long: stdin is closed)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(HOLDER), str(db)], input=b"", capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode().strip()


def test_a_connection_of_this_process_is_refused_and_keeps_its_locks(imported: tuple[Path, Path]) -> None:
    export, db = imported
    conn = connect(db)
    try:
        conn.execute("SELECT count(*) FROM messages").fetchall()
        assert helper_answer(db) == "busy database"
        with pytest.raises(ImportFailed) as failed:
            import_source(ExportDirectory(export), db, ImportOptions(force=True))
        assert str(failed.value).endswith("is open in this process (another connection); close it and retry")
        assert isinstance(failed.value.__cause__, DatabaseInUse)
        # The probe ran elsewhere: this process's SHARED lock and WAL-index lock are still held ...
        assert helper_answer(db) == "busy database"
        # ... and the connection writes on as before.
        with conn:
            conn.execute("UPDATE tags SET name = 'still mine' WHERE id = 1")
    finally:
        conn.close()
    assert helper_answer(db) == "held"
    check = apsw.Connection(str(db))
    assert check.execute("SELECT name FROM tags WHERE id = 1").fetchall() == [("still mine",)]
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    check.close()


def test_while_held_no_connection_can_begin_a_transaction(imported: tuple[Path, Path]) -> None:
    _, db = imported
    code = "import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=0).execute('SELECT 1 FROM messages').fetchall()"
    read = [sys.executable, "-c", code, str(db)]
    with holding(db, "chat.db"):
        locked = subprocess.run(read, capture_output=True, text=True, check=False, timeout=60)
        assert locked.returncode == 1 and "database is locked" in locked.stderr
    assert subprocess.run(read, capture_output=True, text=True, check=False, timeout=60).returncode == 0


@pytest.mark.skipif(not HAS_PROC, reason="Linux /proc")
def test_open_files_name_the_process(imported: tuple[Path, Path], holders: list[Holder]) -> None:
    _, db = imported
    assert processes_with_open(db) == []
    holder = Holder("opened", db)
    holders.append(holder)
    (opener,) = processes_with_open(db)
    assert opener.pid == holder.process.pid and opener.file == "chat.db"
    with pytest.raises(DatabaseInUse) as refused:
        ensure_not_in_use(db, "chat.db")
    assert str(refused.value) == "chat.db is open in another process; stop the app and retry"
    (evidence,) = refused.value.evidence
    assert evidence.startswith(f"process {holder.process.pid} (") and evidence.endswith(") has chat.db open")
    assert holder.close() == 0
    ensure_not_in_use(db)


class OpenAtPublish(NoProgress):
    """Progress that starts a holder process as the import begins to publish (after the check at its start)."""

    def __init__(self, mode: str, db: Path, holders: list[Holder]) -> None:
        self.mode, self.db, self.holders = mode, db, holders
        self.before: dict[str, bytes] = {}

    def phase(self, text: str) -> None:
        if text.startswith("switching to WAL"):
            self.holders.append(Holder(self.mode, self.db))
            self.before = files(self.db)


@pytest.mark.parametrize(
    ("mode", "journal_mode"),
    [
        ("apsw", "wal"),  # its -wal is settled first: refused before that
        ("read-tx", "delete"),  # no -wal: refused by the locks held for the rename
        pytest.param("rollback", "delete", marks=pytest.mark.skipif(not HAS_PROC, reason="seen in /proc only")),
    ],
)
def test_an_app_started_during_the_import_is_seen_at_the_rename(
    mode: str,
    journal_mode: str,
    imported: tuple[Path, Path],
    holders: list[Holder],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    export, db = imported
    monkeypatch.chdir(tmp_path)  # the path as the caller gives it: "chat.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.close()
    messages, tags, _ = messages_and_tags(db)
    progress = OpenAtPublish(mode, db, holders)
    with pytest.raises(ImportFailed) as failed:
        import_source(ExportDirectory(export), Path("chat.db"), ImportOptions(force=True, progress=progress))
    assert str(failed.value) == "chat.db is open in another process; stop the app and retry"
    assert files(db) == progress.before
    assert import_leftovers(tmp_path) == []
    (holder,) = holders
    holder.write(20)
    assert holder.close() == 0
    assert messages_and_tags(db) == (messages + 20, tags + 40, [("ok",)])
