"""`Database`: one SQLite file, migrated, with the repositories the app uses::

with Database("chat.db") as db:
    with db.transaction():
        thread = db.threads.create(Thread(name="Hello", created_at=datetime.now(UTC)))
        db.messages.create(Message(thread_id=thread.id, text="Hi", timestamp=datetime.now(UTC)))
    page = db.threads.list(limit=20)
    older = db.threads.list(limit=20, before=page[-1])
    chat = db.messages.list_before(thread.id, limit=50)  # the latest 50, oldest first
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import apsw

from pychat_db.connection import connect
from pychat_db.errors import PychatDbError, translate
from pychat_db.migrations import migrate
from pychat_db.repositories import sqlite
from pychat_db.repositories.session import Session
from pychat_db.schema_check import check_schema


class Database:
    """Open `path` (created 0600 when missing) with the project's pragmas, migrate it, seed the built-in modes.

    A file whose schema is not ours (an unexpected table, index, trigger or view)
    is refused with SchemaMismatch before anything is written to it.

    `vfs` names a registered APSW VFS. `seed_modes=False` leaves an empty `modes`
    table empty (an import brings its own). Repositories: `configuration`,
    `threads`, `messages`, `modes`, `mode_outputs`, `tags`. One `Database` is one
    connection: use it from one thread at a time.
    """

    def __init__(
        self, path: str | os.PathLike[str] = "chat.db", *, vfs: str | None = None, seed_modes: bool = True
    ) -> None:
        self.path = os.fspath(path)
        try:
            self.connection: apsw.Connection = connect(path, vfs=vfs)
        except apsw.Error as exc:
            raise translate(exc) from exc
        try:
            check_schema(self.connection)
            migrate(self.connection)
            self._session = Session(self.connection)
            self.configuration = sqlite.SQLiteConfigurationRepository(self._session)
            self.threads = sqlite.SQLiteThreadRepository(self._session)
            self.tags = sqlite.SQLiteTagRepository(self._session)
            self.messages = sqlite.SQLiteMessageRepository(self._session)
            self.modes = sqlite.SQLiteModeRepository(self._session)
            self.mode_outputs = sqlite.SQLiteModeOutputRepository(self._session)
            if seed_modes:
                self.modes.seed_builtins()
        except apsw.Error as exc:
            self.connection.close()
            raise translate(exc) from exc
        except BaseException:
            self.connection.close()
            raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block's reads and writes as one unit: all kept, or none when it raises.

        The outermost level is `BEGIN IMMEDIATE` (takes the write lock at once, so
        concurrent writers wait for each other instead of deadlocking); nested
        levels are savepoints that roll back alone.
        """
        with self._session.transaction():
            yield

    def close(self) -> None:
        """Close the connection (idempotent).

        Closing checkpoints the WAL; if that fails (I/O error, full disk) the
        connection is closed anyway, the committed transactions stay in the WAL
        for the next opening, and the failure is raised as `DatabaseError`.
        """
        try:
            self.connection.close()
        except apsw.Error as exc:
            self.connection.close(force=True)
            raise translate(exc) from exc

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        with contextlib.suppress(PychatDbError):  # the block's own exception is the one to report
            self.close()
