"""One async connection: its nested transactions and the plan runner.

Every call goes to the connection's worker thread through APSW's async connection
(`AsyncConnection.async_run`); what runs there is the sync step functions of
`pychat_db.repositories.session` and the generated queries, so the SQL and the
transaction rules are those of the sync library.

A repository method's plan is carried out whole in the worker, in one call
(`run`): its queries, its nested transaction or snapshot, its error handling and
the mapping of rows to models run there, one after the other, as `Database` runs
them. A trip to the worker costs more than most statements (a queue, a thread
wake-up, a wake-up of the loop, the GIL handed over twice: tens to hundreds of
microseconds), so a page read with its tags is one trip, not three; and a
method's statements never interleave with another task's on the same connection.

Cancellation: a task cancelled at any await inside a transaction leaves the database
as it was before the block. The call it was awaiting is either skipped (still queued),
interrupted (APSW's progress handler: the plan's own transaction or savepoint is
rolled back in the worker), or finished; in every case the rollback that follows is
queued behind it on the same worker thread and is shielded from the cancellation, so
it always runs, and it checks in the worker whether a transaction is open (a
cancelled `BEGIN IMMEDIATE` may or may not have run). The closing `COMMIT` is
shielded too: once it is sent the block's work is kept, and the cancellation is
delivered after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import apsw

from pychat_db.aio.framework import Framework
from pychat_db.errors import translate
from pychat_db.repositories import session as steps
from pychat_db.repositories.plans import Plan, run

__all__ = ["AsyncSession"]

R = TypeVar("R")


class AsyncSession:
    """An async connection (`conn`) with nested transactions and a plan runner."""

    def __init__(self, conn: apsw.AsyncConnection, framework: Framework) -> None:
        self.conn = conn
        self.framework = framework
        # In its worker thread an async connection runs every call at once: there it is the Connection it wraps.
        self._worker_view = cast(apsw.Connection, conn)
        # The sync session that plans run on in the worker; its savepoint names are this session's too.
        self._plans = steps.Session(self._worker_view)
        self._depth = 0

    async def call(self, function: Callable[..., R], *args: Any) -> R:
        """`function(connection, *args)` in the connection's worker thread."""
        return cast(R, await self.conn.async_run(function, self._worker_view, *args))

    async def _shielded_call(self, function: Callable[..., R], *args: Any) -> R:
        return await self.framework.shielded(lambda: self.call(function, *args))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A write transaction (outermost: BEGIN IMMEDIATE … COMMIT) or a savepoint inside one."""
        outermost = self._depth == 0
        name = self._plans.savepoint_name()
        try:
            await self.call(steps.begin, outermost, name)
        except BaseException:
            await self._shielded_call(steps.undo, outermost, name)
            raise
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            await self._shielded_call(steps.undo, outermost, name)
            raise
        self._depth -= 1
        await self._shielded_call(steps.commit, outermost, name)

    async def run(self, plan: Plan[R]) -> R:
        """Carry a repository method's plan out in the worker, in one call (`plans.run`, as `Database` does)."""
        return await self.call(run_plan, self._plans, plan)

    async def close(self) -> None:
        """Close the connection (see `AsyncDatabase.close`)."""
        try:
            await self.conn.aclose()
        except apsw.Error as exc:
            await self.conn.aclose(force=True)
            raise translate(exc) from exc


def run_plan(conn: apsw.Connection, session: steps.Session, plan: Plan[R]) -> R:
    """In the worker thread: `plan` on `session` (whose connection is `conn`)."""
    return run(session, plan)
