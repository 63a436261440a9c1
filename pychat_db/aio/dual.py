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

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import IO, TYPE_CHECKING, Any, TypeVar

from pychat_db.aio.framework import Framework, TaskLock, running
from pychat_db.aio.protocols import AsyncRepositories
from pychat_db.aio.repositories import AsyncRepositoryAttributes, to_primary
from pychat_db.repositories.methods import Kind, Method
from pychat_db.switchover.dual import DualWrites, Refusal, Replaying, SecondaryWrite
from pychat_db.switchover.forwarding import Part, forwarder_classes
from pychat_db.switchover.settings import OnSecondaryFailure

__all__ = ["ASYNC_DUAL_CLASSES", "AsyncDualWriteRepositories"]

T = TypeVar("T")


class AsyncDualWriteRepositories(DualWrites[AsyncRepositories], AsyncRepositoryAttributes):
    """Every write to `primary` and, with the ids the primary assigned, to `secondary`; reads from the primary.

    The policy, records, queue and batches are the sync wrapper's (`pychat_db.switchover.dual.DualWrites`);
    here the calls are awaited, under the task's lock, and a block's end is shielded.
    """

    def __init__(
        self,
        primary: AsyncRepositories,
        secondary: AsyncRepositories,
        *,
        on_failure: OnSecondaryFailure | str = OnSecondaryFailure.RAISE,
        log: IO[str] | None = None,
        framework: Framework | None = None,
    ) -> None:
        super().__init__(primary, secondary, on_failure, log)
        self._framework = framework or running()
        self._task_lock = TaskLock(self._framework, f"pychat_db.aio.dual:{id(self)}")
        self._attach(ASYNC_DUAL_CLASSES)

    # -- applying -----------------------------------------------------------------------------

    async def _apply(self, batch: list[SecondaryWrite]) -> Refusal | None:
        """Apply a batch on the secondary in one of its transactions; the refusal naming the write that failed."""
        with Replaying(batch, self.secondary) as replaying:
            async with self.secondary.transaction():
                for call in replaying.calls():
                    await call()
        return replaying.refusal

    async def _apply_now(self, batch: list[SecondaryWrite]) -> None:
        """`raise` policy: apply or raise SecondaryWriteError (the caller's primary transaction then rolls back)."""
        if batch and (refusal := await self._apply(batch)):
            raise self._raised(refusal) from refusal.cause

    async def _apply_or_queue(self, batch: list[SecondaryWrite]) -> None:
        """`queue` policy: apply, or queue the batch (behind any queued one, so the order is kept)."""
        if self._to_apply(batch) and (refusal := await self._apply(batch)):
            self._queued(batch, refusal)

    async def drain(self) -> int:
        """Replay the queued secondary writes in order; return how many remain queued (see the sync `drain`)."""
        async with self._task_lock.hold():
            while (batch := self._next_queued()) is not None:
                if not self._replayed(await self._apply(batch)):
                    break
            return self.pending

    # -- writing ------------------------------------------------------------------------------

    async def write(self, primary: Callable[[], Awaitable[T]], forward: Callable[[T], SecondaryWrite]) -> T:
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

    async def _write_alone(self, primary: Callable[[], Awaitable[T]], forward: Callable[[T], SecondaryWrite]) -> T:
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
            block = self._begin()
            cancelled: BaseException | None = None
            try:
                async with self.primary.transaction():
                    yield
                    if self._copies_before_commit(block):
                        # The block is done: its copy on the secondary and the primary's commit run to their end
                        # (a cancellation between them would leave the secondary with the block and not the primary).
                        try:
                            await self._framework.shielded(lambda: self._apply_now(self._batch))
                        except Exception:
                            raise
                        except BaseException as exc:  # a cancellation, delivered once the primary has committed
                            cancelled = exc
                        block.applied = bool(self._batch)
            except BaseException as exc:
                # Applied: the secondary committed, then the primary's commit failed. (A cancellation here came
                # after the primary's commit, which both async stores shield: then both sides kept the block.)
                self._abandoned(block, exc, diverged=block.applied and isinstance(exc, Exception))
                raise
            finally:
                batch = self._end(block)
            if self._copies_after_commit(block):  # the primary committed: copy or queue
                await self._framework.shielded(lambda: self._apply_or_queue(batch))
            if cancelled is not None:
                raise cancelled

    async def close(self) -> None:
        """Close both sides; queued secondary writes left are an error (see the sync `close`)."""
        left = self._unapplied()
        try:
            await self.primary.close()
        finally:
            await self.secondary.close()
        self._closed_with(left)


def forward_async_dual(method: Method) -> Callable[..., Any]:
    """The async dual-write forwarder of one described method: a read asks the primary; a write goes through `write`."""
    if method.kind is Kind.READ:
        return to_primary(method)
    attribute, name = method.repository, method.name

    async def write(part: Part[AsyncDualWriteRepositories], *args: Any, **kwargs: Any) -> Any:
        args, kwargs = method.materialize(args, kwargs)  # an iterable read once, for both sides
        call = getattr(getattr(part.owner.primary, attribute), name)
        return await part.owner.write(
            lambda: call(*args, **kwargs), lambda result: SecondaryWrite.of(method, args, kwargs, result)
        )

    return write


ASYNC_DUAL_CLASSES = forwarder_classes("AsyncDual", forward_async_dual)


if TYPE_CHECKING:  # mypy checks that the wrapper offers the AsyncRepositories protocol; never runs

    def _conforms(primary: AsyncRepositories, secondary: AsyncRepositories) -> None:
        _repositories: AsyncRepositories = AsyncDualWriteRepositories(primary, secondary)
