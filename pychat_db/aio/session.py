"""One async connection: its statements, nested transactions and read snapshots, and the plan runner.

Every call goes to the connection's worker thread through APSW's async connection
(`AsyncConnection.async_run`); what runs there is the sync step functions of
`pychat_db.repositories.session` and the generated queries, so the SQL and the
transaction rules are those of the sync library.

Cancellation: a task cancelled at any await inside `transaction()` leaves the database
as it was before the block. The call it was awaiting is either skipped (still queued),
interrupted (APSW's progress handler), or finished; in every case the rollback that
follows is queued behind it on the same worker thread and is shielded from the
cancellation, so it always runs, and it checks in the worker whether a transaction is
open (a cancelled `BEGIN IMMEDIATE` may or may not have run). The closing `COMMIT` is
shielded too: once it is sent the block's work is kept, and the cancellation is
delivered after it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import apsw

from pychat_db.aio.framework import Framework
from pychat_db.errors import translate
from pychat_db.repositories import session as steps
from pychat_db.repositories.plans import Atomic, Atomicity, Plan, Query, run_query

__all__ = ["AsyncSession"]

R = TypeVar("R")


class AsyncSession:
    """An async connection (`conn`) with nested transactions, read snapshots and a plan runner."""

    def __init__(self, conn: apsw.AsyncConnection, framework: Framework) -> None:
        self.conn = conn
        self.framework = framework
        # In its worker thread an async connection runs every call at once: there it is the Connection it wraps.
        self._worker_view = cast(apsw.Connection, conn)
        self._names = itertools.count(1)
        self._depth = 0

    async def call(self, function: Callable[..., R], *args: Any) -> R:
        """`function(connection, *args)` in the connection's worker thread."""
        return cast(R, await self.conn.async_run(function, self._worker_view, *args))

    async def _shielded_call(self, function: Callable[..., R], *args: Any) -> R:
        return await self.framework.shielded(lambda: self.call(function, *args))

    async def query(self, step: Query[R]) -> R:
        """Run one generated query (a plan's step); errors are the library's own."""
        return await self.call(run_query, step)

    @property
    def in_transaction(self) -> bool:
        """Whether a `transaction()` or `snapshot()` block of this session is open."""
        return self._depth > 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A write transaction (outermost: BEGIN IMMEDIATE … COMMIT) or a savepoint inside one."""
        outermost = self._depth == 0
        name = f"pychat_db_{next(self._names)}"
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

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """Reads that see one state of the database (a deferred read transaction unless one is open)."""
        if self._depth:
            yield
            return
        try:
            await self.call(steps.begin_read)
        except BaseException:
            await self._shielded_call(steps.undo, True, "")
            raise
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            await self._shielded_call(steps.end_read)

    async def run(self, plan: Plan[R]) -> R:
        """Carry a repository method's plan out, awaiting each step; a step's error is raised inside the plan."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.send(value) if error is None else plan.throw(error)
            except StopIteration as stop:
                return cast(R, stop.value)
            value, error = None, None
            try:
                value = await self._step(step)
            except BaseException as exc:  # handed to the plan, which re-raises what it does not handle
                error = exc

    async def _step(self, step: Query[Any] | Atomic[Any]) -> Any:
        if isinstance(step, Query):
            return await self.query(step)
        if step.atomicity is Atomicity.TRANSACTION:
            async with self.transaction():
                return await self.run(step.plan)
        async with self.snapshot():
            return await self.run(step.plan)

    async def close(self) -> None:
        """Close the connection (see `AsyncDatabase.close`)."""
        try:
            await self.conn.aclose()
        except apsw.Error as exc:
            await self.conn.aclose(force=True)
            raise translate(exc) from exc
