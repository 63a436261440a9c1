"""pychat_db.aio: AsyncDatabase against the sync Database, its errors, transactions, concurrency and cancellation.

Every scenario is an `async def` run under each framework `apsw.aio` supports
(asyncio, trio, anyio) where it says so.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import apsw
import pytest
import trio

from pychat_db.aio import AsyncDatabase
from pychat_db.aio.session import AsyncSession
from pychat_db.connection import connect
from pychat_db.database import Database
from pychat_db.errors import ConstraintViolation, NotFound, SchemaMismatch
from pychat_db.generated.queries import tags as tags_q
from pychat_db.models import Message, ModeOutput, Tag, Thread
from tests.support.aio_scenario import at, awaited, scenario, value

TABLES = ("configuration", "threads", "modes", "messages", "mode_outputs", "tags", "message_tags")
FRAMEWORKS = ("asyncio", "trio", "anyio")


def run_in(framework: str, main: Callable[[], Awaitable[Any]]) -> Any:
    """Run `main()` under `framework`'s event loop (anyio on its asyncio backend)."""

    async def wrapped() -> Any:
        return await main()

    if framework == "asyncio":
        return asyncio.run(wrapped())
    if framework == "trio":
        return trio.run(wrapped)
    return anyio.run(wrapped)


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read through a fresh sync connection."""
    conn = connect(path)
    try:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in TABLES}
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "chat.db"


# -- the same answers as the sync Database --------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_async_answers_are_the_sync_ones(tmp_path: Path, framework: str) -> None:
    async def sync_side() -> list[Any]:
        with Database(tmp_path / "sync.db") as db:
            return await scenario(db, value)

    async def async_side() -> list[Any]:
        async with AsyncDatabase(tmp_path / "async.db") as db:
            return await scenario(db, awaited)

    expected = asyncio.run(sync_side())
    assert run_in(framework, async_side) == expected
    assert dump(tmp_path / "async.db") == dump(tmp_path / "sync.db")


def test_opening_rules_are_the_sync_ones(path: Path) -> None:
    async def main() -> None:
        async with AsyncDatabase(path) as db:
            assert len(await db.modes.list()) == 5  # the built-in modes, seeded
            assert db.path == os.fspath(path)

    asyncio.run(main())
    assert os.stat(path).st_mode & 0o777 == 0o600
    conn = apsw.Connection(os.fspath(path))
    assert conn.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
    conn.close()


def test_errors_are_the_sync_ones(path: Path) -> None:
    async def main() -> None:
        async with AsyncDatabase(path) as db:
            with pytest.raises(NotFound, match=r"threads: no row with id 99"):
                await db.threads.get(99)
            with pytest.raises(ConstraintViolation, match=r"messages\.thread_id: no threads row with id 5") as info:
                await db.messages.create(Message(thread_id=5, text="x", timestamp=at(0)))
            assert (info.value.kind, info.value.column) == ("FOREIGN KEY", "thread_id")
            with pytest.raises(ValueError, match="limit must be None or an integer >= 0"):
                await db.threads.list(limit=-1)

    asyncio.run(main())


def test_a_foreign_schema_is_refused_before_anything_is_written(path: Path) -> None:
    conn = apsw.Connection(os.fspath(path))
    conn.execute("CREATE TABLE strangers(x)")
    conn.close()

    async def main() -> None:
        with pytest.raises(SchemaMismatch, match="strangers"):
            await AsyncDatabase(path).open()

    asyncio.run(main())
    conn = apsw.Connection(os.fspath(path))
    assert conn.execute("SELECT name FROM sqlite_schema").fetchall() == [("strangers",)]  # not migrated
    conn.close()


def test_a_closed_database_says_so(path: Path) -> None:
    async def main() -> None:
        db = AsyncDatabase(path)
        with pytest.raises(Exception, match="not open"):
            await db.threads.list()
        await db.open()
        await db.close()
        await db.close()  # idempotent
        with pytest.raises(Exception, match="not open"):
            await db.threads.list()

    asyncio.run(main())


# -- transactions --------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_failing_block_keeps_nothing_and_a_nested_one_rolls_back_alone(path: Path, framework: str) -> None:
    async def main() -> None:
        async with AsyncDatabase(path, seed_modes=False) as db:
            with pytest.raises(RuntimeError, match="boom"):
                async with db.transaction():
                    await db.threads.create(Thread(name="gone", created_at=at(0)))
                    raise RuntimeError("boom")
            async with db.transaction():
                await db.threads.create(Thread(name="kept", created_at=at(1)))
                with pytest.raises(NotFound):
                    async with db.transaction():
                        await db.threads.create(Thread(name="inner", created_at=at(2)))
                        await db.threads.get(12345)
                # inside the block the writer answers, so the block's own write is seen
                assert [t.name for t in await db.threads.list()] == ["kept"]
            assert [t.name for t in await db.threads.list()] == ["kept"]

    run_in(framework, main)


# -- cancellation at every await point of a multi-write transaction ---------------------------------


async def _multi_write(db: AsyncDatabase) -> None:
    """A transaction of several writes, one of them (a message with tags) itself several statements."""
    async with db.transaction():
        thread = await db.threads.create(Thread(name="t", created_at=at(0)))
        assert thread.id is not None
        red = await db.tags.create(Tag(name="red"))
        blue = await db.tags.create(Tag(name="blue"))
        message = await db.messages.create(Message(thread_id=thread.id, text="m", timestamp=at(1), tags=(red, blue)))
        assert message.id is not None
        await db.tags.set_tags(message.id, [blue.id or 0])
        modes = await db.modes.list()
        await db.mode_outputs.create(
            ModeOutput(thread_id=thread.id, mode_id=modes[0].id or 0, created_at=at(2), content="out")
        )


class _Calls:
    """Counts `AsyncSession.call`s (every await that reaches a connection) and cancels the task at the k-th."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, framework: str) -> None:
        self.count = 0
        self.cancel_at: int | None = None
        self.after = False  # cancel once the call has finished (its work done) instead of before it runs
        self.cancel: Callable[[], None] = lambda: None
        self.names: list[str] = []
        original = AsyncSession.call
        calls = self

        async def call(session: AsyncSession, function: Callable[..., Any], *args: Any) -> Any:
            calls.count += 1
            calls.names.append(getattr(function, "__name__", "?"))
            if calls.count == calls.cancel_at and not calls.after:
                calls.cancel()
            result = await original(session, function, *args)
            if calls.count == calls.cancel_at and calls.after:
                calls.cancel()
                await _checkpoint(framework)
            return result

        monkeypatch.setattr(AsyncSession, "call", call)


async def _checkpoint(framework: str) -> None:
    if framework == "trio":
        await trio.lowlevel.checkpoint()
    else:
        await asyncio.sleep(0)


async def _cancelled_run(framework: str, calls: _Calls, body: Callable[[], Awaitable[None]]) -> bool:
    """Run `body` in a scope the hook can cancel; whether it was cancelled."""
    if framework == "trio":
        with trio.CancelScope() as scope:
            calls.cancel = scope.cancel
            await body()
        return scope.cancelled_caught
    task = asyncio.ensure_future(body())
    calls.cancel = lambda: task.cancel() and None
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
@pytest.mark.parametrize("after", [False, True], ids=["before-the-call", "after-the-call"])
def test_cancellation_at_every_await_leaves_the_database_as_before(
    path: Path, monkeypatch: pytest.MonkeyPatch, framework: str, after: bool
) -> None:
    async def main() -> None:
        async with AsyncDatabase(path, readers=1) as db:
            await db.threads.create(Thread(name="before", created_at=at(-1)))
            before = dump(path)
            calls = _Calls(monkeypatch, framework)
            calls.after = after
            start = calls.count
            await _multi_write(db)
            points = calls.names[start:]
            full = dump(path)
            # BEGIN, one call per repository method (its statements, savepoint included, run in the worker), COMMIT
            assert points == ["begin", *["run_plan"] * 7, "commit"], points
            await db.threads.delete(2)  # the tags and the message go with the thread; the tags are left
            for name in ("red", "blue"):
                tag = next(t for t in await db.tags.list() if t.name == name)
                await db.tags.delete(tag.id or 0)
            assert [t.name for t in await db.threads.list()] == ["before"]
            for k in range(len(points)):
                state = dump(path)
                calls.cancel_at = calls.count + k + 1
                cancelled = await _cancelled_run(framework, calls, lambda: _multi_write(db))
                calls.cancel_at = None
                last = k == len(points) - 1
                # trio delivers a cancellation at the next checkpoint: after the shielded COMMIT there is none
                assert cancelled or (last and framework == "trio"), f"await point {k} ({points[k]}) was not cancelled"
                if last:
                    # the outermost COMMIT is shielded: once sent, the block's work is kept, then the
                    # cancellation arrives (a nested block's RELEASE, also "commit", is undone with the rest)
                    kept = dump(path)
                    assert [len(kept[t]) for t in TABLES] == [len(full[t]) for t in TABLES], points[k]
                    async with db.transaction():
                        thread = (await db.threads.list(limit=1))[0]
                        await db.threads.delete(thread.id or 0)
                        for tag in await db.tags.list():
                            await db.tags.delete(tag.id or 0)
                else:
                    assert dump(path) == state, f"cancelled at await point {k} ({points[k]}): the database changed"
                # the database is usable at once: the lock is free and no transaction is left open
                assert [t.name for t in await db.threads.list()] == ["before"]
            assert dump(path)["threads"] == before["threads"]

    run_in(framework, main)


# A statement long enough that the worker is still in it when the task is cancelled (APSW's progress
# handler then interrupts it; uninterrupted it would run for seconds and the write would be kept).
_LONG = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 30000000) SELECT count(*) FROM c"


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
@pytest.mark.parametrize("in_block", [False, True], ids=["own-transaction", "inside-a-block"])
def test_a_task_cancelled_while_its_method_runs_in_the_worker_leaves_nothing(
    path: Path, monkeypatch: pytest.MonkeyPatch, framework: str, in_block: bool
) -> None:
    """A method's statements run in one worker call: cancelled halfway, its transaction or savepoint is undone there."""
    linked = threading.Event()
    attach_tags = tags_q.attach_tags

    def slow_attach_tags(conn: apsw.Connection, **kwargs: Any) -> Any:
        result = attach_tags(conn, **kwargs)  # the message and its links are written ...
        linked.set()
        conn.execute(_LONG).fetchall()  # ... and the plan is still running when the task is cancelled
        return result

    async def create(db: AsyncDatabase, thread_id: int, tag: Tag) -> None:
        message = Message(thread_id=thread_id, text="m", timestamp=at(1), tags=(tag,))
        if in_block:
            async with db.transaction():
                await db.threads.create(Thread(name="in the block", created_at=at(2)))
                await db.messages.create(message)
        else:
            await db.messages.create(message)

    async def main() -> None:
        async with AsyncDatabase(path, seed_modes=False, readers=1) as db:
            thread = await db.threads.create(Thread(name="t", created_at=at(0)))
            tag = await db.tags.create(Tag(name="red"))
            before = dump(path)
            monkeypatch.setattr(tags_q, "attach_tags", slow_attach_tags)

            async def cancel_when_linked(cancel: Callable[[], object]) -> None:
                while not linked.is_set():
                    await (trio.sleep(0.001) if framework == "trio" else asyncio.sleep(0.001))
                cancel()

            if framework == "trio":
                with trio.CancelScope() as scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(cancel_when_linked, scope.cancel)
                        await create(db, thread.id or 0, tag)
                assert scope.cancelled_caught
            else:
                task = asyncio.ensure_future(create(db, thread.id or 0, tag))
                await cancel_when_linked(task.cancel)
                with pytest.raises(asyncio.CancelledError):
                    await task
            monkeypatch.setattr(tags_q, "attach_tags", attach_tags)
            assert dump(path) == before
            # the writer is free and no transaction is left open
            await db.messages.create(Message(thread_id=thread.id or 0, text="after", timestamp=at(3), tags=(tag,)))
            assert [m.text for m in await db.messages.list(thread.id or 0)] == ["after"]

    run_in(framework, main)


# -- concurrency ------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_readers_never_see_a_message_without_its_tags(path: Path, framework: str) -> None:
    seen: list[int] = []

    async def main() -> None:
        async with AsyncDatabase(path, seed_modes=False, readers=2) as db:
            thread = await db.threads.create(Thread(name="t", created_at=at(0)))
            tags = (await db.tags.create(Tag(name="a")), await db.tags.create(Tag(name="b")))
            assert thread.id is not None
            done = False

            async def writer() -> None:
                nonlocal done
                for i in range(150):
                    await db.messages.create(Message(thread_id=thread.id or 0, text=f"{i}", timestamp=at(i), tags=tags))
                done = True

            async def reader() -> None:
                while not done:
                    for message in await db.messages.list_before(thread.id or 0, limit=20):
                        assert message.tags == tags, message
                    seen.append(1)

            if framework == "trio":
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(writer)
                    for _ in range(4):
                        nursery.start_soon(reader)
            else:
                await asyncio.gather(writer(), *(reader() for _ in range(4)))
            assert len(await db.messages.list(thread.id)) == 150

    run_in(framework, main)
    assert seen  # the readers did read while the writer wrote


@pytest.mark.parametrize("framework", ["asyncio", "anyio"])
def test_concurrent_writers_lose_nothing(path: Path, framework: str) -> None:
    async def main() -> None:
        async with AsyncDatabase(path, seed_modes=False) as db, AsyncDatabase(path, seed_modes=False) as other:
            # `other` is a second writer on the same file: it and `db` meet at BEGIN IMMEDIATE

            async def plain(owner: AsyncDatabase, n: int) -> None:
                for i in range(10):
                    await owner.threads.create(Thread(name=f"p{n}-{i}", created_at=at(i)))

            async def in_blocks(owner: AsyncDatabase, n: int) -> None:
                for i in range(5):
                    async with owner.transaction():
                        thread = await owner.threads.create(Thread(name=f"b{n}-{i}", created_at=at(i)))
                        count = len(await owner.threads.list())
                        await owner.threads.update(Thread(id=thread.id, name=f"{count}", created_at=at(i)))

            jobs = [plain(db, n) for n in range(4)] + [plain(other, n + 4) for n in range(2)]
            jobs += [in_blocks(db, n) for n in range(2)] + [in_blocks(other, n + 2) for n in range(2)]
            if framework == "anyio":
                async with anyio.create_task_group() as group:
                    for job in jobs:
                        group.start_soon(lambda job=job: job)
            else:
                await asyncio.gather(*jobs)
            threads = await db.threads.list()
            assert len(threads) == 6 * 10 + 4 * 5
            # a block's count saw its own thread and every block committed before it: distinct counts
            counts = [int(t.name) for t in threads if t.name.isdigit()]
            assert len(counts) == 20 and len(set(counts)) == 20

    run_in(framework, main)


def test_an_in_memory_database_has_no_readers_and_still_works() -> None:
    async def main() -> None:
        async with AsyncDatabase(":memory:", readers=4) as db:
            await asyncio.gather(*(db.threads.create(Thread(name=f"{i}", created_at=at(i))) for i in range(20)))
            assert len(await db.threads.list()) == 20

    asyncio.run(main())


def test_the_loop_is_free_while_a_query_runs(path: Path) -> None:
    """The statements run in the connection's worker thread: the loop runs other tasks meanwhile."""
    ticks = 0

    async def main() -> None:
        nonlocal ticks
        async with AsyncDatabase(path, seed_modes=False) as db:
            conn = db._session().conn
            stop = False

            async def ticker() -> None:
                nonlocal ticks
                while not stop:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.ensure_future(ticker())
            # a statement that keeps the worker busy for a while (a long recursive count)
            sql = (
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) "
                "SELECT count(*) FROM c"
            )
            before = ticks
            cursor = await conn.execute(sql)
            assert await cursor.fetchall() == [(3000000,)]
            during = ticks - before
            stop = True
            await task
            assert during > 10, during

    asyncio.run(main())
