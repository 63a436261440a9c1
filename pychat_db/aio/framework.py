"""What `pychat_db.aio` needs of the running async framework: a lock, a semaphore, a shielded await.

APSW picks its controller (`apsw.aio.AsyncIO`, `Trio` or `AnyIO`) for the framework the
event loop runs; `for_connection(conn)` picks the matching primitives from the
controller an async connection was opened with, so one `AsyncDatabase` works the same
under asyncio, trio and anyio. `shielded(fn)` runs `fn()` to its end even when the
calling task is cancelled meanwhile (a rollback, a commit): the cancellation is
delivered when it has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import apsw
import apsw.aio

__all__ = ["Framework", "for_connection"]

T = TypeVar("T")


class Framework(Protocol):
    name: str

    def lock(self) -> AbstractAsyncContextManager[Any]: ...

    def semaphore(self, value: int) -> AbstractAsyncContextManager[Any]: ...

    async def shielded(self, fn: Callable[[], Awaitable[T]]) -> T: ...


class _AsyncIO:
    name = "asyncio"

    def lock(self) -> AbstractAsyncContextManager[Any]:
        return asyncio.Lock()

    def semaphore(self, value: int) -> AbstractAsyncContextManager[Any]:
        return asyncio.Semaphore(value)

    async def shielded(self, fn: Callable[[], Awaitable[T]]) -> T:
        async def run() -> T:
            return await fn()

        task = asyncio.ensure_future(run())
        interrupted = False
        while not task.done():
            try:
                await asyncio.wait((task,))
            except asyncio.CancelledError:
                interrupted = True  # the task goes on; the cancellation is raised once it is done
        result = task.result()
        if interrupted:
            raise asyncio.CancelledError
        return result


class _Trio:
    name = "trio"

    def __init__(self) -> None:
        import trio

        self._trio = trio

    def lock(self) -> AbstractAsyncContextManager[Any]:
        return self._trio.Lock()

    def semaphore(self, value: int) -> AbstractAsyncContextManager[Any]:
        return self._trio.Semaphore(value)

    async def shielded(self, fn: Callable[[], Awaitable[T]]) -> T:
        with self._trio.CancelScope(shield=True):  # a shielded scope is never cancelled, so it swallows nothing
            result = await fn()
        return result


class _AnyIO:
    name = "anyio"

    def __init__(self) -> None:
        import anyio

        self._anyio = anyio

    def lock(self) -> AbstractAsyncContextManager[Any]:
        return self._anyio.Lock()

    def semaphore(self, value: int) -> AbstractAsyncContextManager[Any]:
        return self._anyio.Semaphore(value)

    async def shielded(self, fn: Callable[[], Awaitable[T]]) -> T:
        with self._anyio.CancelScope(shield=True):  # a shielded scope is never cancelled, so it swallows nothing
            result = await fn()
        return result


def for_connection(conn: apsw.AsyncConnection) -> Framework:
    """The primitives of the framework whose APSW controller runs `conn`."""
    controller = conn.async_controller
    if isinstance(controller, apsw.aio.Trio):
        return _Trio()
    if isinstance(controller, apsw.aio.AnyIO):
        return _AnyIO()
    if isinstance(controller, apsw.aio.AsyncIO):
        return _AsyncIO()
    raise TypeError(f"pychat_db.aio: no primitives for APSW controller {type(controller).__name__}")
