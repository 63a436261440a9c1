"""The legacy store behind the async repository protocols, its I/O off the event loop.

`AsyncLegacyRepositories(legacy)` offers `LegacyRepositories` (`pychat_db.legacy`) as
`AsyncDatabase` offers SQLite: the same repositories and methods, awaited. The store
lives in memory and writes its export directory when a write commits (`autosave`) and
on `close()`, so every call runs in a worker thread (`Framework.in_thread`), never on
the loop, and runs to its end even when the awaiting task is cancelled.

The store has no isolation of its own (a read in the middle of another block would see
its uncommitted writes) and is not thread-safe, so calls take it one at a time (an async
lock), and a `transaction()` block holds it for its task until the block ends (tasks
started inside share it): other tasks' reads and writes wait. Leaving the block by an
exception or a cancellation undoes its writes (shielded, as `AsyncDatabase` does).

The repository classes (`AsyncLegacyThreads`, ...) are derived from the method
description (`pychat_db.repositories.methods`), as the switch-over's forwarders are.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pychat_db.aio.framework import Framework, TaskLock, running
from pychat_db.aio.protocols import AsyncRepositories
from pychat_db.aio.repositories import AsyncRepositoryAttributes
from pychat_db.legacy import LegacyRepositories
from pychat_db.repositories.methods import Method
from pychat_db.switchover.forwarding import Part, forwarder_classes

__all__ = ["ASYNC_LEGACY_CLASSES", "AsyncLegacyRepositories"]

T = TypeVar("T")


class AsyncLegacyRepositories(AsyncRepositoryAttributes):
    """`legacy` (an open `LegacyRepositories`) behind the async protocols; `framework`: default the running one."""

    def __init__(self, legacy: LegacyRepositories, framework: Framework | None = None) -> None:
        self.legacy = legacy
        self.framework = framework or running()
        self._task_lock = TaskLock(self.framework, f"pychat_db.aio.legacy:{id(self)}")
        self._attach(ASYNC_LEGACY_CLASSES)

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, autosave: bool = False, seed_modes: bool = False
    ) -> AsyncLegacyRepositories:
        """The legacy store saved in the export directory `path` (empty when absent), read in a worker thread."""
        framework = running()
        legacy = await framework.in_thread(
            lambda: LegacyRepositories.open(os.fspath(path), autosave=autosave, seed_modes=seed_modes)
        )
        return cls(legacy, framework)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` (a method of `legacy`) in a worker thread, the store held."""
        async with self._task_lock.hold():
            return await self.framework.in_thread(lambda: fn(*args, **kwargs))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """All writes of the block kept (and saved, with autosave), or none when it raises or is cancelled."""
        async with self._task_lock.hold():
            block = self.legacy.transaction()
            entered: list[bool] = []  # set in the worker: a cancelled await may follow an entry that happened

            def enter() -> None:
                block.__enter__()
                entered.append(True)

            try:
                await self.framework.in_thread(enter)
                yield
            except BaseException as exc:
                if entered:
                    await self.framework.shielded(functools.partial(self.framework.in_thread, _undo, block, exc))
                raise
            await self.framework.shielded(functools.partial(self.framework.in_thread, block.__exit__, None, None, None))

    async def save(self) -> None:
        """Write the store to its export directory (atomically), in a worker thread."""
        await self.call(self.legacy.save)

    async def close(self) -> None:
        """Save unsaved writes (see `LegacyRepositories.close`), in a worker thread. Idempotent."""
        await self.call(self.legacy.close)


def _undo(block: Any, exc: BaseException) -> None:
    """Leave the store's transaction `block` by `exc`: its writes are undone (the store re-raises `exc`)."""
    try:
        block.__exit__(type(exc), exc, exc.__traceback__)
    except BaseException as raised:
        if raised is not exc:
            raise


def _forward(method: Method) -> Callable[..., Any]:
    attribute, name = method.repository, method.name

    async def forward(part: Part[AsyncLegacyRepositories], *args: Any, **kwargs: Any) -> Any:
        owner = part.owner
        return await owner.call(getattr(getattr(owner.legacy, attribute), name), *args, **kwargs)

    return forward


ASYNC_LEGACY_CLASSES = forwarder_classes("AsyncLegacy", _forward)


if TYPE_CHECKING:  # mypy checks that the wrapper offers the AsyncRepositories protocol; never runs

    def _conforms(legacy: LegacyRepositories) -> None:
        _repositories: AsyncRepositories = AsyncLegacyRepositories(legacy)
