"""Self-tests of the fault-injecting VFS on plain SQL transactions.

A 2,000-row update + delete + insert transaction on a 10,000-row table is run
with the I/O error or "disk full" at each of its fault points (every write,
sync and truncate of the database, its rollback journal or its WAL). Each run
must end either in success, leaving exactly the state after the transaction,
or in an I/O error, leaving exactly the state before; the file always passes
`integrity_check`. The default run takes an even sample of the points; the
`slow` tests take all of them, transient and persistent.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import apsw
import pytest

from tests.support.faulty_vfs import (
    FULL,
    IOERR,
    Fault,
    FaultyVFS,
    check_db,
    copy_db,
    count_points,
    install,
    remove_db,
    sweep,
)

ROWS = 2000
FAULT_CODES = {
    apsw.SQLITE_FULL,
    apsw.SQLITE_IOERR_WRITE,
    apsw.SQLITE_IOERR_FSYNC,
    apsw.SQLITE_IOERR_TRUNCATE,
}


@pytest.fixture(scope="module")
def vfs() -> FaultyVFS:
    return install("faulty")


def build_template(path: Path, journal_mode: str) -> Path:
    remove_db(path)
    conn = apsw.Connection(str(path))
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL)")
    conn.execute("CREATE INDEX t_n ON t (n)")
    with conn:
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", ((i, "x" * 50, i * 7 % 1000) for i in range(10_000)))
    conn.close()
    return path


def digest(conn: apsw.Connection) -> str:
    rows = conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def state_of(path: Path) -> str:
    conn = check_db(path)
    try:
        return digest(conn)
    finally:
        conn.close()


def transaction(path: Path, journal_mode: str, *, vfs: str | None) -> None:
    """The measured transaction: update, delete and insert 2,000 rows each, committed; then close.

    Written as the library must write it: BEGIN IMMEDIATE ... COMMIT, and
    ROLLBACK only if SQLite has not already rolled back by itself (it does on
    I/O errors and SQLITE_FULL). Raises the driver error of the commit; an
    error while closing (a failed checkpoint after the commit) is returned
    separately by `run_transaction`.
    """
    conn = apsw.Connection(str(path), vfs=vfs) if vfs else apsw.Connection(str(path))
    try:
        conn.execute(f"PRAGMA synchronous = {'FULL' if journal_mode == 'delete' else 'NORMAL'}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE t SET v = v || 'y' WHERE id < ?", (ROWS,))
            conn.execute("DELETE FROM t WHERE id >= ? AND id < ?", (ROWS, 2 * ROWS))
            conn.executemany("INSERT INTO t VALUES (?, ?, ?)", ((20_000 + i, "z" * 40, i) for i in range(ROWS)))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        close_quietly(conn)


CLOSE_ERRORS: list[apsw.Error] = []


def close_quietly(conn: apsw.Connection) -> None:
    """Close; a checkpoint failing on close is recorded, not raised (the commit already happened)."""
    try:
        conn.close()
    except apsw.Error as exc:
        CLOSE_ERRORS.append(exc)


def fault_loop(
    tmp_path: Path, vfs: FaultyVFS, journal_mode: str, *, sample: int | None, persistent: tuple[bool, ...]
) -> tuple[int, Counter[str]]:
    template = build_template(tmp_path / f"template-{journal_mode}.db", journal_mode)
    work = tmp_path / "work.db"
    before = state_of(template)
    copy_db(template, work)
    total = count_points(vfs, lambda: transaction(work, journal_mode, vfs=vfs.name))
    after = state_of(work)
    assert before != after
    points: list[int] | range = range(1, total + 1)
    if sample is not None and total > sample:
        step = total / sample
        points = sorted({1, 2, 3, total - 1, total, *(int(i * step) + 1 for i in range(sample))})

    def run() -> None:
        copy_db(template, work)
        transaction(work, journal_mode, vfs=vfs.name)

    outcomes: Counter[str] = Counter()
    for outcome in sweep(vfs, total, run, errors=(IOERR, FULL), persistent=persistent, points=points):
        assert outcome.fired, f"{outcome.fault}: the fault point was never reached"
        state = state_of(work)
        if outcome.error is None:
            assert state == after, f"{outcome.fault}: reported success but the transaction is missing"
            outcomes["success"] += 1
        else:
            assert isinstance(outcome.error, apsw.Error), f"{outcome.fault}: {outcome.error!r}"
            assert getattr(outcome.error, "extendedresult", None) in FAULT_CODES, f"{outcome.fault}: {outcome.error!r}"
            assert state == before, f"{outcome.fault}: failed ({outcome.error}) but the database changed"
            outcomes["failed, rolled back"] += 1
    return total, outcomes


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_fault_points_are_counted_in_every_file(tmp_path: Path, vfs: FaultyVFS, journal_mode: str) -> None:
    template = build_template(tmp_path / "template.db", journal_mode)
    work = tmp_path / "work.db"
    copy_db(template, work)
    vfs.arm(None, trace=True)
    transaction(work, journal_mode, vfs=vfs.name)
    files = Counter(Path(p.file).name for p in vfs.trace)
    kinds = Counter(p.kind for p in vfs.trace)
    side = "work.db-journal" if journal_mode == "delete" else "work.db-wal"
    assert files[side] > 100 and files["work.db"] > 50, files
    assert kinds["write"] > 300 and kinds["sync"] >= 2, kinds
    assert vfs.points == len(vfs.trace) and vfs.fired == []


def test_injected_error_carries_the_extended_code(tmp_path: Path, vfs: FaultyVFS) -> None:
    work = build_template(tmp_path / "work.db", "delete")
    for error, code in ((IOERR, apsw.SQLITE_IOERR_WRITE), (FULL, apsw.SQLITE_FULL)):
        vfs.arm(Fault(1, error))
        with pytest.raises(apsw.Error, match="injected") as caught:
            transaction(work, "delete", vfs=vfs.name)
        assert getattr(caught.value, "extendedresult", None) == code
        assert [p.kind for p in vfs.fired] == ["write"]
        assert vfs.fired[0].file.endswith("work.db-journal")
    vfs.arm(None)


def test_persistent_fault_keeps_failing(tmp_path: Path, vfs: FaultyVFS) -> None:
    work = build_template(tmp_path / "work.db", "delete")
    before = state_of(work)
    copy = tmp_path / "copy.db"
    copy_db(work, copy)
    vfs.arm(None, trace=True)
    transaction(copy, "delete", vfs=vfs.name)
    # the first write to the database file itself, after the journal was synced
    first = next(p.number for p in vfs.trace if p.kind == "write" and p.file.endswith("copy.db")) + 3
    vfs.arm(Fault(first, FULL, persistent=True))
    with pytest.raises(apsw.FullError):
        transaction(work, "delete", vfs=vfs.name)
    fired = vfs.fired
    assert [p.number for p in fired] == list(range(first, first + len(fired)))
    assert len(fired) >= 2  # rolling back the pages already written failed too: a hot journal is left
    vfs.arm(None)
    assert state_of(work) == before  # the hot journal is rolled back by the next opener


def test_with_conn_hides_the_io_error(tmp_path: Path, vfs: FaultyVFS) -> None:
    """Why the library must not rely on `with conn:` for writes: APSW's context manager
    answers SQLite's automatic rollback after an I/O error with 'cannot rollback',
    and that SQLError replaces the real cause (kept only as __context__)."""
    work = build_template(tmp_path / "work.db", "delete")
    conn = apsw.Connection(str(work), vfs=vfs.name)
    vfs.arm(Fault(1))
    with pytest.raises(apsw.SQLError, match="cannot rollback") as caught, conn:
        conn.execute("DELETE FROM t")
    vfs.arm(None)
    assert isinstance(caught.value.__context__, apsw.IOError)
    conn.close()


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_fault_sample_leaves_before_or_after(tmp_path: Path, vfs: FaultyVFS, journal_mode: str) -> None:
    CLOSE_ERRORS.clear()
    total, outcomes = fault_loop(tmp_path, vfs, journal_mode, sample=20, persistent=(False, True))
    assert total > 250
    assert outcomes["failed, rolled back"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_every_fault_point_leaves_before_or_after(tmp_path: Path, vfs: FaultyVFS, journal_mode: str) -> None:
    CLOSE_ERRORS.clear()
    total, outcomes = fault_loop(tmp_path, vfs, journal_mode, sample=None, persistent=(False, True))
    print(f"{journal_mode}: {total} fault points x 2 errors x 2 persistences: {dict(outcomes)}")
    assert sum(outcomes.values()) == total * 4


def test_connect_honours_the_vfs_environment_variable(
    tmp_path: Path, vfs: FaultyVFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PYCHAT_DB_VFS` routes connections opened without `vfs=` (a tool's `main()`) through a test VFS."""
    from pychat_db.connection import VFS_ENVIRONMENT_VARIABLE, connect

    monkeypatch.setenv(VFS_ENVIRONMENT_VARIABLE, vfs.name)
    vfs.arm(None)
    conn = connect(tmp_path / "env.db")
    assert conn.open_vfs == vfs.name
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.close()
    assert vfs.points > 0
    monkeypatch.delenv(VFS_ENVIRONMENT_VARIABLE)
    conn = connect(tmp_path / "env.db")
    assert conn.open_vfs != vfs.name
    conn.close()
