"""Opening connections: file mode, driver configuration and the project's pragmas.

Every connection the library (and every tool) opens goes through `connect()`, so
the settings in `schema/pragmas.sql` hold everywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import apsw

from pychat_db.resources import PRAGMAS_FILE

_COMMENT = re.compile(r"--[^\n]*")

# Names a registered APSW VFS for connections opened without `vfs=` (tests only).
VFS_ENVIRONMENT_VARIABLE = "PYCHAT_DB_VFS"


def pragma_statements(text: str | None = None) -> list[str]:
    """The `PRAGMA ...` statements of `schema/pragmas.sql`, in file order."""
    if text is None:
        text = PRAGMAS_FILE.read_text(encoding="utf-8")
    body = _COMMENT.sub("", text)
    return [stmt.strip() for stmt in body.split(";") if stmt.strip()]


def create_private(path: str | os.PathLike[str]) -> None:
    """Create `path` empty with mode 0600 unless it exists.

    SQLite creates a new database with the process umask (usually 0644) and gives
    its `-wal`/`-shm` files the database's mode; the configuration holds an API
    key, so the file is created first, readable by its owner only.
    """
    try:
        fd = os.open(os.fspath(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def is_file_path(path: str | os.PathLike[str]) -> bool:
    name = os.fspath(path)
    return name != "" and name != ":memory:" and not name.startswith("file:")


def open_flags(path: str | os.PathLike[str], *, readonly: bool = False) -> int:
    """The `apsw.Connection` flags for `path`; creates the file 0600 first when it is missing (unless `readonly`).

    A read-only opening of a file that does not exist raises FileNotFoundError.
    """
    name = os.fspath(path)
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    if name.startswith("file:"):
        flags |= apsw.SQLITE_OPEN_URI
    if not readonly and is_file_path(name):
        create_private(name)
    if readonly and is_file_path(name) and not Path(name).exists():
        raise FileNotFoundError(f"{name}: no such database")
    return flags


def configure(conn: apsw.Connection, *, readonly: bool = False, pragmas: bool = True) -> None:
    """Configure an open connection: "defensive" driver settings, then `schema/pragmas.sql` unless `pragmas=False`.

    `pychat_db.aio` runs it in an async connection's worker thread, so both kinds of
    connection get the same settings.
    """
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
    if pragmas:
        for stmt in pragma_statements():
            if readonly and "journal_mode" in stmt:
                continue
            conn.execute(stmt).fetchall()


def default_vfs(vfs: str | None) -> str | None:
    """`vfs`, else the VFS the `PYCHAT_DB_VFS` environment variable names (tests only), else None."""
    if vfs is None:
        vfs = os.environ.get(VFS_ENVIRONMENT_VARIABLE) or None
    return vfs


def connect(
    path: str | os.PathLike[str] = "chat.db",
    *,
    vfs: str | None = None,
    readonly: bool = False,
    pragmas: bool = True,
) -> apsw.Connection:
    """Open `path` (created 0600 when missing, unless `readonly`) and apply the pragmas.

    `vfs` names a registered APSW VFS (tests use faulty ones); when None, the
    `PYCHAT_DB_VFS` environment variable may name one (so that tests can run a
    tool's `main()` over a faulty VFS). `pragmas=False`
    skips `schema/pragmas.sql` (the importer sets its own bulk-load pragmas).
    The driver is configured as SQLite's "defensive" advice says: double-quoted
    string literals are errors, and the schema cannot be corrupted by writes
    through SQL.
    """
    name = os.fspath(path)
    vfs = default_vfs(vfs)
    flags = open_flags(name, readonly=readonly)
    conn = apsw.Connection(name, flags=flags, vfs=vfs) if vfs else apsw.Connection(name, flags=flags)
    configure(conn, readonly=readonly, pragmas=pragmas)
    return conn
