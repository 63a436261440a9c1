"""A VFS that fails the Nth write, sync or truncate: I/O fault injection for tests.

`FaultyVFS` inherits the default VFS (APSW lets a Python `apsw.VFS` wrap it) and
numbers every *fault point* of the connections opened through it: each
`xWrite`, `xSync` and `xTruncate` on any of their files (main database,
rollback journal, WAL, temporary files) counts as one point, in the order
SQLite issues them. Armed with a `Fault`, the VFS makes point number `at` raise
an I/O error (`SQLITE_IOERR_WRITE`, `_FSYNC`, `_TRUNCATE`) or "disk full"
(`SQLITE_FULL`) instead of touching the file; with `persistent=True` every later
point fails too (a disk that stays full or a device that went away).

Typical loop (see `sweep`)::

    vfs = install("faulty")
    total = count_points(vfs, lambda: operation())   # dry run, no fault
    for n in range(1, total + 1):
        vfs.arm(Fault(n))
        ...  # run the operation on a fresh copy, then check the file with the plain VFS

The `-shm` file of WAL mode is memory-mapped through `xShmMap`, which the
wrapped VFS provides unchanged: it is not a fault point (SQLite rebuilds it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

WRITE = "write"
SYNC = "sync"
TRUNCATE = "truncate"
KINDS = frozenset({WRITE, SYNC, TRUNCATE})

IOERR = "ioerr"
FULL = "full"

_IOERR_CODES = {
    WRITE: apsw.SQLITE_IOERR_WRITE,
    SYNC: apsw.SQLITE_IOERR_FSYNC,
    TRUNCATE: apsw.SQLITE_IOERR_TRUNCATE,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """Fail fault point number `at` (1-based) with `error` (IOERR or FULL).

    `persistent`: every point after it fails as well. `kinds` restricts which
    operations are counted as points (all three by default).
    """

    at: int
    error: str = IOERR
    persistent: bool = False

    def __post_init__(self) -> None:
        if self.at < 1:
            raise ValueError("fault points are numbered from 1")
        if self.error not in (IOERR, FULL):
            raise ValueError(f"unknown error kind {self.error!r}")


@dataclass(slots=True)
class Point:
    """One counted operation: its number, kind and the file it touched."""

    number: int
    kind: str
    file: str
    failed: bool


@dataclass(slots=True)
class _State:
    points: int = 0
    fault: Fault | None = None
    fired: list[Point] = field(default_factory=list)
    trace: list[Point] | None = None


def _exception(kind: str, error: str, file: str, number: int) -> Exception:
    code = apsw.SQLITE_FULL if error == FULL else _IOERR_CODES[kind]
    exc = apsw.exception_for(code)
    exc.args = (f"injected {error} at fault point {number} ({kind} {file})",)
    return exc


class FaultyVFS(apsw.VFS):
    """The default VFS with numbered, injectable write/sync/truncate failures.

    Counting and arming are process-wide for this VFS name: every connection
    opened with `vfs=name` shares the counter. `fsync=False` (the default)
    counts each `xSync` but skips the real fsync: the loops run hundreds of
    transactions and durability is not what they test (the power-loss VFS is).
    """

    def __init__(self, name: str = "faulty", base: str = "", *, fsync: bool = False) -> None:
        self.name = name
        self.base = base
        self.fsync = fsync
        self._state = _State()
        self._lock = threading.Lock()
        super().__init__(name, base)

    # -- control ---------------------------------------------------------

    def arm(self, fault: Fault | None, *, trace: bool = False) -> None:
        """Reset the counter and fail according to `fault` (None: only count)."""
        with self._lock:
            self._state = _State(fault=fault, trace=[] if trace else None)

    def disarm(self) -> None:
        """Stop failing; keep counting from where we are."""
        with self._lock:
            self._state.fault = None

    @property
    def points(self) -> int:
        """Fault points seen since the last `arm`."""
        return self._state.points

    @property
    def fired(self) -> list[Point]:
        """The points that failed since the last `arm`."""
        return list(self._state.fired)

    @property
    def trace(self) -> list[Point]:
        """Every point since `arm(..., trace=True)`."""
        return list(self._state.trace or [])

    def point(self, kind: str, file: str) -> None:
        """Count one point; raise the injected error if it is the armed one."""
        with self._lock:
            state = self._state
            state.points += 1
            number = state.points
            fault = state.fault
            fail = fault is not None and (number == fault.at or (fault.persistent and number > fault.at))
            record = Point(number, kind, file, fail)
            if state.trace is not None:
                state.trace.append(record)
            if fail:
                state.fired.append(record)
        if fail:
            assert fault is not None
            raise _exception(kind, fault.error, file, number)

    # -- VFS ------------------------------------------------------------

    def xOpen(self, name: Any, flags: list[int]) -> apsw.VFSFile:
        return FaultyFile(self, name, flags)


def _file_name(name: Any) -> str:
    if name is None:
        return "(temp)"
    if isinstance(name, str):
        return name
    return str(name.filename())


class FaultyFile(apsw.VFSFile):
    """A file of the base VFS whose writes, syncs and truncates are fault points."""

    def __init__(self, vfs: FaultyVFS, name: Any, flags: list[int]) -> None:
        self._vfs = vfs
        self._name = _file_name(name)
        super().__init__(vfs.base, name, flags)

    def xWrite(self, data: bytes, offset: int) -> None:
        self._vfs.point(WRITE, self._name)
        super().xWrite(data, offset)

    def xSync(self, flags: int) -> None:
        self._vfs.point(SYNC, self._name)
        if self._vfs.fsync:
            super().xSync(flags)

    def xTruncate(self, newsize: int) -> None:
        self._vfs.point(TRUNCATE, self._name)
        super().xTruncate(newsize)


_INSTALLED: dict[str, FaultyVFS] = {}


def install(name: str = "faulty") -> FaultyVFS:
    """Register (once per process) and return the FaultyVFS called `name`, disarmed."""
    vfs = _INSTALLED.get(name)
    if vfs is None:
        vfs = _INSTALLED[name] = FaultyVFS(name)
    vfs.arm(None)
    return vfs


def count_points(vfs: FaultyVFS, operation: Callable[[], object]) -> int:
    """Run `operation` with no fault armed; return how many fault points it passed."""
    vfs.arm(None)
    operation()
    return vfs.points


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one faulted run did: the fault, whether it fired, and the exception raised (None: success)."""

    fault: Fault
    fired: bool
    error: BaseException | None


def sweep(
    vfs: FaultyVFS,
    total: int,
    run: Callable[[], object],
    *,
    errors: tuple[str, ...] = (IOERR, FULL),
    persistent: tuple[bool, ...] = (False,),
    points: Iterator[int] | range | list[int] | None = None,
) -> Iterator[Outcome]:
    """For each point (default 1..total), error and persistence: arm, call `run`, disarm, yield the outcome.

    `run` must prepare its own fresh database and close its connections; the
    caller checks the file after each outcome with the plain VFS.
    """
    for number in points if points is not None else range(1, total + 1):
        for error in errors:
            for keep in persistent:
                fault = Fault(number, error, keep)
                vfs.arm(fault)
                raised: BaseException | None = None
                try:
                    run()
                except Exception as exc:  # the caller judges which exceptions are acceptable
                    raised = exc
                finally:
                    fired = bool(vfs.fired)
                    vfs.arm(None)
                yield Outcome(fault, fired, raised)


# -- database files ---------------------------------------------------------

SIDE_FILES = ("-journal", "-wal", "-shm")


def remove_db(path: str | os.PathLike[str]) -> None:
    """Delete a database file and its journal, WAL and shared-memory files, if present."""
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.fspath(path) + suffix)


def copy_db(template: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Replace `path` (and its side files) by a copy of the closed, checkpointed `template`."""
    remove_db(path)
    shutil.copyfile(template, path)
    os.chmod(path, 0o600)


def check_db(path: str | os.PathLike[str]) -> apsw.Connection:
    """Open `path` with the ordinary VFS (recovering a hot journal or WAL), assert it is sound, return it.

    Sound: `PRAGMA integrity_check` says ok and `PRAGMA foreign_key_check` finds nothing.
    """
    conn = apsw.Connection(os.fspath(path))
    # the checks only read; skip the real fsyncs of recovery and of the checkpoint on close
    conn.execute("PRAGMA synchronous = OFF")
    integrity = conn.execute("PRAGMA integrity_check").fetchall()
    assert integrity == [("ok",)], f"{path}: integrity_check: {integrity[:5]}"
    orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
    assert orphans == [], f"{path}: foreign_key_check: {orphans[:5]}"
    return conn


def tables_digest(conn: apsw.Connection) -> str:
    """SHA-256 of every row of every table of the contract in `conn`, in key order."""
    from pychat_db.exchange.contract import COLLECTIONS

    h = hashlib.sha256()
    for collection in COLLECTIONS:
        h.update(repr(conn.execute(f"SELECT * FROM {collection.table} ORDER BY 1, 2").fetchall()).encode())
    return h.hexdigest()


def db_digest(path: str | os.PathLike[str]) -> str:
    """`tables_digest` of the database at `path`, once `check_db` has found it sound."""
    conn = check_db(path)
    try:
        return tables_digest(conn)
    finally:
        conn.close()


def import_leftovers(directory: Path) -> list[str]:
    """The import's temporary files (`.NAME.import-PID.tmp` and its journal) left in `directory`."""
    return sorted(p.name for p in directory.iterdir() if ".import-" in p.name)
