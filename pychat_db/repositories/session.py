"""The connection the SQLite repositories share: transactions and error translation.

`transaction()` nests: the outermost level is `BEGIN IMMEDIATE` (the write lock is
taken at once, so two writers never deadlock upgrading a read lock), inner levels
are savepoints. Leaving a level by an exception rolls back that level only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import apsw

from pychat_db.errors import translate


class Session:
    """One APSW connection with nested transactions; APSW errors become the library's own."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._names = itertools.count(1)

    @contextmanager
    def errors(self, table: str) -> Iterator[None]:
        """Translate APSW errors raised in the block (`table`: the table being read or written)."""
        try:
            yield
        except apsw.Error as exc:
            raise translate(exc, table=table) from exc

    def _execute(self, sql: str) -> None:
        try:
            self.conn.execute(sql)
        except apsw.Error as exc:
            raise translate(exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (outermost: BEGIN IMMEDIATE … COMMIT) or a savepoint inside one."""
        outermost = not self.conn.in_transaction
        name = f"pychat_db_{next(self._names)}"
        self._execute("BEGIN IMMEDIATE" if outermost else f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._undo(outermost, name)
            raise
        if outermost:
            try:
                self.conn.execute("COMMIT")
            except apsw.Error as exc:
                self._undo(True, name)
                raise translate(exc) from exc
        else:
            self._execute(f"RELEASE {name}")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that must see one state of the database (a deferred read transaction unless one is open)."""
        if self.conn.in_transaction:
            yield
            return
        self._execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self._execute("COMMIT")

    def _undo(self, outermost: bool, name: str) -> None:
        # SQLite rolls the whole transaction back by itself after some errors (full
        # disk, I/O): then there is nothing left to undo.
        if not self.conn.in_transaction:
            return
        try:
            if outermost:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.execute(f"ROLLBACK TO {name}; RELEASE {name}")
        except apsw.Error:
            pass  # the error that brought us here is the one worth raising
