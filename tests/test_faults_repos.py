"""Every I/O fault point of each repository write, on a populated database.

The writes: add a message with three tags and a 20 KB blob, delete a thread
with its cascade (messages, tag links, mode outputs), update a mode, replace
the configuration. Each is run on a fresh copy of a populated database (WAL,
the project's pragmas), through `Database`, with the Nth write, sync or
truncate failing (I/O error or disk full, once or for good), the fault points
including those of the checkpoint when the database is closed. Afterwards:

* an operation that failed raised the library's own exception, never a raw
  APSW one, and so did a failing `close()`;
* the file, reopened with the ordinary VFS, passes `integrity_check` and
  `foreign_key_check`;
* it holds exactly the state before the operation if the operation failed,
  and exactly the state after it if it reported success (a fault may land
  after the commit, in the checkpoint on close: the commit stands).

Every point of every operation is tried in the default run (about 5 s).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import apsw
import pytest

from pychat_db.database import Database
from pychat_db.errors import PychatDbError
from pychat_db.models import Configuration, Message, Mode, ModeOutput, Tag, Thread
from tests.support.faulty_vfs import FULL, IOERR, Fault, FaultyVFS, copy_db, db_digest, install

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
SECRET = "sk-test-0123456789abcdef"


def populate(path: Path) -> None:
    """5 threads x 40 messages (every 10th with a 4 KB blob), 10 tags, 1-3 tags per message,
    a custom mode with outputs, and the configuration."""
    with Database(path) as db, db.transaction():
        db.configuration.upsert(Configuration(api_key=SECRET, model_name="model-1", base_url=None))
        tags = [db.tags.create(Tag(name=f"tag{i}", description=f"tag number {i}")) for i in range(10)]
        mode = db.modes.create(Mode(name="custom", prompt="summarise"))
        for t in range(5):
            thread = db.threads.create(Thread(name=f"thread {t}", created_at=T0 + dt.timedelta(days=t)))
            assert thread.id is not None and mode.id is not None
            for m in range(40):
                db.messages.create(
                    Message(
                        thread_id=thread.id,
                        text=f"message {m} of thread {t} " * 5,
                        timestamp=T0 + dt.timedelta(days=t, minutes=m),
                        file_data=bytes([m % 256]) * 4096 if m % 10 == 0 else None,
                        mime_type="application/octet-stream" if m % 10 == 0 else None,
                        tags=tuple(tags[(m + k) % 10] for k in range(1 + m % 3)),
                    )
                )
            for k in range(3):
                db.mode_outputs.create(
                    ModeOutput(thread_id=thread.id, mode_id=mode.id, created_at=T0, content=f"output {k}")
                )


def add_message(db: Database) -> None:
    thread = db.threads.list(limit=1)[0]
    tags = tuple(db.tags.list()[:3])
    assert thread.id is not None
    db.messages.create(
        Message(
            thread_id=thread.id,
            text="new message with a file",
            timestamp=T0 + dt.timedelta(days=30),
            type=db.messages.get(1).type,
            file_data=bytes(range(256)) * 80,
            mime_type="image/png",
            file_name="picture.png",
            tags=tags,
        )
    )


def delete_thread(db: Database) -> None:
    thread = db.threads.list(limit=1)[0]
    assert thread.id is not None
    db.threads.delete(thread.id)


def update_mode(db: Database) -> None:
    mode = next(m for m in db.modes.list() if m.name == "custom")
    db.modes.update(Mode(id=mode.id, name="custom, renamed", prompt="summarise in one line " * 20))


def replace_configuration(db: Database) -> None:
    db.configuration.upsert(Configuration(api_key=SECRET + "-rotated", model_name="model-2", base_url="https://x.test"))


OPERATIONS: dict[str, Callable[[Database], None]] = {
    "add a message with tags and a blob": add_message,
    "delete a thread with its cascade": delete_thread,
    "update a mode": update_mode,
    "replace the configuration": replace_configuration,
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults-repos") / "template.db"
    populate(path)
    return path


@pytest.fixture(scope="module")
def vfs() -> FaultyVFS:
    return install("faulty-repos")


def run_once(
    vfs: FaultyVFS, template: Path, work: Path, operation: Callable[[Database], None], fault: Fault | None
) -> tuple[BaseException | None, BaseException | None]:
    """Copy, open (unarmed), arm, run the operation, close; return (operation error, close error)."""
    copy_db(template, work)
    vfs.arm(None)
    db = Database(work, vfs=vfs.name)
    vfs.arm(fault)
    op_error: BaseException | None = None
    close_error: BaseException | None = None
    try:
        operation(db)
    except Exception as exc:
        op_error = exc
    try:
        db.close()
    except Exception as exc:
        close_error = exc
        # the connection must not stay open whatever close() said
        db.connection.close()
    vfs.arm(None)
    return op_error, close_error


def fault_loop(template: Path, work: Path, vfs: FaultyVFS, name: str, sample: int | None) -> tuple[int, Counter[str]]:
    operation = OPERATIONS[name]
    before = db_digest(template)
    assert run_once(vfs, template, work, operation, None) == (None, None)
    after = db_digest(work)
    assert before != after, f"{name}: the operation changed nothing"
    vfs.arm(None)
    copy_db(template, work)
    db = Database(work, vfs=vfs.name)
    vfs.arm(None)
    operation(db)
    db.close()
    total = vfs.points
    assert total > 0

    if sample is None:
        plan = [Fault(n, e, p) for n in range(1, total + 1) for e in (IOERR, FULL) for p in (False, True)]
    else:
        step = max(1, total // sample)
        points = sorted({1, total, *range(1, total + 1, step)})
        plan = [Fault(n, e) for n in points for e in (IOERR, FULL)]
        plan += [Fault(n, FULL, persistent=True) for n in points[::4]]
    tally: Counter[str] = Counter()
    for fault in plan:
        op_error, close_error = run_once(vfs, template, work, operation, fault)
        for error in (op_error, close_error):
            if error is not None:
                assert isinstance(error, PychatDbError), f"{name}, {fault}: {error!r} is not the library's"
                assert not isinstance(error, apsw.Error)
        state = db_digest(work)
        if op_error is None:
            assert state == after, f"{name}, {fault}: reported success, but the change is not there"
            tally["success" + (", close failed" if close_error else "")] += 1
        else:
            assert state == before, f"{name}, {fault}: failed ({op_error}), but the database changed"
            tally["failed, unchanged"] += 1
        assert SECRET not in str(op_error) and SECRET not in str(close_error)
    return total, tally


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_fault_point_of_each_repository_write(template: Path, tmp_path: Path, vfs: FaultyVFS, name: str) -> None:
    total, tally = fault_loop(template, tmp_path / "work.db", vfs, name, sample=None)
    print(f"{name}: {total} fault points x 2 errors x 2 persistences: {dict(sorted(tally.items()))}")
    assert sum(tally.values()) == 4 * total
    assert tally["failed, unchanged"] > 0 and tally["success, close failed"] > 0, tally
