"""The connection the SQLite repositories share: named queries, transactions, error translation.

`transaction()` nests: the outermost level is `BEGIN IMMEDIATE` (the write lock is
taken at once, so two writers never deadlock upgrading a read lock), inner levels
are savepoints. Leaving a level by an exception rolls back that level only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import aiosql
import apsw

from pychat_db.errors import translate
from pychat_db.resources import QUERIES_DIR

T = TypeVar("T")

QUERIES: Any = aiosql.from_path(QUERIES_DIR, "apsw")
"""Every named query of `queries/`, loaded once (aiosql over APSW)."""


class Session:
    """One APSW connection with the project's named queries and nested transactions."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.queries: Any = QUERIES
        self._names = itertools.count(1)

    def run(self, table: str, query: Callable[..., T], **params: object) -> T:
        """Call a named query on this connection; APSW errors become the library's own."""
        try:
            return query(self.conn, **params)
        except apsw.Error as exc:
            raise translate(exc, table=table) from exc

    def rows(self, table: str, query: Callable[..., Iterator[T]], **params: object) -> list[T]:
        """Call a row-returning named query and read all its rows."""
        try:
            return list(query(self.conn, **params))
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
