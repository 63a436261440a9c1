"""`python -m tools.bench repos --async`: `pychat_db.aio.AsyncDatabase` beside `Database` on the same database.

On the database `tools.bench repos` builds, under asyncio:

* page latency, p50 and p99, of a threads page (`threads.list`) and of a chat page with
  its tags (`messages.list_before`): read by one caller alone, a sync `Database` call and
  an async one in turn (so that both see the same load); then async, by 1, 10 and 100
  (`--concurrency`) tasks at once while one task writes (a message with tags at a time);
  beside each, the async pages per second and the process's CPU time per page (all its
  threads, the writer's included): pages/s times CPU ms/page near 1,000 means the reads
  are bound by the one core the GIL lets Python run on;
* threads pages read while another task holds a write transaction open (rolled back):
  reads go to the read connections, so they do not wait for the writer;
* inserts per second: `--inserts` messages with tags, one `messages.create` each, async and sync;
* the event loop's stalls: a ticker task sleeps 1 ms in a loop and records how late it
  wakes, while the inserts run; then with nothing else running for as long (the machine's
  own floor: on a loaded machine the scheduler alone makes stalls of several ms); then
  while one call reads every inserted message, and while they are read a page at a time.
  The pages are timed without the ticker, which would compete with them for the GIL.

Every figure comes from the same process and database; the inserted messages are deleted
afterwards, so the database stays as it was. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pychat_db.aio import AsyncDatabase
from pychat_db.aio.database import DEFAULT_READERS
from pychat_db.database import Database
from pychat_db.models import Message, Tag, Thread
from tools.bench.common import percentile

TICK = 0.001  # the ticker's sleep, in seconds
STALL_LIMIT = 0.005  # issue 17's target: no stall over 5 ms


@asynccontextmanager
async def ticking() -> AsyncIterator[list[float]]:
    """A task that sleeps `TICK` in a loop during the block; the list: how late each wake-up was (seconds)."""
    lateness: list[float] = []
    stop = False

    async def tick() -> None:
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            lateness.append(now - last - TICK)
            last = now

    task = asyncio.ensure_future(tick())
    try:
        yield lateness
    finally:
        stop = True
        await task


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _stall(lateness: Sequence[float]) -> str:
    """The ticker's wake-ups: the latest, p99.9, p99, and how many were over 5 ms late."""
    if not lateness:
        return "no tick"
    late = sum(1 for seconds in lateness if seconds > STALL_LIMIT)
    return (
        f"longest {max(lateness) * 1000:.1f} ms, p99.9 {percentile(lateness, 0.999) * 1000:.1f} ms, "
        f"p99 {percentile(lateness, 0.99) * 1000:.1f} ms; {late} of {len(lateness):,} ticks over "
        f"{STALL_LIMIT * 1000:.0f} ms"
    )


@dataclass
class Row:
    operation: str
    readers: int
    writer: bool
    async_samples: list[float]
    sync_samples: list[float] | None
    pages_per_second: float  # async pages read per second of wall time (alone: of the async calls' own time)
    cpu_per_page: float  # the process's CPU seconds (every thread's) per async page


def _message(thread_id: int, i: int, tags: Sequence[Tag], now: dt.datetime) -> Message:
    return Message(
        thread_id=thread_id,
        text=f"bench insert {i}",
        timestamp=now + dt.timedelta(microseconds=i),
        tags=tuple(tags[: 1 + i % 2]),
    )


def _sync_inserts(path: Path, args: argparse.Namespace, tags: Sequence[Tag]) -> float:
    """Sync inserts per second (one `messages.create` each)."""
    with Database(path) as db:
        thread = db.threads.create(Thread(name="bench inserts", created_at=dt.datetime.now(dt.UTC)))
        assert thread.id is not None
        now = dt.datetime.now(dt.UTC)
        start = time.perf_counter()
        for i in range(args.inserts):
            db.messages.create(_message(thread.id, i, tags, now))
        per_second: float = args.inserts / (time.perf_counter() - start)
        db.threads.delete(thread.id)
    return per_second


@dataclass
class Figures:
    rows: list[Row]
    written: int  # messages the writer added while the pages were read
    inserts_per_second: float
    inserting: list[float]  # the ticker's lateness while inserting
    idle: list[float]  # ... with nothing else running, as long as the inserts took
    whole: list[float]  # ... while one call reads the inserted messages all at once
    whole_seconds: float  # that call's time
    paged: list[float]  # ... while they are read a page at a time
    beside_open_block: list[float]  # threads pages read while another task held a write transaction open
    block_seconds: float  # how long it held it


async def _async_figures(
    path: Path,
    args: argparse.Namespace,
    thread_ids: Sequence[int],
    tags: Sequence[Tag],
    progress: Callable[[str], None],
) -> Figures:
    """Pages alone (sync and async calls in turn) and at each concurrency beside a writer; inserts; stalls."""
    rng = random.Random(7)
    rows: list[Row] = []
    with Database(path) as sync_db:
        async with AsyncDatabase(path, readers=args.readers) as db:
            pages: list[tuple[str, Callable[[int], object], Callable[[int], Awaitable[object]]]] = [
                (
                    "threads page",
                    lambda _: sync_db.threads.list(limit=args.page),
                    lambda _: db.threads.list(limit=args.page),
                ),
                (
                    f"messages page ({args.page}, with tags)",
                    lambda id: sync_db.messages.list_before(id, limit=args.page),
                    lambda id: db.messages.list_before(id, limit=args.page),
                ),
            ]

            async def warm() -> None:
                for thread_id in thread_ids:
                    await db.messages.list_before(thread_id, limit=args.page)

            # Each connection has its own page cache: every page is read on each before timing.
            for thread_id in thread_ids:
                sync_db.messages.list_before(thread_id, limit=args.page)
            await asyncio.gather(*(warm() for _ in range(3 * max(1, args.readers))))
            for name, sync_call, async_call in pages:
                progress(f"timing: {name}, sync and async in turn")
                sync_samples: list[float] = []
                async_samples: list[float] = []
                async_cpu = 0.0
                for _ in range(args.runs):  # in turn, so that both see the same load on a shared machine
                    thread_id = rng.choice(thread_ids)
                    start = time.perf_counter()
                    sync_call(thread_id)
                    sync_samples.append(time.perf_counter() - start)
                    start, cpu = time.perf_counter(), time.process_time()
                    await async_call(thread_id)
                    async_samples.append(time.perf_counter() - start)
                    async_cpu += time.process_time() - cpu
                rows.append(
                    Row(
                        name,
                        1,
                        False,
                        async_samples,
                        sync_samples,
                        args.runs / sum(async_samples),
                        async_cpu / args.runs,
                    )
                )

            writes = await db.threads.create(Thread(name="bench writer", created_at=dt.datetime.now(dt.UTC)))
            assert writes.id is not None
            writing = True
            written = 0

            async def writer() -> None:
                nonlocal written
                now = dt.datetime.now(dt.UTC)
                while writing:
                    await db.messages.create(_message(writes.id or 0, written, tags, now))
                    written += 1

            async def concurrently(call: Callable[[int], Awaitable[object]], readers: int, name: str) -> Row:
                """`readers` tasks calling at once, `--runs` calls in all: each call's latency, the pages per
                second, the CPU time per page (the writer's included: it runs meanwhile)."""
                samples: list[float] = []

                async def reader() -> None:
                    for _ in range(max(1, -(-args.runs // readers))):
                        start = time.perf_counter()
                        await call(rng.choice(thread_ids))
                        samples.append(time.perf_counter() - start)

                start, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*(reader() for _ in range(readers)))
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
                return Row(name, readers, True, samples, None, len(samples) / wall, cpu / len(samples))

            writer_task = asyncio.ensure_future(writer())
            for name, _, async_call in pages:
                for readers in args.concurrency:
                    progress(f"timing: {name}, {readers} reader(s) and a writer")
                    rows.append(await concurrently(async_call, readers, name))
            writing = False
            await writer_task
            await db.threads.delete(writes.id)

            progress("timing: threads pages while another task holds a write transaction open")
            beside_open_block, block_seconds = await _beside_an_open_block(db, args.page)

            progress(f"timing: {args.inserts} inserts with tags (async)")
            thread = await db.threads.create(Thread(name="bench inserts", created_at=dt.datetime.now(dt.UTC)))
            assert thread.id is not None
            now = dt.datetime.now(dt.UTC)
            async with ticking() as inserting:
                start = time.perf_counter()
                for i in range(args.inserts):
                    await db.messages.create(_message(thread.id, i, tags, now))
                took = time.perf_counter() - start
            progress(f"timing: the ticker alone for {took:.1f} s, as long as the inserts took")
            async with ticking() as idle:
                await asyncio.sleep(args.idle if args.idle is not None else took)

            progress(f"timing: the {args.inserts} messages read in one call, then a page at a time")
            async with ticking() as whole:
                start = time.perf_counter()
                await db.messages.list(thread.id)
                whole_seconds = time.perf_counter() - start
            async with ticking() as paged:
                after: Message | None = None
                while page := await db.messages.list(thread.id, limit=args.page, after=after):
                    after = page[-1]
            await db.threads.delete(thread.id)
    return Figures(
        rows,
        written,
        args.inserts / took,
        inserting,
        idle,
        whole,
        whole_seconds,
        paged,
        beside_open_block,
        block_seconds,
    )


class _KeepNothing(Exception):
    pass


async def _beside_an_open_block(db: AsyncDatabase, page: int, hold: float = 0.5) -> tuple[list[float], float]:
    """Threads pages read, one after another, while another task's write transaction stays open for `hold` s.

    The block writes, then waits; it is rolled back, so the database stays as it was. Reads
    that went through the writer would wait for the whole block.
    """
    opened = asyncio.Event()
    samples: list[float] = []

    async def block() -> None:
        try:
            async with db.transaction():
                await db.threads.create(Thread(name="bench open block", created_at=dt.datetime.now(dt.UTC)))
                opened.set()
                await asyncio.sleep(hold)
                raise _KeepNothing
        except _KeepNothing:
            pass

    task = asyncio.ensure_future(block())
    await opened.wait()
    start = time.perf_counter()
    while not task.done():
        began = time.perf_counter()
        await db.threads.list(limit=page)
        samples.append(time.perf_counter() - began)
    held = time.perf_counter() - start
    await task
    return samples, held


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # not every platform has one
        return "unknown"


def run(path: Path, args: argparse.Namespace, progress: Callable[[str], None]) -> list[str]:
    """Measure; the report's lines."""
    with Database(path) as db:
        every = [int(row[0]) for row in db.connection.execute("SELECT id FROM threads ORDER BY id")]
        # The threads whose pages are read, the same for sync and async.
        thread_ids = random.Random(7).sample(every, min(len(every), args.runs))
        tags = db.tags.list()
    load_before = _load_average()
    figures = asyncio.run(_async_figures(path, args, thread_ids, tags, progress))
    progress(f"timing: {args.inserts} inserts with tags (sync)")
    sync_inserts = _sync_inserts(path, args, tags)
    lines = [
        f"load average (1 min) before: {load_before}, after: {_load_average()}: stalls are the queries' own only when "
        "the machine is otherwise idle (other jobs' load alone makes stalls of several ms)",
        f"async: AsyncDatabase ({args.readers} read connections and the writer), asyncio; sync: Database. "
        "Alone: one caller, a sync and an async call in turn; + writer: the async pages while one task wrote "
        f"messages with tags ({figures.written} of them)",
        "",
        "| page | concurrent readers | async p50 ms | async p99 ms | async pages/s | CPU ms/page "
        "| sync p50 ms | sync p99 ms | async/sync p50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in figures.rows:
        a50 = statistics.median(row.async_samples)
        sync = row.sync_samples
        sync_cells = (
            f"{_ms(statistics.median(sync))} | {_ms(percentile(sync, 0.99))} | {a50 / statistics.median(sync):.2f}"
            if sync
            else "— | — | —"
        )
        lines.append(
            f"| {row.operation} | {row.readers}{' + writer' if row.writer else ''} | "
            f"{_ms(a50)} | {_ms(percentile(row.async_samples, 0.99))} | "
            f"{row.pages_per_second:,.0f} | {_ms(row.cpu_per_page)} | {sync_cells} |"
        )
    lines += [
        "",
        f"inserts ({args.inserts} messages with tags, one create each): async {figures.inserts_per_second:,.0f}/s, "
        f"sync {sync_inserts:,.0f}/s",
        f"threads pages while another task held a write transaction open ({figures.block_seconds * 1000:.0f} ms): "
        f"{len(figures.beside_open_block):,} read, p50 {_ms(statistics.median(figures.beside_open_block))} ms, "
        f"longest {_ms(max(figures.beside_open_block))} ms",
        "",
        "the event loop's stalls: how late a task sleeping 1 ms in a loop woke up",
        f"- while inserting: {_stall(figures.inserting)}",
        f"- with nothing running: {_stall(figures.idle)}",
        f"- while one call read the {args.inserts} inserted messages with their tags "
        f"({figures.whole_seconds * 1000:.0f} ms): {_stall(figures.whole)}",
        f"- while they were read {args.page} at a time: {_stall(figures.paged)}",
    ]
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `--async` (see the module doc)."""
    parser.add_argument(
        "--async",
        dest="async_",
        action="store_true",
        help="time pychat_db.aio.AsyncDatabase beside Database: pages under concurrent readers and a writer, "
        "inserts per second, the event loop's longest stall",
    )
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 10, 100],
        help="with --async: the numbers of concurrent reading tasks, comma-separated",
    )
    parser.add_argument(
        "--readers", type=int, default=DEFAULT_READERS, help="with --async: the AsyncDatabase's read connections"
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=None,
        help="with --async: seconds the loop's stall is timed with nothing running (default: as long as the "
        "inserts took, so that both count alike many ticks)",
    )
