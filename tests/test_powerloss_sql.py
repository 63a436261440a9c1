"""Self-tests of the power-loss VFS on plain SQL transactions.

A run of 8 write transactions (inserts, updates, deletes, multi-page blobs;
automatic checkpoints every 40 pages in WAL mode) is cut at each of its fault
points; the unsynced writes are then dropped, torn, or kept in a random
subset. The database must reopen with the ordinary VFS, pass `integrity_check`,
and hold exactly the state after one of the transactions (never a mix), and
with `synchronous=FULL` never lose a transaction whose COMMIT had returned.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from pathlib import Path

import apsw
import pytest

from tests.support.faulty_vfs import check_db, copy_db, remove_db
from tests.support.powerloss_vfs import DROP, MODES, SUBSET, TORN, PowerLossVFS, install

TRANSACTIONS = 8


@pytest.fixture(scope="module")
def vfs() -> PowerLossVFS:
    return install("powerloss")


def build_template(path: Path, journal_mode: str) -> Path:
    remove_db(path)
    conn = apsw.Connection(str(path))
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL, n INTEGER NOT NULL)")
    conn.execute("CREATE INDEX t_n ON t (n)")
    with conn:
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", ((i, b"x" * 300, i % 17) for i in range(300)))
    conn.close()
    return path


def digest(conn: apsw.Connection) -> str:
    rows = conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def workload(path: Path, journal_mode: str, synchronous: str, vfs: str | None, committed: list[str]) -> None:
    """Run the transactions; append the state after each COMMIT that returned to `committed`."""
    conn = apsw.Connection(str(path), vfs=vfs) if vfs else apsw.Connection(str(path))
    try:
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA wal_autocheckpoint = 40")
        for k in range(TRANSACTIONS):
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE t SET n = n + 1 WHERE id % 7 = ?", (k % 7,))
                conn.execute("DELETE FROM t WHERE id % 29 = ?", (k,))
                conn.executemany(
                    "INSERT INTO t VALUES (?, ?, ?)",
                    ((1000 * (k + 1) + i, bytes([k]) * (200 + 900 * (i % 4)), k) for i in range(12)),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            committed.append(digest(conn))
    finally:
        with contextlib.suppress(apsw.Error):  # power is off: the close's checkpoint cannot write
            conn.close()


def crash_loop(
    tmp_path: Path, vfs: PowerLossVFS, journal_mode: str, synchronous: str, *, sample: int | None
) -> tuple[int, Counter[str]]:
    template = build_template(tmp_path / "template.db", journal_mode)
    work = tmp_path / "work.db"
    copy_db(template, work)
    conn = check_db(work)
    states = [digest(conn)]
    conn.close()
    vfs.arm(None)
    workload(work, journal_mode, synchronous, vfs.name, states)
    total = vfs.points
    assert len(states) == TRANSACTIONS + 1 and len(set(states)) == len(states)

    tally: Counter[str] = Counter()
    cuts = range(1, total + 1) if sample is None else sorted({1, total, *range(1, total, max(1, total // sample))})
    for cut in cuts:
        for mode in MODES:
            copy_db(template, work)
            vfs.arm(cut_at=cut)
            returned: list[str] = [states[0]]
            try:
                workload(work, journal_mode, synchronous, vfs.name, returned)
            except apsw.IOError as exc:  # the cut came before the close
                assert "power off" in str(exc)
            assert vfs.power_off
            vfs.crash(mode, seed=cut)
            conn = check_db(work)
            state = digest(conn)
            conn.close()
            assert state in states, f"cut at {cut}, {mode}: the state is no committed transaction's"
            index = states.index(state)
            # a COMMIT that had not returned may or may not have survived
            assert index <= len(returned), f"cut at {cut}, {mode}: a transaction that never began is present"
            lost = len(returned) - 1 - index
            if synchronous == "FULL":
                assert lost <= 0, f"cut at {cut}, {mode}: {lost} transactions lost after COMMIT returned"
            tally[f"lost {max(lost, 0)}"] += 1
    return total, tally


def test_drop_loses_what_was_not_synced(tmp_path: Path, vfs: PowerLossVFS) -> None:
    """The VFS really loses data: a WAL commit with synchronous=NORMAL is not synced, DROP undoes it."""
    template = build_template(tmp_path / "template.db", "wal")
    work = tmp_path / "work.db"
    copy_db(template, work)
    vfs.arm(None)
    conn = apsw.Connection(str(work), vfs=vfs.name)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    with conn:
        conn.execute("DELETE FROM t")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    pending = vfs.pending_changes()
    assert vfs.crash(DROP) == pending > 0
    with contextlib.suppress(apsw.IOError):  # power is off: the checkpoint on close cannot write
        conn.close()
    check = check_db(work)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (300,)
    check.close()


def test_full_sync_keeps_the_commit(tmp_path: Path, vfs: PowerLossVFS) -> None:
    """The same commit with synchronous=FULL syncs the WAL: nothing is pending, the delete survives."""
    template = build_template(tmp_path / "template.db", "wal")
    work = tmp_path / "work.db"
    copy_db(template, work)
    vfs.arm(None)
    conn = apsw.Connection(str(work), vfs=vfs.name)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    with conn:
        conn.execute("DELETE FROM t")
    assert vfs.pending_changes() == 0
    vfs.crash(SUBSET, seed=1)
    with contextlib.suppress(apsw.IOError):
        conn.close()
    check = check_db(work)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)
    check.close()


@pytest.mark.parametrize(("journal_mode", "synchronous"), [("delete", "FULL"), ("wal", "FULL"), ("wal", "NORMAL")])
def test_crash_sample_recovers_a_committed_state(
    tmp_path: Path, vfs: PowerLossVFS, journal_mode: str, synchronous: str
) -> None:
    total, tally = crash_loop(tmp_path, vfs, journal_mode, synchronous, sample=25)
    assert total > 100 and sum(tally.values()) >= 3 * 25
    if synchronous == "NORMAL":  # WAL + NORMAL: a commit is durable at the next WAL sync (checkpoint)
        assert tally["lost 1"] > 0, tally


@pytest.mark.slow
@pytest.mark.parametrize(("journal_mode", "synchronous"), [("delete", "FULL"), ("wal", "FULL"), ("wal", "NORMAL")])
def test_crash_at_every_point_recovers_a_committed_state(
    tmp_path: Path, vfs: PowerLossVFS, journal_mode: str, synchronous: str
) -> None:
    total, tally = crash_loop(tmp_path, vfs, journal_mode, synchronous, sample=None)
    print(f"{journal_mode}/{synchronous}: {total} cut points x {len(MODES)} modes: {dict(sorted(tally.items()))}")
    assert sum(tally.values()) == total * len(MODES)


def test_torn_mode_keeps_half_of_the_last_write(tmp_path: Path, vfs: PowerLossVFS) -> None:
    path = tmp_path / "raw.bin"
    path.write_bytes(b"")
    vfs.arm(None)
    handle = vfs.xOpen(str(path), [apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_MAIN_DB, 0])
    handle.xWrite(b"a" * 4096, 0)
    handle.xSync(apsw.SQLITE_SYNC_NORMAL)
    handle.xWrite(b"b" * 4096, 0)
    handle.xWrite(b"c" * 4096, 4096)
    handle.xClose()
    assert vfs.crash(TORN) == 1
    data = path.read_bytes()
    assert data == b"b" * 4096 + b"c" * 2048, (len(data), data[:1], data[4096:4097])
    vfs.arm(None)
