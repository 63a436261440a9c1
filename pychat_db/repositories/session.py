"""The connection the SQLite repositories share: transactions and error translation.

`transaction()` nests: the outermost level is `BEGIN IMMEDIATE` (the write lock is
taken at once, so two writers never deadlock upgrading a read lock), inner levels
are savepoints. Leaving a level by an exception rolls back that level only.
The steps (`begin`, `commit`, `undo`, ...) are functions of a connection, so that
`pychat_db.aio` runs the same ones in an async connection's worker thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import apsw

from pychat_db.errors import translate


def execute(conn: apsw.Connection, sql: str) -> None:
    """Run a statement that returns nothing; APSW errors become the library's own."""
    try:
        conn.execute(sql)
    except apsw.Error as exc:
        raise translate(exc) from exc


def begin(conn: apsw.Connection, outermost: bool, name: str) -> None:
    """Open a level: `BEGIN IMMEDIATE` (outermost) or `SAVEPOINT name`."""
    execute(conn, "BEGIN IMMEDIATE" if outermost else f"SAVEPOINT {name}")


def commit(conn: apsw.Connection, outermost: bool, name: str) -> None:
    """Close a level keeping its work: COMMIT (outermost; rolled back when it fails) or RELEASE."""
    if not outermost:
        execute(conn, f"RELEASE {name}")
        return
    try:
        conn.execute("COMMIT")
    except apsw.Error as exc:
        undo(conn, True, name)
        raise translate(exc) from exc


def undo(conn: apsw.Connection, outermost: bool, name: str) -> None:
    """Roll a level back (whatever failed, and however far its opening got: nothing happens when none is open)."""
    # SQLite rolls the whole transaction back by itself after some errors (full
    # disk, I/O): then there is nothing left to undo.
    if not conn.in_transaction:
        return
    try:
        if outermost:
            conn.execute("ROLLBACK")
        else:
            conn.execute(f"ROLLBACK TO {name}; RELEASE {name}")
    except apsw.Error:
        pass  # the error that brought us here is the one worth raising


def begin_read(conn: apsw.Connection) -> bool:
    """Open a deferred read transaction unless one is open; whether it did."""
    if conn.in_transaction:
        return False
    execute(conn, "BEGIN")
    return True


def end_read(conn: apsw.Connection) -> None:
    """Close the read transaction `begin_read` opened (if it is still open)."""
    if conn.in_transaction:
        execute(conn, "COMMIT")


class Session:
    """One APSW connection with nested transactions; APSW errors become the library's own."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._names = itertools.count(1)

    def savepoint_name(self) -> str:
        """A name for a new level, unique on this session (an async session's levels share it)."""
        return f"pychat_db_{next(self._names)}"

    @contextmanager
    def errors(self, table: str) -> Iterator[None]:
        """Translate APSW errors raised in the block (`table`: the table being read or written)."""
        try:
            yield
        except apsw.Error as exc:
            raise translate(exc, table=table) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (outermost: BEGIN IMMEDIATE … COMMIT) or a savepoint inside one."""
        outermost = not self.conn.in_transaction
        name = self.savepoint_name()
        begin(self.conn, outermost, name)
        try:
            yield
        except BaseException:
            undo(self.conn, outermost, name)
            raise
        commit(self.conn, outermost, name)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that must see one state of the database (a deferred read transaction unless one is open)."""
        if not begin_read(self.conn):
            yield
            return
        try:
            yield
        finally:
            end_read(self.conn)
