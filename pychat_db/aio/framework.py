"""What `pychat_db.aio` needs of the running async framework: a lock, a semaphore, a shielded await, a thread.

APSW picks its controller (`apsw.aio.AsyncIO`, `Trio` or `AnyIO`) for the framework the
event loop runs; `for_connection(conn)` picks the matching primitives from the
controller an async connection was opened with, so one `AsyncDatabase` works the same
under asyncio, trio and anyio. `shielded(fn)` runs `fn()` to its end even when the
calling task is cancelled meanwhile (a rollback, a commit): the cancellation is
delivered when it has finished, also when `fn()` failed (under asyncio its error is the
`CancelledError`'s cause; trio and anyio deliver it at the caller's next checkpoint).
`in_thread(fn, *args)` runs a blocking call (the legacy store's) in a worker thread to
its end, the cancellation delivered after it too.
`running()` picks the primitives of the framework running the caller, for code that
has no APSW connection to ask (the same detection as `apsw.aio.Auto`, no controller made).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

import apsw
import apsw.aio

__all__ = ["Framework", "TaskLock", "for_connection", "running"]

T = TypeVar("T")


class Framework(Protocol):
    name: str

    def lock(self) -> AbstractAsyncContextManager[Any]: ...

    def semaphore(self, value: int) -> AbstractAsyncContextManager[Any]: ...

    async def shielded(self, fn: Callable[[], Awaitable[T]]) -> T: ...

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T: ...


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
        if interrupted:  # the cancellation wins, whatever `fn` ended with; its error rides along as the cause
            error = task.exception()
            raise asyncio.CancelledError from error
        return task.result()

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await self.shielded(lambda: loop.run_in_executor(None, functools.partial(fn, *args)))


class _CancelScoped:
    """trio and anyio: the same primitives under the same names (`Lock`, `Semaphore`, `CancelScope`, `to_thread`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._module: Any = importlib.import_module(name)

    def lock(self) -> AbstractAsyncContextManager[Any]:
        lock: AbstractAsyncContextManager[Any] = self._module.Lock()
        return lock

    def semaphore(self, value: int) -> AbstractAsyncContextManager[Any]:
        semaphore: AbstractAsyncContextManager[Any] = self._module.Semaphore(value)
        return semaphore

    async def shielded(self, fn: Callable[[], Awaitable[T]]) -> T:
        with self._module.CancelScope(shield=True):  # a shielded scope is never cancelled, so it swallows nothing
            result = await fn()
        return result

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        result: T = await self._module.to_thread.run_sync(fn, *args)  # not abandoned when cancelled: it ends first
        return result


def for_connection(conn: apsw.AsyncConnection) -> Framework:
    """The primitives of the framework whose APSW controller runs `conn`."""
    controller = conn.async_controller
    if isinstance(controller, apsw.aio.Trio):
        return _CancelScoped("trio")
    if isinstance(controller, apsw.aio.AnyIO):
        return _CancelScoped("anyio")
    if isinstance(controller, apsw.aio.AsyncIO):
        return _AsyncIO()
    raise TypeError(f"pychat_db.aio: no primitives for APSW controller {type(controller).__name__}")


def running() -> Framework:
    """The primitives of the framework running the caller: anyio when `anyio.run` is on the stack, trio, asyncio.

    Raises RuntimeError outside an event loop.
    """
    if "anyio" in sys.modules:
        import anyio

        code = anyio.run.__code__
        frame = sys._getframe()
        while frame is not None:
            if frame.f_code is code:
                return _CancelScoped("anyio")
            frame = frame.f_back  # type: ignore[assignment]
    if "trio" in sys.modules:
        import trio

        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            return _CancelScoped("trio")
    asyncio.get_running_loop()
    return _AsyncIO()


class TaskLock:
    """A lock that one task holds across nested blocks: `hold()` takes it, or passes through when the caller
    holds it already (inside its own `hold()`; a task started there inherits the context and counts as
    holding). What the writer of `AsyncDatabase`, a dual-write wrapper and the async legacy store serialise on."""

    def __init__(self, framework: Framework, name: str) -> None:
        self._lock = framework.lock()
        self._holding: contextvars.ContextVar[bool] = contextvars.ContextVar(name, default=False)

    @property
    def held(self) -> bool:
        """Whether the calling task holds it."""
        return self._holding.get()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._holding.get():
            yield
            return
        async with self._lock:
            token = self._holding.set(True)
            try:
                yield
            finally:
                self._holding.reset(token)
