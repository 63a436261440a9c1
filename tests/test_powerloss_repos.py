"""Power loss during a run of repository writes, in WAL with the project's `synchronous = NORMAL`.

Twelve writes through `Database` (messages with tags and blobs, a thread
deleted with its cascade, a mode updated, the configuration replaced), with
automatic checkpoints every 20 pages so that some land inside the run. The
power is cut at each fault point; the unsynced writes are dropped, torn or kept
in a random subset. After each crash the database reopens with the ordinary
VFS, passes `integrity_check` and `foreign_key_check`, and holds exactly the
state after one of the writes, never a mix, and never a write that had not
started. What a committed write survives with NORMAL in WAL: an application
crash always; a power loss only once the WAL has been synced, which happens at
the next checkpoint (automatic, every 1,000 pages by default, or on close). The
test counts how many committed writes a crash took back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pychat_db.database import Database
from pychat_db.models import Configuration, Message, Mode
from tests.support.faulty_vfs import check_db, copy_db, tables_digest
from tests.support.powerloss_vfs import MODES, PowerLossVFS, install
from tests.test_faults_repos import SECRET, T0, populate


@pytest.fixture(scope="module")
def vfs() -> PowerLossVFS:
    return install("powerloss-repos")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("powerloss-repos") / "template.db"
    populate(path)
    return path


def writes() -> list[Callable[[Database], object]]:
    def add(k: int) -> Callable[[Database], object]:
        def write(db: Database) -> object:
            thread = db.threads.list(limit=2)[-1]
            assert thread.id is not None
            return db.messages.create(
                Message(
                    thread_id=thread.id,
                    text=f"written before the power cut {k}",
                    timestamp=T0 + dt.timedelta(days=40, minutes=k),
                    file_data=bytes([k]) * (3000 * (k % 3)) if k % 3 else None,
                    tags=tuple(db.tags.list()[k % 4 : k % 4 + 2]),
                )
            )

        return write

    def delete_thread(db: Database) -> object:
        thread = db.threads.list(limit=1)[0]
        assert thread.id is not None
        db.threads.delete(thread.id)
        return None

    def update_mode(db: Database) -> object:
        mode = next(m for m in db.modes.list() if m.name.startswith("custom"))
        return db.modes.update(Mode(id=mode.id, name="custom 2", prompt="p" * 2000))

    def replace_configuration(db: Database) -> object:
        return db.configuration.upsert(Configuration(api_key=SECRET + "-2", model_name="m2"))

    run: list[Callable[[Database], object]] = [add(k) for k in range(4)]
    run += [delete_thread, update_mode]
    run += [add(k) for k in range(4, 8)]
    run += [replace_configuration, add(8)]
    return run


def workload(path: Path, vfs: PowerLossVFS, committed: list[str]) -> None:
    """Open, run the writes (appending the state after each one that returned), close."""
    db = Database(path, vfs=vfs.name)
    try:
        db.connection.execute("PRAGMA wal_autocheckpoint = 20")
        assert db.connection.execute("PRAGMA synchronous").fetchall() == [(1,)]  # NORMAL, from pragmas.sql
        for write in writes():
            write(db)
            committed.append(tables_digest(db.connection))
    finally:
        with contextlib.suppress(Exception):  # power off: the checkpoint on close fails
            db.close()
        with contextlib.suppress(Exception):
            db.connection.close()


def crash_loop(template: Path, work: Path, vfs: PowerLossVFS, sample: int | None) -> tuple[int, Counter[str]]:
    copy_db(template, work)
    conn = check_db(work)
    states = [tables_digest(conn)]
    conn.close()
    vfs.arm(None)
    workload(work, vfs, states)
    total = vfs.points
    assert len(set(states)) == len(states) == len(writes()) + 1
    cuts = range(1, total + 1) if sample is None else sorted({1, total, *range(1, total, max(1, total // sample))})
    tally: Counter[str] = Counter()
    for cut in cuts:
        for mode in MODES:
            copy_db(template, work)
            vfs.arm(cut_at=cut)
            returned = [states[0]]
            with contextlib.suppress(Exception):  # the write in progress fails when the power goes
                workload(work, vfs, returned)
            assert vfs.power_off
            vfs.crash(mode, seed=cut)
            conn = check_db(work)
            state = tables_digest(conn)
            conn.close()
            assert state in states, f"cut at {cut}, {mode}: not the state after any write"
            index = states.index(state)
            assert index <= len(returned), f"cut at {cut}, {mode}: holds a write that had not started"
            tally[f"lost {max(0, len(returned) - 1 - index)} committed"] += 1
    return total, tally


def test_power_loss_sample_during_repository_writes(template: Path, tmp_path: Path, vfs: PowerLossVFS) -> None:
    total, tally = crash_loop(template, tmp_path / "work.db", vfs, sample=20)
    assert total > 20
    assert sum(tally.values()) >= 3 * 20


@pytest.mark.slow
def test_power_loss_at_every_point_of_repository_writes(template: Path, tmp_path: Path, vfs: PowerLossVFS) -> None:
    total, tally = crash_loop(template, tmp_path / "work.db", vfs, sample=None)
    print(f"repository writes, WAL + NORMAL: {total} cut points x {len(MODES)} modes: {dict(sorted(tally.items()))}")
    assert sum(tally.values()) == total * len(MODES)
