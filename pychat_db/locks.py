"""Whether another connection has a database open, and keeping it out while the file is replaced.

Replacing or deleting a database file that a connection has open corrupts it
(SQLite's "How To Corrupt An SQLite Database File", section 2.4): the connection
keeps the old file and writes its `-wal` (found by name) beside the new one, and
SQLite later applies those frames to the new file. `holding(db, shown)` is
what the importer wraps its rename in. It sees other connections the way SQLite
does, through its locks, and on Linux also through the open files of processes:

* **SQLite's locks.** A helper process (`pychat_db/_lockholder.py`) tries to take,
  without waiting, write locks on the bytes SQLite's unix VFS locks: the PENDING,
  RESERVED and SHARED bytes of the database file and the WAL-index locks and DMS
  byte of `-shm`. Every connection to a WAL database (the project's mode) holds a
  SHARED lock on the file for as long as it is open, idle or not, once it has read
  anything; a connection in rollback-journal mode holds one during a transaction.
  Any of them makes the attempt fail: `DatabaseInUse`. When it succeeds, the locks
  stay held until the block ends, so no connection can begin a read or a write
  meanwhile (its busy handler waits; `busy_timeout` is 5 s in this project).
  A helper process, because POSIX locks belong to a process: opening and closing
  the file here would drop the locks of this process's own connections.
* **Open files (Linux).** Connections that hold no lock are invisible to the
  locks: one in rollback-journal mode between transactions, or one opened that
  has not read yet. Both keep the file open, so the file descriptors of every
  process in `/proc/*/fd` are compared with the database, `-wal`, `-shm` and
  `-journal` (device and inode); a match is `DatabaseInUse` too, after the locks
  are taken (a process opening the file later waits on them).

What is not seen: processes of another user that hold no lock (their `/proc`
entries are not readable), a connection without locks on a system without
`/proc`, SQLite builds using another locking scheme (the `unix-dotfile` or
`unix-none` VFS), and a process that opens the file in the moment between the
`/proc` scan and the rename (it then waits on the held locks and reads the old,
unlinked file).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pychat_db.errors import PychatDbError

__all__ = ["DatabaseInUse", "Opener", "ensure_not_in_use", "holding", "processes_with_open"]

HOLDER = Path(__file__).with_name("_lockholder.py")
SIDE_FILES = ("-wal", "-shm", "-journal")
_PROC = Path("/proc")


class DatabaseInUse(PychatDbError):
    """Another connection has the database open; nothing was changed. `evidence` says how it was seen."""

    def __init__(self, shown: str, evidence: Sequence[str], *, this_process: bool = False) -> None:
        if this_process:
            message = f"{shown} is open in this process (another connection); close it and retry"
        else:
            message = f"{shown} is open in another process; stop the app and retry"
        super().__init__(message)
        self.shown = shown
        self.evidence = tuple(evidence)
        self.this_process = this_process


@dataclass(frozen=True)
class Opener:
    """A process that has one of the database's files open."""

    pid: int
    command: str
    file: str

    def __str__(self) -> str:
        return f"process {self.pid} ({self.command}) has {self.file} open"


def _identities(db: Path) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    for suffix in ("", *SIDE_FILES):
        path = Path(f"{db}{suffix}")
        with contextlib.suppress(OSError):
            st = path.stat()
            found[(st.st_dev, st.st_ino)] = path.name
    return found


def processes_with_open(db: str | os.PathLike[str], exclude: Collection[int] = ()) -> list[Opener]:
    """The processes (this one included, `exclude` left out) that have `db` or its side files open.

    Read from `/proc/PID/fd` (Linux); only the processes whose entries this user may read
    are seen, and none where there is no `/proc`.
    """
    wanted = _identities(Path(db))
    if not wanted or not (_PROC / "self" / "fd").is_dir():
        return []
    names = set(wanted.values())
    openers: list[Opener] = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        fds = f"{entry.path}/fd"
        try:
            links = os.listdir(fds)
        except OSError:  # another user's process, or gone
            continue
        for fd in links:
            link = f"{fds}/{fd}"
            try:
                if os.path.basename(os.readlink(link)) not in names:  # cheap filter before the stat
                    continue
                st = os.stat(link)
            except OSError:
                continue
            file = wanted.get((st.st_dev, st.st_ino))
            if file is not None:
                try:
                    command = Path(f"{entry.path}/comm").read_text(encoding="utf-8", errors="replace").strip()
                except OSError:
                    command = "?"
                openers.append(Opener(int(entry.name), command, file))
                break
    return openers


@contextlib.contextmanager
def holding(db: str | os.PathLike[str], shown: str | None = None) -> Iterator[None]:
    """Hold SQLite's locks on `db` for the block, once sure no other connection has it open.

    Raises DatabaseInUse (naming `db` as `shown`, by default as given) when SQLite's locks
    are held by another connection or (Linux) a process has the file open; OSError when the
    locks cannot be tried (the file cannot be opened for writing). A missing `db` is not
    locked (there is nothing to protect). While the block runs no connection can begin a
    transaction on `db`; they wait, and go on when it ends.
    """
    path = os.fspath(db)
    shown = path if shown is None else shown
    if not os.path.lexists(path):
        yield
        return
    helper = subprocess.Popen(
        [sys.executable, "-I", "-S", str(HOLDER), path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert helper.stdin is not None and helper.stdout is not None and helper.stderr is not None
    try:
        answer = helper.stdout.readline().decode("utf-8", "replace").strip()
        if answer.startswith("error "):
            raise OSError(f"{shown}: cannot take its locks to see whether it is in use: {answer[6:]}")
        if answer not in ("held", "absent", "busy database", "busy shm"):
            detail = helper.stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise OSError(f"{shown}: the lock helper failed: {detail[-1] if detail else 'no answer'}")
        name = Path(path).name
        evidence = {
            "busy database": [f"another connection holds SQLite's lock on {name}"],
            "busy shm": [f"another connection holds SQLite's WAL-index lock on {name}-shm"],
        }.get(answer, [])
        openers = processes_with_open(path, exclude={helper.pid})
        if evidence or openers:
            own = bool(openers) and all(o.pid == os.getpid() for o in openers)
            raise DatabaseInUse(shown, evidence + [str(o) for o in openers], this_process=own)
        yield
    finally:
        helper.stdin.close()
        helper.stdout.close()
        helper.stderr.close()
        helper.wait()


def ensure_not_in_use(db: str | os.PathLike[str], shown: str | None = None) -> None:
    """Raise DatabaseInUse if another connection has `db` open (see `holding`); takes nothing."""
    with holding(db, shown):
        pass
