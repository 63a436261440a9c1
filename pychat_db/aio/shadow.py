"""Shadow reads in async: every read answered by the primary; a sampled share also read from the shadow and compared.

`AsyncShadowReadRepositories(primary, shadow, reporter)` is
`pychat_db.switchover.ShadowReadRepositories` over async repositories: the same sampling
(`sample_rate`, `seed`), the same comparison and report (`ShadowReads`, `compare_outcomes`,
`MismatchReporter`, used as they are), a shadow that fails never breaks a read, writes go
to the primary, and reads inside the task's `transaction()` block are not compared (the
shadow may only get the block's writes when it commits). The comparison and the report's
line, a file write, run in a worker thread, one at a time. The forwarders
(`AsyncShadowThreads`, ...) are generated from the method description.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pychat_db.aio.framework import Framework, running
from pychat_db.aio.protocols import AsyncRepositories
from pychat_db.aio.repositories import AsyncRepositoryAttributes, to_primary
from pychat_db.errors import NotFound
from pychat_db.repositories.methods import Kind, Method
from pychat_db.switchover.forwarding import Part, forwarder_classes
from pychat_db.switchover.shadow import MismatchReporter, Outcome, ShadowReads

__all__ = ["ASYNC_SHADOW_CLASSES", "AsyncShadowReadRepositories"]

T = TypeVar("T")


async def _outcome(call: Callable[[], Awaitable[object]], *, keep: type[Exception] = NotFound) -> Outcome:
    """Await `call()`: its value, or the error of kind `keep` it raised (default NotFound; any other propagates)."""
    try:
        return Outcome(await call())
    except keep as exc:
        return Outcome(error=exc)


class AsyncShadowReadRepositories(ShadowReads[AsyncRepositories], AsyncRepositoryAttributes):
    """Reads answered by `primary` and, for a sampled share, compared with `shadow`; writes go to `primary`."""

    def __init__(
        self,
        primary: AsyncRepositories,
        shadow: AsyncRepositories,
        reporter: MismatchReporter | None = None,
        *,
        sample_rate: float = 1.0,
        seed: int | None = None,
        framework: Framework | None = None,
    ) -> None:
        super().__init__(primary, shadow, reporter, sample_rate, seed)
        self.framework = framework or running()
        self._reporting = self.framework.lock()
        self._in_block: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"pychat_db.aio.shadow:{id(self)}", default=False
        )
        self._attach(ASYNC_SHADOW_CLASSES)

    async def read(self, name: str, entity: str, call: Callable[[AsyncRepositories], Awaitable[T]]) -> T:
        """Answer `await call(primary)`; for a sampled read also `await call(shadow)` and report the differences."""
        if not self._compares(self._in_block.get()):
            return await call(self.primary)
        mine = await _outcome(lambda: call(self.primary))
        theirs = await _outcome(lambda: call(self.shadow), keep=Exception)  # the shadow must never break a read
        async with self._reporting:
            await self.framework.in_thread(self._compare, name, entity, mine, theirs)
        return cast(T, self._answer(mine))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """The primary's transaction; the task's reads inside it are not compared."""
        token = self._in_block.set(True)
        try:
            async with self.primary.transaction():
                yield
        finally:
            self._in_block.reset(token)

    async def close(self) -> None:
        """Close the primary and the shadow (closing twice is harmless) and the reporter's file."""
        try:
            await self.primary.close()
            await self.shadow.close()
        finally:
            await self.framework.in_thread(self.reporter.close)


def forward_async_shadow(method: Method) -> Callable[..., Any]:
    """The async shadow-read forwarder of one described method: a read is compared, a write goes to the primary."""
    if method.kind is Kind.WRITE:
        return to_primary(method)
    attribute, name, read_name, iterables = method.repository, method.name, method.qualname, bool(method.iterables)

    async def read(part: Part[AsyncShadowReadRepositories], *args: Any, **kwargs: Any) -> Any:
        if iterables:  # read once, for both sides
            args, kwargs = method.materialize(args, kwargs)
        return await part.owner.read(
            read_name, attribute, lambda r: getattr(getattr(r, attribute), name)(*args, **kwargs)
        )

    return read


ASYNC_SHADOW_CLASSES = forwarder_classes("AsyncShadow", forward_async_shadow)


if TYPE_CHECKING:  # mypy checks that the wrapper offers the AsyncRepositories protocol; never runs

    def _conforms(primary: AsyncRepositories, shadow: AsyncRepositories) -> None:
        _repositories: AsyncRepositories = AsyncShadowReadRepositories(primary, shadow)
