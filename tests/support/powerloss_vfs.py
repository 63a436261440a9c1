"""A VFS that simulates power loss: writes not yet synced can be lost or torn.

`PowerLossVFS` inherits the default VFS. Every write and truncate goes to the
real file at once (so the running connection reads what it wrote), and is also
journaled in memory per file path together with the bytes it overwrote. An
`xSync` of a file makes its journaled changes durable (the journal of that file
is emptied). Then:

* `arm(cut_at=N)`: at fault point N (the Nth write, sync or truncate, as in
  `faulty_vfs`) the power goes off: that operation and every later one (write,
  sync, truncate, delete) fails with an I/O error, so nothing more reaches the
  files. The caller closes its connections (their errors are expected).
* `crash(mode)`: applies the loss to the files on disk, as the disk would hold
  them after power returns:
    - `DROP`:   every unsynced change is lost (each file is back to its state at
      its last sync);
    - `TORN`:   the unsynced changes reached the disk except the last write of
      each file, of which only the first half of its sectors arrived (a torn page);
    - `SUBSET`: an arbitrary (seeded random) subset of the unsynced changes
      arrived, in any combination, as with a disk cache that reorders writes.
  Then the database is reopened with the ordinary VFS, which must recover it.

Simplifications, documented in docs/reliability.md: creating and deleting a file
are durable at once (SQLite syncs the directory where it matters), and the
WAL's `-shm` file is not journaled (it is rebuilt by the first connection after
a crash, which SQLite does).
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import apsw

DROP = "drop"
TORN = "torn"
SUBSET = "subset"
MODES = (DROP, TORN, SUBSET)

_SECTOR = 512


@dataclass(slots=True)
class _Change:
    """One unsynced change: `data` written at `offset` (None: a truncate to `offset`).

    `old` is what the file held at [offset, offset + len) before, `old_size`
    its size before; together they undo the change.
    """

    offset: int
    data: bytes | None
    old: bytes
    old_size: int


@dataclass(slots=True)
class _State:
    points: int = 0
    cut_at: int | None = None
    off: bool = False
    pending: dict[str, list[_Change]] = field(default_factory=dict)


class PowerLossVFS(apsw.VFS):
    """The default VFS, journaling unsynced writes so that a power cut can be simulated.

    `fsync=False` (the default) skips the real fsync of `xSync`: durability is
    what this VFS simulates, the disk's own is irrelevant to the test.
    """

    def __init__(self, name: str = "powerloss", base: str = "", *, fsync: bool = False) -> None:
        self.name = name
        self.base = base
        self.fsync = fsync
        self._state = _State()
        self._lock = threading.Lock()
        super().__init__(name, base)

    # -- control ---------------------------------------------------------

    def arm(self, cut_at: int | None = None) -> None:
        """Start a run: counter 0, power on, nothing pending; cut the power at point `cut_at`."""
        with self._lock:
            self._state = _State(cut_at=cut_at)

    @property
    def points(self) -> int:
        return self._state.points

    @property
    def power_off(self) -> bool:
        return self._state.off

    def pending_changes(self) -> int:
        """Unsynced changes currently journaled (all files)."""
        return sum(len(v) for v in self._state.pending.values())

    def crash(self, mode: str = DROP, *, seed: int = 0) -> int:
        """Apply the power loss to the files on disk; return how many unsynced changes were lost or torn.

        Call it after every connection through this VFS is closed. The power
        stays off until the next `arm`.
        """
        if mode not in MODES:
            raise ValueError(f"unknown crash mode {mode!r}")
        rng = random.Random(seed)
        lost = 0
        with self._lock:
            self._state.off = True
            pending, self._state.pending = self._state.pending, {}
        for path, changes in pending.items():
            if not os.path.exists(path):
                continue
            fd = os.open(path, os.O_RDWR)
            try:
                for change in reversed(changes):  # back to the last synced image
                    os.pwrite(fd, change.old, change.offset)
                    os.ftruncate(fd, change.old_size)
                if mode == DROP:
                    lost += len(changes)
                    continue
                for index, change in enumerate(changes):
                    last = index == len(changes) - 1
                    if mode == SUBSET and rng.random() < 0.5:
                        lost += 1
                        continue
                    if change.data is None:
                        os.ftruncate(fd, change.offset)
                    elif mode == TORN and last:
                        sectors = max(1, (len(change.data) + _SECTOR - 1) // _SECTOR)
                        keep = min(len(change.data), (sectors // 2) * _SECTOR)
                        os.pwrite(fd, change.data[:keep], change.offset)
                        lost += 1
                    else:
                        os.pwrite(fd, change.data, change.offset)
            finally:
                os.close(fd)
        return lost

    # -- points ----------------------------------------------------------

    def _point(self, kind: str, path: str) -> None:
        with self._lock:
            state = self._state
            state.points += 1
            if state.cut_at is not None and state.points >= state.cut_at:
                state.off = True
            off = state.off
            number = state.points
        if off:
            exc = apsw.exception_for(apsw.SQLITE_IOERR)
            exc.args = (f"power off at point {number} ({kind} {path})",)
            raise exc

    def _record(self, path: str, change: _Change) -> None:
        with self._lock:
            self._state.pending.setdefault(path, []).append(change)

    def _synced(self, path: str) -> None:
        with self._lock:
            self._state.pending.pop(path, None)

    # -- VFS ------------------------------------------------------------

    def xOpen(self, name: Any, flags: list[int]) -> apsw.VFSFile:
        return PowerLossFile(self, name, flags)

    def xDelete(self, filename: str, syncdir: bool) -> None:
        self._point("delete", filename)
        self._synced(filename)
        super().xDelete(filename, syncdir)


class PowerLossFile(apsw.VFSFile):
    """A file of the base VFS whose unsynced changes are journaled in its VFS."""

    def __init__(self, vfs: PowerLossVFS, name: Any, flags: list[int]) -> None:
        self._vfs = vfs
        self._path = None if name is None else (name if isinstance(name, str) else str(name.filename()))
        super().__init__(vfs.base, name, flags)

    def xWrite(self, data: bytes, offset: int) -> None:
        self._vfs._point("write", self._path or "(temp)")
        if self._path is not None:
            size = self.xFileSize()
            old = super().xRead(len(data), offset) if offset < size else b""
            self._vfs._record(self._path, _Change(offset, bytes(data), bytes(old), size))
        super().xWrite(data, offset)

    def xTruncate(self, newsize: int) -> None:
        self._vfs._point("truncate", self._path or "(temp)")
        if self._path is not None:
            size = self.xFileSize()
            old = super().xRead(size - newsize, newsize) if newsize < size else b""
            self._vfs._record(self._path, _Change(newsize, None, bytes(old), size))
        super().xTruncate(newsize)

    def xSync(self, flags: int) -> None:
        self._vfs._point("sync", self._path or "(temp)")
        if self._vfs.fsync:
            super().xSync(flags)
        if self._path is not None:
            self._vfs._synced(self._path)


_INSTALLED: dict[str, PowerLossVFS] = {}


def install(name: str = "powerloss") -> PowerLossVFS:
    """Register (once per process) and return the PowerLossVFS called `name`, power on."""
    vfs = _INSTALLED.get(name)
    if vfs is None:
        vfs = _INSTALLED[name] = PowerLossVFS(name)
    vfs.arm(None)
    return vfs
