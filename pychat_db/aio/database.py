"""`AsyncDatabase`: `Database` for asyncio, trio and anyio programs, on APSW's own async connection::

async with AsyncDatabase("chat.db") as db:
    async with db.transaction():
        thread = await db.threads.create(Thread(name="Hi", created_at=now))
        await db.messages.create(Message(thread_id=thread.id, text="Hello", timestamp=now))
    page = await db.threads.list(limit=20)
    chat = await db.messages.list_before(thread.id, limit=50)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TypeVar

import apsw

from pychat_db.aio.framework import Framework, TaskLock, for_connection
from pychat_db.aio.repositories import ASYNC_CLASSES, AsyncRepositoryAttributes
from pychat_db.aio.session import AsyncSession
from pychat_db.connection import configure, default_vfs, is_file_path, open_flags
from pychat_db.errors import PychatDbError, translate
from pychat_db.migrations import migrate
from pychat_db.repositories.plans import Plan
from pychat_db.schema_check import check_schema

__all__ = ["DEFAULT_READERS", "AsyncDatabase", "open_async"]

R = TypeVar("R")

DEFAULT_READERS = 4  # read connections of a database file: readers run beside the writer and each other (WAL)


def _query_only(conn: apsw.Connection) -> None:
    conn.execute("PRAGMA query_only = ON")


async def open_async(path: str | os.PathLike[str], *, vfs: str | None = None) -> apsw.AsyncConnection:
    """Open `path` as an APSW async connection with the rules of `pychat_db.connection.connect`.

    The file is created 0600 when missing; the driver settings and `schema/pragmas.sql`
    are applied in the connection's worker thread.
    """
    name = os.fspath(path)
    vfs = default_vfs(vfs)
    flags = open_flags(name)
    try:
        if vfs:
            conn = await apsw.Connection.as_async(name, flags=flags, vfs=vfs)
        else:
            conn = await apsw.Connection.as_async(name, flags=flags)
    except apsw.Error as exc:
        raise translate(exc) from exc
    try:
        await conn.async_run(configure, conn)
    except BaseException as exc:
        await conn.aclose(force=True)
        if isinstance(exc, apsw.Error):
            raise translate(exc) from exc
        raise
    return conn


class AsyncDatabase(AsyncRepositoryAttributes):
    """Open `path` as `Database` does (0600, pragmas, schema check, migrate, seed), on APSW async connections.

    Repositories: `configuration`, `threads`, `messages`, `modes`, `mode_outputs`,
    `tags`, each method awaited; same names, arguments, models and errors as the sync
    ones (`pychat_db.aio.protocols`). Open it with `async with AsyncDatabase(...) as db`
    (or `await db.open()` … `await db.close()`) inside the event loop that uses it.

    Connections: one writer, and for a database file `readers` read connections
    (`PRAGMA query_only`), each with its own worker thread. Writes and
    `transaction()` blocks take the writer in turn (an async lock, then
    `BEGIN IMMEDIATE` for other processes), so concurrent writers never interleave
    and none is lost; reads outside a transaction go to a free reader, so they run
    beside the writer and each other instead of queueing behind it (WAL); a
    repository read sees committed data only, in one snapshot (a message always with
    its tags). Inside `transaction()` the task's reads and writes go to the writer
    (they see the block's own writes); tasks started inside a block share it. An
    in-memory database has no readers: everything goes to the writer.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "chat.db",
        *,
        vfs: str | None = None,
        seed_modes: bool = True,
        readers: int = DEFAULT_READERS,
    ) -> None:
        if readers < 0:
            raise ValueError(f"readers must be >= 0, got {readers!r}")
        self.path = os.fspath(path)
        self._vfs = vfs
        self._seed_modes = seed_modes
        self._reader_count = readers if is_file_path(self.path) else 0
        self._writer: AsyncSession | None = None
        self._readers: list[AsyncSession] = []
        self._free: list[AsyncSession] = []
        self._attach(ASYNC_CLASSES)

    # -- opening and closing ------------------------------------------------------------------

    async def open(self) -> AsyncDatabase:
        """Open, check, migrate and seed (see the class doc); returns self."""
        if self._writer is not None:
            raise PychatDbError(f"{self.path}: this AsyncDatabase is already open")
        conn = await open_async(self.path, vfs=self._vfs)
        framework = for_connection(conn)
        writer = AsyncSession(conn, framework)
        try:
            try:
                await writer.call(check_schema)
                await writer.call(migrate)
            except apsw.Error as exc:
                raise translate(exc) from exc
            self._framework: Framework = framework
            self._writer_lock = TaskLock(framework, f"pychat_db.aio:{id(self)}")
            self._writer = writer
            for _ in range(self._reader_count):
                reader = AsyncSession(await open_async(self.path, vfs=self._vfs), framework)
                self._readers.append(reader)
                await reader.call(_query_only)
            self._free = list(self._readers)
            self._reading = framework.semaphore(max(1, len(self._readers)))
            if self._seed_modes:
                await self.modes.seed_builtins()
        except BaseException:
            await self._close_all(writer, raise_errors=False)
            raise
        return self

    async def close(self) -> None:
        """Close every connection (idempotent); a failure to close is raised as `DatabaseError` (see `Database`)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await self._close_all(writer, raise_errors=True)

    async def _close_all(self, writer: AsyncSession, *, raise_errors: bool) -> None:
        readers, self._readers, self._free = self._readers, [], []
        self._writer = None
        first: PychatDbError | None = None
        for session in [*readers, writer]:
            try:
                await session.close()
            except PychatDbError as exc:
                first = first or exc
        if first is not None and raise_errors:
            raise first

    async def __aenter__(self) -> AsyncDatabase:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            await self.close()
            return
        with contextlib.suppress(PychatDbError):  # the block's own exception is the one to report
            await self.close()

    # -- running plans --------------------------------------------------------------------------

    def _session(self) -> AsyncSession:
        if self._writer is None:
            raise PychatDbError(f"{self.path}: the AsyncDatabase is not open (use `async with AsyncDatabase(...)`)")
        return self._writer

    @asynccontextmanager
    async def _writer_held(self) -> AsyncIterator[AsyncSession]:
        """The writer session, for this task alone (already ours inside `transaction()`)."""
        writer = self._session()
        async with self._writer_lock.hold():
            yield writer

    async def read(self, plan: Plan[R]) -> R:
        """Run a read method's plan: on a free reader, or on the writer inside a transaction or without readers."""
        self._session()
        if self._writer_lock.held or not self._readers:
            async with self._writer_held() as session:
                return await session.run(plan)
        async with self._reading:
            reader = self._free.pop()
            try:
                return await reader.run(plan)
            finally:
                self._free.append(reader)

    async def write(self, plan: Plan[R]) -> R:
        """Run a write method's plan on the writer, after any other task's write or transaction."""
        async with self._writer_held() as session:
            return await session.run(plan)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Run the block's reads and writes as one unit: all kept, or none when it raises or is cancelled.

        The outermost level takes the writer (other tasks' writes wait) and is `BEGIN
        IMMEDIATE`; nested levels are savepoints that roll back alone. A task cancelled
        at any await inside the block leaves the database as it was before it.
        """
        async with self._writer_held() as session, session.transaction():
            yield
