"""Dual writes in async: every write to the primary and, carrying the ids it assigned, to the secondary.

`AsyncDualWriteRepositories(primary, secondary)` is `pychat_db.switchover.DualWriteRepositories`
over async repositories (`AsyncLegacyRepositories`, `AsyncDatabase`): the same policies
(`on_failure`: `raise` undoes the primary's write, `queue` keeps the secondary's writes in order
until `drain()`), the same batching of a `transaction()` block's writes (applied on the secondary
when the block succeeds, all or none), the same records (`failures`, `pending`, `diverged`) and
log lines. Each write is repeated on the secondary as its method description says
(`Method.replay_calls`; `Call.on` returns the secondary's awaitable).

Cancellation: a task cancelled inside a `transaction()` block, before its end, leaves both
sides as they were (the primary rolls back, the batch is dropped). Once the block's body is
done, its end (the copy on the secondary and the primary's commit) runs to completion and the
cancellation is delivered after it, as `AsyncDatabase` does with its COMMIT; a write on its
own runs to its end on both sides (or is queued) the same way. Cancelled in between, the two
sides would differ.

Tasks: a dual write or block takes the wrapper for its task (an async lock; tasks started
inside a block share it), so one task's writes never land in another's batch. Reads answer
from the primary as they are. The forwarders (`AsyncDualThreads`, ...) are generated from the
method description (`pychat_db.switchover.forwarding`).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

from pychat_db.aio.framework import Framework, TaskLock, running
from pychat_db.aio.protocols import AsyncRepositories
from pychat_db.aio.repositories import AsyncRepositoryAttributes, to_primary
from pychat_db.repositories.methods import Kind, Method
from pychat_db.switchover.dual import SecondaryFailure, SecondaryWriteError, record_failure
from pychat_db.switchover.forwarding import Part, forwarder_classes
from pychat_db.switchover.settings import OnSecondaryFailure, parse_choice

__all__ = ["ASYNC_DUAL_CLASSES", "AsyncDualWriteRepositories"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Write:
    """One write to replay on the secondary: what it is (no values: they may be secret) and how."""

    what: str
    apply: Callable[[AsyncRepositories], Awaitable[None]]


class _Failed(Exception):
    def __init__(self, write: _Write, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.write = write
        self.cause = cause


class AsyncDualWriteRepositories(AsyncRepositoryAttributes):
    """Every write to `primary` and, with the ids the primary assigned, to `secondary`; reads from the primary."""

    def __init__(
        self,
        primary: AsyncRepositories,
        secondary: AsyncRepositories,
        *,
        on_failure: OnSecondaryFailure | str = OnSecondaryFailure.RAISE,
        log: IO[str] | None = None,
        framework: Framework | None = None,
    ) -> None:
        self.primary = primary
        self.secondary = secondary
        self.on_failure = parse_choice(OnSecondaryFailure, "on_failure", on_failure)
        self.failures: list[SecondaryFailure] = []
        self.diverged = False
        self._queue: list[list[_Write]] = []
        self._batch: list[_Write] = []
        self._depth = 0
        self._log = log
        self._framework = framework or running()
        self._task_lock = TaskLock(self._framework, f"pychat_db.aio.dual:{id(self)}")
        self._attach(ASYNC_DUAL_CLASSES)

    # -- state --------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Secondary writes queued (not applied yet)."""
        return sum(len(batch) for batch in self._queue)

    def _record(self, what: str, exc: BaseException, outcome: str) -> None:
        self.failures.append(record_failure(what, exc, outcome, self._log))

    # -- applying -----------------------------------------------------------------------------

    async def _apply(self, batch: list[_Write]) -> None:
        """Apply a batch on the secondary in one of its transactions; raise (_Failed) naming the write that failed."""
        current = batch[0]
        try:
            async with self.secondary.transaction():
                for current in batch:
                    await current.apply(self.secondary)
        except Exception as exc:
            raise _Failed(current, exc) from exc

    async def _apply_now(self, batch: list[_Write]) -> None:
        """`raise` policy: apply or raise SecondaryWriteError (the caller's primary transaction then rolls back)."""
        if not batch:
            return
        try:
            await self._apply(batch)
        except _Failed as failed:
            self._record(failed.write.what, failed.cause, "raised")
            raise SecondaryWriteError(
                f"secondary write failed, primary write rolled back: {failed.write.what}: {failed.cause}"
            ) from failed.cause

    async def _apply_or_queue(self, batch: list[_Write]) -> None:
        """`queue` policy: apply, or queue the batch (behind any queued one, so the order is kept)."""
        if not batch:
            return
        if self._queue:
            self._queue.append(batch)
            return
        try:
            await self._apply(batch)
        except _Failed as failed:
            self._record(failed.write.what, failed.cause, "queued")
            self._queue.append(batch)

    async def drain(self) -> int:
        """Replay the queued secondary writes in order; return how many remain queued (see the sync `drain`)."""
        async with self._task_lock.hold():
            while self._queue:
                if self._depth:
                    raise SecondaryWriteError("drain() inside a transaction: call it after the transaction")
                try:
                    await self._apply(self._queue[0])
                except _Failed as failed:
                    self._record(failed.write.what, failed.cause, "queued")
                    break
                self._queue.pop(0)
            return self.pending

    # -- writing ------------------------------------------------------------------------------

    async def write(self, primary: Callable[[], Awaitable[T]], forward: Callable[[T], _Write]) -> T:
        """Run `primary()` on the primary and forward the write `forward(result)` to the secondary.

        In a block, a cancellation undoes the block on both sides. A write on its own runs to
        its end on both sides (or is queued) before a cancellation is delivered: cancelled
        between the primary's write and the secondary's copy, the two would differ.
        """
        async with self._task_lock.hold():
            if self._depth:
                result = await primary()
                self._batch.append(forward(result))
                return result
            return await self._framework.shielded(lambda: self._write_alone(primary, forward))

    async def _write_alone(self, primary: Callable[[], Awaitable[T]], forward: Callable[[T], _Write]) -> T:
        if self.on_failure is OnSecondaryFailure.RAISE:
            async with self.transaction():
                return await self.write(primary, forward)
        result = await primary()
        await self._apply_or_queue([forward(result)])
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction on the primary; the secondary gets the block's writes as one batch when it succeeds."""
        async with self._task_lock.hold():
            outermost = self._depth == 0
            mark = len(self._batch)
            applied = False
            cancelled: BaseException | None = None
            self._depth += 1
            try:
                async with self.primary.transaction():
                    yield
                    if outermost and self.on_failure is OnSecondaryFailure.RAISE:
                        # The block is done: its copy on the secondary and the primary's commit run to their end
                        # (a cancellation between them would leave the secondary with the block and not the primary).
                        try:
                            await self._framework.shielded(lambda: self._apply_now(self._batch))
                        except Exception:
                            raise
                        except BaseException as exc:  # a cancellation, delivered once the primary has committed
                            cancelled = exc
                        applied = bool(self._batch)
            except BaseException as exc:
                del self._batch[mark:]
                # The secondary committed, then the primary's commit failed. (A cancellation here came after
                # the primary's commit, which both async stores shield: then both sides kept the block.)
                if applied and isinstance(exc, Exception):
                    self.diverged = True
                    self._record("commit of the primary after the secondary's", exc, "diverged")
                raise
            finally:
                self._depth -= 1
                if outermost:
                    batch, self._batch = self._batch, []
            if outermost and self.on_failure is OnSecondaryFailure.QUEUE:  # the primary committed: copy or queue
                await self._framework.shielded(lambda: self._apply_or_queue(batch))
            if cancelled is not None:
                raise cancelled

    async def close(self) -> None:
        """Close both sides; queued secondary writes left are an error (see the sync `close`)."""
        left = [write.what for batch in self._queue for write in batch]
        for what in left:
            print(f"pychat_db: closing with a queued secondary write: {what}", file=self._log or sys.stderr)
        try:
            await self.primary.close()
        finally:
            await self.secondary.close()
        if left:
            raise SecondaryWriteError(
                f"closed with {len(left)} queued secondary write(s) not applied (first: {left[0]}); "
                "the two sides differ: re-import the legacy store into SQLite before dual writes resume"
            )


def forward_async_dual(method: Method) -> Callable[..., Any]:
    """The async dual-write forwarder of one described method: a read asks the primary; a write goes through `write`."""
    if method.kind is Kind.READ:
        return to_primary(method)
    attribute, name, iterables = method.repository, method.name, bool(method.iterables)

    async def write(part: Part[AsyncDualWriteRepositories], *args: Any, **kwargs: Any) -> Any:
        if iterables:  # read once, for both sides
            args, kwargs = method.materialize(args, kwargs)
        dual = part.owner
        call = getattr(getattr(dual.primary, attribute), name)

        def forward(result: Any) -> _Write:
            calls = method.replay_calls(args, kwargs, result)

            async def apply(secondary: AsyncRepositories) -> None:
                repository = getattr(secondary, attribute)
                for replay in calls:
                    await replay.on(repository)

            return _Write(method.label(args, kwargs, result), apply)

        return await dual.write(lambda: call(*args, **kwargs), forward)

    return write


ASYNC_DUAL_CLASSES = forwarder_classes("AsyncDual", forward_async_dual)


if TYPE_CHECKING:  # mypy checks that the wrapper offers the AsyncRepositories protocol; never runs

    def _conforms(primary: AsyncRepositories, secondary: AsyncRepositories) -> None:
        _repositories: AsyncRepositories = AsyncDualWriteRepositories(primary, secondary)
