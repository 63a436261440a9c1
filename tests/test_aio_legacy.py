"""pychat_db.aio.legacy: the legacy store behind the async protocols, its calls and saves off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio

from pychat_db.aio.legacy import AsyncLegacyRepositories
from pychat_db.errors import NotFound
from pychat_db.exchange.contract import COLLECTIONS
from pychat_db.legacy import LegacyRepositories, LegacyStore
from pychat_db.models import Message, Tag, Thread
from tests.support.aio_scenario import at, awaited, scenario, value

FRAMEWORKS = ("asyncio", "trio")


def run_in(framework: str, main: Callable[[], Awaitable[Any]]) -> Any:
    async def wrapped() -> Any:
        return await main()

    if framework == "anyio":
        return anyio.run(wrapped)
    return asyncio.run(wrapped()) if framework == "asyncio" else trio.run(wrapped)


def rows(store: LegacyStore) -> dict[str, list[Any]]:
    return {collection.name: list(store.rows(collection)) for collection in COLLECTIONS}


@pytest.mark.parametrize("framework", [*FRAMEWORKS, "anyio"])
def test_async_answers_are_the_sync_legacy_ones(tmp_path: Path, framework: str) -> None:
    sync = LegacyRepositories.open(str(tmp_path / "sync"), seed_modes=True)
    expected = asyncio.run(scenario(sync, value))

    async def main() -> list[Any]:
        legacy = await AsyncLegacyRepositories.open(tmp_path / "async", seed_modes=True)
        assert legacy.framework.name == framework  # the running framework's lock and worker threads
        try:
            return await scenario(legacy, awaited)
        finally:
            await legacy.close()

    assert run_in(framework, main) == expected
    assert rows(LegacyStore.open(tmp_path / "async")) == rows(sync.store)

    async def missing() -> None:
        await AsyncLegacyRepositories(sync).threads.get(99)

    with pytest.raises(NotFound, match="threads: no row with id 99"):
        asyncio.run(missing())


def test_the_store_s_calls_and_saves_run_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With autosave a committed write saves the export directory: in a worker thread, while the loop ticks."""
    saved_in: list[str] = []
    save = LegacyStore.save

    def slow_save(store: LegacyStore) -> None:
        saved_in.append(threading.current_thread().name)
        time.sleep(0.3)
        save(store)

    monkeypatch.setattr(LegacyStore, "save", slow_save)

    async def main() -> int:
        legacy = await AsyncLegacyRepositories.open(tmp_path / "legacy", autosave=True)
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.001)

        ticking = asyncio.ensure_future(ticker())
        await legacy.threads.create(Thread(name="saved", created_at=at(0)))
        done = True
        await ticking
        await legacy.close()
        return ticks

    ticks = asyncio.run(main())
    assert saved_in and threading.main_thread().name not in saved_in
    assert ticks > 20, ticks  # the loop ran through the 0.3 s save
    assert [t.name for t in LegacyRepositories.open(str(tmp_path / "legacy")).threads.list()] == ["saved"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_cancelled_or_failing_block_leaves_the_store_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, framework: str
) -> None:
    """Cancelled before each of a block's writes (and just before its end), or failing: nothing of it is kept."""
    calls = 0
    cancel_at: int | None = None
    cancel: Callable[[], object] = lambda: None  # noqa: E731
    original = AsyncLegacyRepositories.call

    async def counting(self: AsyncLegacyRepositories, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == cancel_at:
            cancel()
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(AsyncLegacyRepositories, "call", counting)

    async def block(legacy: AsyncLegacyRepositories) -> None:
        async with legacy.transaction():
            thread = await legacy.threads.create(Thread(name="t", created_at=at(0)))
            tag = await legacy.tags.create(Tag(name="red"))
            await legacy.messages.create(Message(thread_id=thread.id or 0, text="m", timestamp=at(1), tags=(tag,)))
            await legacy.threads.list()

    async def main() -> None:
        nonlocal cancel_at, cancel
        legacy = AsyncLegacyRepositories(LegacyRepositories(LegacyStore()))
        await legacy.threads.create(Thread(name="before", created_at=at(-1)))
        before = rows(legacy.legacy.store)
        for k in range(4):
            cancel_at = calls + k + 1
            if framework == "trio":
                with trio.CancelScope() as scope:
                    cancel = scope.cancel
                    await block(legacy)
                assert scope.cancelled_caught, k
            else:
                task = asyncio.ensure_future(block(legacy))
                cancel = task.cancel
                with pytest.raises(asyncio.CancelledError):
                    await task
            cancel_at = None
            assert rows(legacy.legacy.store) == before, k
            assert not legacy.legacy.store.in_transaction
        with pytest.raises(NotFound):
            async with legacy.transaction():
                await legacy.threads.create(Thread(name="gone", created_at=at(2)))
                await legacy.threads.get(12345)
        assert rows(legacy.legacy.store) == before
        await block(legacy)  # usable: the lock is free
        assert [t.name for t in await legacy.threads.list()] == ["t", "before"]

    run_in(framework, main)


def test_other_tasks_wait_for_a_block_and_never_see_its_writes_before_it_ends() -> None:
    async def main() -> None:
        legacy = AsyncLegacyRepositories(LegacyRepositories(LegacyStore()))
        inside = asyncio.Event()
        finish = asyncio.Event()
        seen: list[list[str]] = []

        async def writer() -> None:
            async with legacy.transaction():
                await legacy.threads.create(Thread(name="in the block", created_at=at(0)))
                inside.set()
                await finish.wait()

        async def reader() -> None:
            await inside.wait()
            seen.append([t.name for t in await legacy.threads.list()])

        writing = asyncio.ensure_future(writer())
        reading = asyncio.ensure_future(reader())
        await inside.wait()
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert not reading.done()  # waits for the block
        finish.set()
        await asyncio.gather(writing, reading)
        assert seen == [["in the block"]]

    asyncio.run(main())
