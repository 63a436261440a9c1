"""`Database`: opening, migrating, nested transactions, write locking and closing."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import apsw
import pytest

from pychat_db.connection import connect
from pychat_db.database import Database
from pychat_db.errors import DatabaseError, MigrationError, PychatDbError
from pychat_db.migrations import load_migrations, user_version
from pychat_db.models import Message, Tag, Thread
from tests.support.faulty_vfs import FULL, IOERR, check_db, copy_db, count_points, install, sweep

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def names(db: Database) -> list[str]:
    return sorted(t.name for t in db.threads.list())


def test_opens_migrates_and_applies_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with Database(path) as db:
        assert user_version(db.connection) == load_migrations()[-1].version
        assert db.connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert db.connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert path.stat().st_mode & 0o777 == 0o600


def test_default_path_is_chat_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Database() as db:
        db.threads.create(Thread(name="here", created_at=T0))
    assert (tmp_path / "chat.db").is_file()
    with Database(tmp_path / "chat.db") as again:
        assert names(again) == ["here"]


def test_context_manager_closes(tmp_path: Path) -> None:
    with Database(tmp_path / "c.db") as db:
        pass
    with pytest.raises(apsw.ConnectionClosedError):
        db.connection.execute("SELECT 1")
    db.close()  # idempotent


def test_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with Database(path):
        pass
    conn = connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(MigrationError, match="newer than this code"):
        Database(path)


def test_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 512)
    os.chmod(path, 0o600)
    with pytest.raises(PychatDbError, match="SQLITE_NOTADB") as info:
        Database(path)
    assert not isinstance(info.value, apsw.Error)


def test_transaction_commits_and_rolls_back(tmp_path: Path) -> None:
    with Database(tmp_path / "t.db") as db:
        with db.transaction():
            db.threads.create(Thread(name="kept", created_at=T0))
        with pytest.raises(RuntimeError, match="boom"), db.transaction():
            db.threads.create(Thread(name="lost", created_at=T0))
            raise RuntimeError("boom")
        assert names(db) == ["kept"]
        assert not db.connection.in_transaction


def test_nested_transactions_are_savepoints(tmp_path: Path) -> None:
    with Database(tmp_path / "n.db") as db:
        with db.transaction():
            db.threads.create(Thread(name="outer", created_at=T0))
            with pytest.raises(KeyError), db.transaction():
                db.threads.create(Thread(name="inner lost", created_at=T0))
                raise KeyError("inner")
            with db.transaction():
                db.threads.create(Thread(name="inner kept", created_at=T0))
                with db.transaction():
                    db.tags.create(Tag(name="deep"))
            assert names(db) == ["inner kept", "outer"]
        assert names(db) == ["inner kept", "outer"]
        assert [t.name for t in db.tags.list()] == ["deep"]
        with pytest.raises(ValueError), db.transaction():
            with db.transaction():
                db.threads.create(Thread(name="gone with the outer", created_at=T0))
            raise ValueError
        assert names(db) == ["inner kept", "outer"]


def test_repository_writes_inside_a_failed_transaction_are_undone(tmp_path: Path) -> None:
    with Database(tmp_path / "u.db") as db:
        thread = db.threads.create(Thread(name="t", created_at=T0))
        assert thread.id is not None
        tag = db.tags.create(Tag(name="x"))
        with pytest.raises(PychatDbError), db.transaction():
            db.threads.delete(thread.id)
            db.tags.create(Tag(id=tag.id, name="duplicate id"))
        assert names(db) == ["t"]


def test_outermost_transaction_takes_the_write_lock_at_once(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    with Database(path) as writer, Database(path) as other:
        other.connection.set_busy_timeout(50)
        with writer.transaction():
            # Nothing written yet: BEGIN IMMEDIATE already holds the lock...
            with pytest.raises(DatabaseError, match="SQLITE_BUSY") as info:
                other.threads.create(Thread(name="blocked", created_at=T0))
            assert info.value.code is not None and info.value.code & 0xFF == apsw.SQLITE_BUSY
            # ...and readers still see the last committed state (WAL).
            assert other.threads.list() == []
            writer.threads.create(Thread(name="first", created_at=T0))
        other.threads.create(Thread(name="after", created_at=T0))
        assert names(writer) == ["after", "first"]


def test_vfs_is_passed_to_the_connection(tmp_path: Path) -> None:
    name = apsw.vfs_names()[0]
    with Database(tmp_path / "v.db", vfs=name) as db:
        assert db.connection.open_vfs == name


def test_io_faults_become_library_errors_and_transactions_stay_atomic(tmp_path: Path) -> None:
    """Every write, sync or truncate of a transaction failing in turn (I/O error, disk full, once or for good)."""
    template, path = tmp_path / "template.db", tmp_path / "work.db"
    with Database(template) as db:
        db.threads.create(Thread(id=1, name="before", created_at=T0))
        db.tags.create(Tag(id=1, name="x"))
    vfs = install("faulty-database-test")

    def run() -> None:
        copy_db(template, path)
        with Database(path, vfs="faulty-database-test") as db, db.transaction():
            thread = db.threads.create(Thread(id=2, name="new", created_at=T0))
            assert thread.id is not None
            tag = db.tags.get(1)
            for i in range(3):
                db.messages.create(Message(thread_id=thread.id, text=f"m{i}" * 500, timestamp=T0, tags=(tag,)))

    total = count_points(vfs, run)
    assert total > 0
    fired = 0
    for outcome in sweep(vfs, total, run, errors=(IOERR, FULL), persistent=(False, True)):
        fired += outcome.fired
        if outcome.error is not None:
            assert isinstance(outcome.error, PychatDbError), repr(outcome.error)
            assert not isinstance(outcome.error, apsw.Error)
        conn = check_db(path)
        threads = conn.execute("SELECT id, name FROM threads ORDER BY id").fetchall()
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()
        links = conn.execute("SELECT count(*) FROM message_tags").fetchone()
        conn.close()
        if threads == [(1, "before")]:
            assert outcome.error is not None, f"{outcome}: no error, yet the transaction was lost"
            assert (messages, links) == ((0,), (0,)), outcome
        else:
            assert threads == [(1, "before"), (2, "new")], outcome
            assert (messages, links) == ((3,), (3,)), outcome
    assert fired > 0
