"""Random operation sequences through `AsyncDualWriteRepositories(legacy, AsyncDatabase)`: the sides never diverge.

The machine of tests/test_dual_stateful.py (every operation of the legacy-vs-SQLite
machine, tests/test_legacy_stateful.py) driven through the async switch-over: the async
legacy store is primary (it assigns the ids) and an `AsyncDatabase` on a file, with its
read connections, is secondary. Each call is awaited to its end on one event loop that
lives as long as the machine (`Blocking`), so the rules stay those of the sync machine.
After every step the store holds exactly the rows SQLite holds (read by a sync
connection to the same file), no secondary write failed or waits, and a failing
transaction left neither side changed.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from pychat_db.aio import AsyncDatabase
from pychat_db.aio.dual import AsyncDualWriteRepositories
from pychat_db.aio.legacy import AsyncLegacyRepositories
from pychat_db.database import Database
from tests.test_dual_stateful import ThroughDualWrites

T = TypeVar("T")
REPOSITORIES = frozenset({"configuration", "threads", "messages", "modes", "mode_outputs", "tags"})


class Blocking:
    """An async repositories object seen through sync calls, each awaited to its end on one event loop.

    Every call runs in the same `contextvars` context, as the statements of one task do, so
    a `transaction()` block entered by one call is held by the calls inside it.
    """

    def __init__(self, target: Any, run: Callable[[Awaitable[Any]], Any]) -> None:
        self._target = target
        self._run = run

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in REPOSITORIES:
            return Blocking(value, self._run)
        if callable(value):
            return lambda *args, **kwargs: self._run(value(*args, **kwargs))
        return value

    @contextmanager
    def transaction(self) -> Iterator[None]:
        block = self._target.transaction()
        self._run(block.__aenter__())
        try:
            yield
        except BaseException as exc:
            if not self._run(block.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self._run(block.__aexit__(None, None, None))


class ThroughAsyncDualWrites(ThroughDualWrites):
    def __init__(self) -> None:
        super().__init__()
        self.sql.close()
        self.folder = tempfile.TemporaryDirectory(prefix="aio-dual-")
        path = Path(self.folder.name) / "chat.db"
        self.runner = asyncio.Runner()
        context = contextvars.copy_context()

        def run(awaitable: Awaitable[T]) -> T:
            async def call() -> T:
                return await awaitable

            return self.runner.run(call(), context=context)

        self.run = run
        self.adb = run(AsyncDatabase(path, seed_modes=False, readers=2).open())
        self.sql = Database(path, seed_modes=False)  # a sync connection: what the invariants read

        async def wrap() -> AsyncDualWriteRepositories:  # made in the loop, as an app makes it
            return AsyncDualWriteRepositories(
                AsyncLegacyRepositories(self.legacy), self.adb, on_failure="raise", log=self.log
            )

        self.async_dual = run(wrap())
        self.dual = Blocking(self.async_dual, run)

    def teardown(self) -> None:
        try:
            self.sql.close()
            self.run(self.adb.close())
        finally:
            self.runner.close()
            self.folder.cleanup()


ThroughAsyncDualWrites.TestCase.settings = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_STATEFUL_EXAMPLES", "15")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAsyncDualWrites = ThroughAsyncDualWrites.TestCase
