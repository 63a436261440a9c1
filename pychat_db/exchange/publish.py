"""The import's files: a new database built beside its target, then put in place atomically (for `loader`).

`StagedDatabase(target)` is the temporary file `.NAME.import-PID.tmp` beside `target`,
created 0600. `publish()` fsyncs it, lets SQLite settle what a crashed app left beside the
old target, and renames it over `target` while holding SQLite's locks on it
(`pychat_db.locks`: a target another connection has open is never replaced), then fsyncs
the directory. `discard()` removes it and its side files. A temporary file left by a killed
run is removed by the next run on the same target (`remove_stale_temps`: its process is gone).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

from pychat_db.connection import connect, create_private
from pychat_db.locks import DatabaseInUse, ensure_not_in_use, holding

__all__ = ["BackgroundSync", "StagedDatabase", "fsync_path", "remove_stale_temps", "temp_path_pattern"]

_JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")


def temp_path_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(target.name)}\.import-(\d+)\.tmp(-journal|-wal|-shm)?$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[str]:
    """Delete temporary files of imports into `target` whose process is gone; return their names."""
    pattern = temp_path_pattern(target)
    removed = []
    for path in sorted(target.parent.iterdir()):
        match = pattern.match(path.name)
        if match and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    return removed


def fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle_target(target: Path, shown: str) -> None:
    """Let SQLite finish the old target's own recovery (roll back a hot -journal, checkpoint a -wal).

    What a crashed app left must never be applied to the new file (the -wal and -journal
    are found by name). Only once `ensure_not_in_use` found no other connection: a file
    another process has open is left exactly as it is.
    """
    wal = Path(f"{target}-wal")
    journal = Path(f"{target}-journal")
    if not (wal.exists() or journal.exists()) or not target.exists():
        return
    ensure_not_in_use(target, shown)
    conn = connect(target, pragmas=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


def _check_settled(target: Path, shown: str) -> None:
    """With SQLite's locks held: no -wal frames and no hot -journal may stay beside the target.

    After `_settle_target` either means a connection wrote in between: refuse.
    """
    wal = Path(f"{target}-wal")
    with contextlib.suppress(FileNotFoundError):
        if wal.stat().st_size > 0:
            raise DatabaseInUse(shown, [f"{wal.name} holds frames written since it was checkpointed"])
    with contextlib.suppress(FileNotFoundError), Path(f"{target}-journal").open("rb") as journal:
        if journal.read(len(_JOURNAL_MAGIC)) == _JOURNAL_MAGIC:  # hot, or in use
            raise DatabaseInUse(shown, [f"{target.name}-journal holds a transaction"])


class StagedDatabase:
    """The new database's temporary file beside `target` (`.NAME.import-PID.tmp`)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = target.parent / f".{target.name}.import-{os.getpid()}.tmp"

    def create(self) -> None:
        """Create the file empty and private (0600), replacing what an earlier run of this pid left."""
        for suffix in ("", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()
        create_private(self.path)

    def publish(self, shown: str) -> None:
        """fsync the file (closed, committed), settle the old target, rename over it, fsync the directory.

        DatabaseInUse (`shown` names the target) when another connection has the old target open.
        """
        fsync_path(self.path)
        _settle_target(self.target, shown)
        with holding(self.target, shown):  # no connection can start reading or writing until the rename is done
            _check_settled(self.target, shown)
            os.replace(self.path, self.target)
            fsync_path(self.target.parent, directory=True)

    def discard(self) -> None:
        """Remove the file and its side files, whichever exist."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()


class BackgroundSync:
    """fsync of the temporary file in a thread while the checks run, so publishing has less left to flush.

    It only flushes what was written so far: the final fsync still runs after the
    commit, before the rename. An error seen here is raised by `join()` (a
    write-back error is reported to one fsync only).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: OSError | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="import-fsync", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            fsync_path(self.path)
        except OSError as exc:
            self.error = exc

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error
