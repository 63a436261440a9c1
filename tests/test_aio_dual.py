"""pychat_db.aio.dual: async dual writes, legacy store first then SQLite, as the sync switch-over does them."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from pychat_db.aio import AsyncDatabase
from pychat_db.aio.dual import AsyncDualWriteRepositories
from pychat_db.aio.legacy import AsyncLegacyRepositories
from pychat_db.database import Database
from pychat_db.errors import NotFound
from pychat_db.legacy import LegacyRepositories, LegacyStore
from pychat_db.models import Message, Tag, Thread
from pychat_db.switchover import SecondaryWriteError
from tests.support.aio_scenario import at, awaited, scenario, value

FREE_ID = 4_000_000


def run_in(framework: str, main: Callable[[], Awaitable[Any]]) -> Any:
    async def wrapped() -> Any:
        return await main()

    return asyncio.run(wrapped()) if framework == "asyncio" else trio.run(wrapped)


async def contents(side: Any) -> list[Any]:
    """What a side holds, read through its repositories."""
    threads = await side.threads.list()
    out: list[Any] = [threads, await side.tags.list(), await side.modes.list(), await side.configuration.get()]
    for thread in threads:
        out.append(await side.messages.list(thread.id))
        out.append(await side.mode_outputs.list_by_thread(thread.id))
    return out


async def open_sides(path: Path, **options: Any) -> tuple[AsyncDualWriteRepositories, AsyncDatabase]:
    legacy = AsyncLegacyRepositories(LegacyRepositories(LegacyStore()))
    db = await AsyncDatabase(path, seed_modes=False).open()
    return AsyncDualWriteRepositories(legacy, db, **options), db


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_both_sides_end_alike_with_the_same_ids_and_the_answers_are_the_sqlite_ones(
    tmp_path: Path, framework: str
) -> None:
    with Database(tmp_path / "sync.db") as sync:
        expected = asyncio.run(scenario(sync, value))

    async def main() -> None:
        dual, db = await open_sides(tmp_path / "chat.db")
        await dual.modes.seed_builtins()  # as the wiring does: the legacy store numbers them, SQLite copies
        assert await scenario(dual, awaited) == expected
        assert dual.failures == [] and dual.pending == 0
        assert await contents(dual.primary) == await contents(db)
        await dual.close()

    run_in(framework, main)


def test_a_block_s_writes_reach_the_secondary_when_it_commits_and_a_failing_block_neither(tmp_path: Path) -> None:
    async def main() -> None:
        dual, db = await open_sides(tmp_path / "chat.db")
        thread = await dual.threads.create(Thread(name="new", created_at=at(0)))
        assert await db.threads.get(thread.id or 0) == thread == await dual.primary.threads.get(thread.id or 0)
        with pytest.raises(RuntimeError):
            async with dual.transaction():
                await dual.threads.create(Thread(id=FREE_ID, name="never", created_at=at(1)))
                raise RuntimeError("the block fails")
        for side in (dual.primary, db):
            with pytest.raises(NotFound):
                await side.threads.get(FREE_ID)
        async with dual.transaction():
            message = await dual.messages.create(Message(thread_id=thread.id or 0, text="batched", timestamp=at(2)))
            with pytest.raises(NotFound):  # the secondary gets the block's writes when it commits
                await db.messages.get(message.id or 0)
        assert await db.messages.get(message.id or 0) == message
        assert await contents(dual.primary) == await contents(db)
        await dual.close()

    asyncio.run(main())


def test_a_secondary_failure_raises_and_undoes_the_primary(tmp_path: Path) -> None:
    async def main() -> None:
        log = io.StringIO()
        dual, db = await open_sides(tmp_path / "chat.db", on_failure="raise", log=log)
        await db.threads.create(Thread(id=FREE_ID, name="only in SQLite", created_at=at(0)))  # forces the failure
        expected = f"^secondary write failed, primary write rolled back: threads.create id={FREE_ID}: "
        with pytest.raises(SecondaryWriteError, match=expected + "threads.id: PRIMARY KEY constraint failed$"):
            await dual.threads.create(Thread(id=FREE_ID, name="dual", created_at=at(1)))
        with pytest.raises(NotFound):
            await dual.primary.threads.get(FREE_ID)
        assert [(f.what, f.outcome) for f in dual.failures] == [(f"threads.create id={FREE_ID}", "raised")]
        assert f"secondary write raised: threads.create id={FREE_ID}" in log.getvalue()
        assert dual.pending == 0
        await dual.close()

    asyncio.run(main())


def test_a_secondary_failure_is_queued_in_order_drained_and_closing_with_one_left_is_an_error(tmp_path: Path) -> None:
    async def main() -> None:
        log = io.StringIO()
        dual, db = await open_sides(tmp_path / "chat.db", on_failure="queue", log=log)
        await db.threads.create(Thread(id=FREE_ID, name="only in SQLite", created_at=at(0)))
        created = await dual.threads.create(Thread(id=FREE_ID, name="dual", created_at=at(1)))
        assert await dual.primary.threads.get(FREE_ID) == created and dual.pending == 1
        message = await dual.messages.create(Message(thread_id=FREE_ID, text="queued behind", timestamp=at(2)))
        renamed = await dual.threads.update(dataclasses.replace(created, name="dual, renamed"))
        assert dual.pending == 3  # later writes wait behind the failed one, so the order is kept
        assert await dual.drain() == 3  # still failing: stays queued, recorded again
        assert [f.outcome for f in dual.failures] == ["queued", "queued"]
        await db.threads.delete(FREE_ID)  # the cause is fixed
        assert await dual.drain() == 0
        assert await db.threads.get(FREE_ID) == renamed and await db.messages.get(message.id or 0) == message
        await db.threads.create(Thread(id=FREE_ID + 1, name="only in SQLite", created_at=at(0)))
        await dual.threads.create(Thread(id=FREE_ID + 1, name="queued at close", created_at=at(3)))
        assert dual.pending == 1
        with pytest.raises(SecondaryWriteError, match=r"^closed with 1 queued secondary write\(s\) not applied"):
            await dual.close()
        assert f"closing with a queued secondary write: threads.create id={FREE_ID + 1}" in log.getvalue()

    asyncio.run(main())


class _CancelAt:
    """Cancels (`cancel`) at the `at`-th call of `on_write`."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.seen = 0
        self.cancel: Callable[[], object] = lambda: None

    def on_write(self) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.cancel()


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_a_block_cancelled_at_any_write_leaves_both_sides_as_before_and_at_its_end_with_it(
    tmp_path: Path, framework: str
) -> None:
    async def block(dual: AsyncDualWriteRepositories, on_write: Callable[[], None]) -> None:
        async with dual.transaction():
            on_write()
            thread = await dual.threads.create(Thread(name="t", created_at=at(0)))
            on_write()
            tag = await dual.tags.create(Tag(name="red"))
            on_write()
            await dual.messages.create(Message(thread_id=thread.id or 0, text="m", timestamp=at(1), tags=(tag,)))
            on_write()

    async def main() -> None:
        dual, db = await open_sides(tmp_path / "chat.db")
        await dual.threads.create(Thread(name="before", created_at=at(-1)))
        before = await contents(db)
        for k in range(4):
            cancel = _CancelAt(k + 1)
            last = k == 3  # cancelled once the block's body is done: its end runs to completion, as a COMMIT does
            if framework == "trio":
                with trio.CancelScope() as scope:
                    cancel.cancel = scope.cancel
                    await block(dual, cancel.on_write)
                # trio delivers a cancellation at the next checkpoint: after the shielded end there is none
                assert scope.cancelled_caught or last, k
            else:
                task = asyncio.ensure_future(block(dual, cancel.on_write))
                cancel.cancel = task.cancel
                with pytest.raises(asyncio.CancelledError):
                    await task
            if last:
                kept = await contents(db)
                assert kept == await contents(dual.primary) and kept != before
                assert [t.name for t in kept[0]] == ["t", "before"]
            else:
                assert await contents(db) == before == await contents(dual.primary), k
        assert dual.failures == [] and not dual.diverged
        await block(dual, lambda: None)  # usable: nothing is held
        assert await contents(db) == await contents(dual.primary)
        await dual.close()

    run_in(framework, main)


def test_concurrent_tasks_writes_all_reach_both_sides(tmp_path: Path) -> None:
    async def main() -> None:
        dual, db = await open_sides(tmp_path / "chat.db")

        async def plain(n: int) -> None:
            for i in range(5):
                await dual.threads.create(Thread(name=f"p{n}-{i}", created_at=at(i)))

        async def in_blocks(n: int) -> None:
            for i in range(3):
                async with dual.transaction():
                    thread = await dual.threads.create(Thread(name=f"b{n}-{i}", created_at=at(i)))
                    await dual.threads.update(dataclasses.replace(thread, name=f"b{n}-{i}!"))

        await asyncio.gather(*(plain(n) for n in range(3)), *(in_blocks(n) for n in range(2)))
        assert len(await db.threads.list()) == 3 * 5 + 2 * 3
        assert await contents(db) == await contents(dual.primary)
        assert dual.failures == []
        await dual.close()

    asyncio.run(main())


class _SlowCreates:
    """A repository whose `create` signals `started`, then waits a little before the real one (others as they are)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started = asyncio.Event()

    async def create(self, thread: Thread) -> Thread:
        self.started.set()
        await asyncio.sleep(0.05)
        created: Thread = await self.inner.create(thread)
        return created

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("in_block", [False, True], ids=["alone", "end-of-block"])
@pytest.mark.parametrize("on_failure", ["raise", "queue"])
def test_a_write_cancelled_while_its_copy_reaches_the_secondary_still_ends_alike_on_both_sides(
    tmp_path: Path, on_failure: str, in_block: bool
) -> None:
    """A write on its own or a finished block, once begun on the secondary, is kept on both sides; then the cancel."""

    async def create(dual: AsyncDualWriteRepositories) -> None:
        if in_block:
            async with dual.transaction():
                await dual.threads.create(Thread(name="cancelled late", created_at=at(0)))
        else:
            await dual.threads.create(Thread(name="cancelled late", created_at=at(0)))

    async def main() -> None:
        dual, db = await open_sides(tmp_path / "chat.db", on_failure=on_failure)
        slow = _SlowCreates(db.threads)
        db.threads = slow  # type: ignore[assignment,misc]
        task = asyncio.ensure_future(create(dual))
        await slow.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        db.threads = slow.inner  # type: ignore[misc]
        assert [t.name for t in await db.threads.list()] == ["cancelled late"]
        assert await contents(dual.primary) == await contents(db)
        assert dual.pending == 0 and dual.failures == [] and not dual.diverged
        await dual.close()

    asyncio.run(main())
