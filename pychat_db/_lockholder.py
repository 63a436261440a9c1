"""The helper process of `pychat_db.locks`: takes SQLite's locks on a database and holds them until told.

Run as `python -I -S _lockholder.py DB` (standard library only: this file is run by
path, without the package). It opens DB (and its `-shm` when there is one) without
creating anything, and tries, without waiting, to take the byte-range locks that
SQLite's unix VFS uses, as write locks:

* on the database file, the PENDING byte, the RESERVED byte and the SHARED range
  (offset 0x40000000, 512 bytes): what SQLite takes for an EXCLUSIVE lock. Every
  connection in WAL mode keeps a SHARED lock there while it is open; a connection
  in rollback-journal mode holds one during each transaction;
* on the `-shm` file, the eight WAL-index locks and the DMS byte (offset 120,
  9 bytes): every connection that has the WAL-index open keeps the DMS byte
  locked (shared).

It prints one line, `held`, `busy database`, `busy shm` or `absent`, then (when
held) waits for its standard input to close and exits, which releases the locks.
While they are held no SQLite connection can begin a read or write transaction on
the file (its busy handler waits). A child process does this so that opening and
closing these files never drops a POSIX lock of the caller's own connections
(POSIX locks belong to a process and go when any of its descriptors of the file
is closed). SIGINT is ignored: the caller ends this process by closing the pipe.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys

PENDING_BYTE = 0x40000000
DB_LOCKS = (PENDING_BYTE, 2 + 510)  # PENDING, RESERVED, SHARED range (os_unix.c)
SHM_LOCKS = (120, 8 + 1)  # WALINDEX_LOCK_OFFSET, SQLITE_SHM_NLOCK locks + the DMS byte


def _lock(fd: int, start: int, length: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start, os.SEEK_SET)
    except (BlockingIOError, PermissionError):
        return False
    return True


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # a caller may have SIGTERM blocked while it starts this process
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    db = argv[1]
    try:
        fd = os.open(db, os.O_RDWR)
    except FileNotFoundError:
        print("absent", flush=True)
        return 0
    except OSError as exc:
        print(f"error {exc.strerror}", flush=True)
        return 0
    if not _lock(fd, *DB_LOCKS):
        print("busy database", flush=True)
        return 0
    try:
        shm = os.open(f"{db}-shm", os.O_RDWR)
    except FileNotFoundError:
        shm = -1
    except OSError as exc:
        print(f"error {db}-shm: {exc.strerror}", flush=True)
        return 0
    if shm >= 0 and not _lock(shm, *SHM_LOCKS):
        print("busy shm", flush=True)
        return 0
    print("held", flush=True)
    sys.stdin.buffer.read()  # until the caller closes the pipe (or dies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
