"""`python -m tools.bench repos`: repository reads and writes on a large database.

Builds (with bulk SQL in one transaction, not through the repositories) a
database of `--threads` threads and `--messages` messages (default 10k / 1M,
spread evenly; about one tag link per message, 50 tags; ties on created_at and
timestamp included), then times, through `pychat_db.Database` and its
repositories, each operation `--runs` times and prints the median (and p95, min)
in milliseconds. Reads run on a warm cache. Asserts nothing.

With `--async`, times `pychat_db.aio.AsyncDatabase` beside `Database` instead: pages
under 1, 10 and 100 concurrent readers and a writer, inserts per second, the event
loop's longest stall (`tools/bench/repos_async.py`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import apsw

from pychat_db.connection import connect
from pychat_db.database import Database
from pychat_db.migrations import migrate
from pychat_db.models import Message, Thread
from tools.bench import repos_async
from tools.bench.common import cpu_model, new_parser, percentile

TAGS = 50
EPOCH_BASE = 1_600_000_000  # 2020-09-13: the first thread's creation, in Unix seconds

_BUILD = [
    # Threads 10 minutes apart; every 7th shares its predecessor's created_at (ties).
    """
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :threads)
    INSERT INTO threads (id, name, created_at)
    SELECT i, 'Thread ' || i,
           strftime('%Y-%m-%dT%H:%M:%S', :base + (i - (i % 7 = 0)) * 600, 'unixepoch') || '.000000Z'
    FROM n
    """,
    """
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :tags)
    INSERT INTO tags (id, name, description) SELECT i, 'tag ' || i, 'benchmark tag ' || i FROM n
    """,
    # Messages of a thread 5 s apart, in thread order; every 10th ties with the one before.
    """
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :messages - 1)
    INSERT INTO messages (id, thread_id, text, timestamp, type, description)
    SELECT i + 1, i / :per_thread + 1,
           'Message ' || (i + 1) || ' of thread ' || (i / :per_thread + 1)
               || ': the quick brown fox jumps over the lazy dog',
           strftime('%Y-%m-%dT%H:%M:%S',
                    :base + (i / :per_thread + 1) * 600 + ((i % :per_thread) - ((i % :per_thread) % 10 = 0)) * 5,
                    'unixepoch') || '.' || printf('%06d', (i / 10) % 1000000) || 'Z',
           'text', ''
    FROM n
    """,
    # Two thirds of the messages carry one tag, a third of them a second one: ~1 link per message.
    """
    INSERT INTO message_tags (message_id, tag_id)
    SELECT id, id % :tags + 1 FROM messages WHERE id % 3 != 0
    UNION ALL
    SELECT id, (id + :tags / 2) % :tags + 1 FROM messages WHERE id % 3 = 2
    """,
]


def build(path: Path, threads: int, messages: int) -> dict[str, int]:
    """Create and fill the benchmark database at `path`; return row counts."""
    conn = connect(path, pragmas=False)
    conn.execute("PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -262144")
    migrate(conn)
    params = {
        "threads": threads,
        "messages": messages,
        "per_thread": max(1, messages // threads),
        "tags": TAGS,
        "base": EPOCH_BASE,
    }
    with conn:
        for sql in _BUILD:
            conn.execute(sql, {k: v for k, v in params.items() if f":{k}" in sql})
    counts = {}
    for table in ("threads", "messages", "tags", "message_tags"):
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        counts[table] = int(row[0])
    conn.close()
    return counts


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds of each of `runs` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def machine() -> str:
    cpu = cpu_model(platform.processor() or platform.machine())
    return (
        f"{cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite {apsw.sqlite_lib_version()}; APSW {apsw.apsw_version()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = new_parser(
        "repos", "Time repository reads and writes on a large database (prints a table, asserts nothing)."
    )
    parser.add_argument("--threads", type=int, default=10_000, help="threads in the database")
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in the database")
    parser.add_argument("--runs", type=int, default=200, help="timed runs of each read")
    parser.add_argument("--write-runs", type=int, default=5, help="timed runs of the bulk insert")
    parser.add_argument("--inserts", type=int, default=10_000, help="messages inserted per write run")
    parser.add_argument("--page", type=int, default=50, help="page size of the listings")
    parser.add_argument("--db", type=Path, help="reuse (or create) the benchmark database here instead of a temp dir")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    repos_async.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.messages < args.threads or args.runs < 1 or args.write_runs < 1:
        parser.error("need --threads >= 1, --messages >= --threads, --runs >= 1, --write-runs >= 1")
    if args.readers < 0 or min(args.concurrency) < 1:
        parser.error("need --readers >= 0 and every --concurrency >= 1")

    def progress(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-repos-") as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            progress(f"building {path}: {args.threads} threads, {args.messages} messages ...")
            start = time.perf_counter()
            counts = build(path, args.threads, args.messages)
            progress(f"built in {time.perf_counter() - start:.1f} s: {counts}")
        if args.async_:
            lines = repos_async.run(path, args, progress)
            print(f"machine: {machine()}")
            with Database(path) as db:
                print(_describe(db, args.page))
            print()
            print("\n".join(lines))
            return 0
        with Database(path) as db:
            return _run(db, args, progress)


def _describe(db: Database, page: int) -> str:
    """The report's database line: row counts and page size."""
    counts = {
        table: int(db.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        for table in ("threads", "messages", "message_tags")
    }
    return (
        f"database: {counts['threads']} threads, {counts['messages']} messages, {counts['message_tags']} tag links; "
        f"page size {page}"
    )


def _run(db: Database, args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    rng = random.Random(42)
    database = _describe(db, args.page)
    thread_ids = [int(r[0]) for r in db.connection.execute("SELECT id FROM threads ORDER BY id")]
    middle = db.threads.list(limit=len(thread_ids) // 2)[-1]
    results: list[tuple[str, list[float]]] = []

    def measure(name: str, fn: Callable[[], object], runs: int) -> None:
        progress(f"timing: {name}")
        results.append((name, timed(fn, runs)))

    measure("threads: first page", lambda: db.threads.list(limit=args.page), args.runs)
    measure("threads: page in the middle (keyset)", lambda: db.threads.list(limit=args.page, before=middle), args.runs)

    def first_messages() -> object:
        return db.messages.list(rng.choice(thread_ids), limit=args.page)

    measure(f"messages: first {args.page} of a thread, with tags", first_messages, args.runs)

    def latest_messages() -> object:
        return db.messages.list_before(rng.choice(thread_ids), limit=args.page)

    measure(f"messages: latest {args.page} of a thread, with tags", latest_messages, args.runs)

    cursors = []
    for thread_id in rng.sample(thread_ids, min(len(thread_ids), 500)):
        page = db.messages.list(thread_id, limit=args.page)
        if page:
            cursors.append((thread_id, page[len(page) // 2]))

    def next_messages() -> object:
        thread_id, after = rng.choice(cursors)
        return db.messages.list(thread_id, limit=args.page, after=after)

    measure(f"messages: {args.page} after a cursor, with tags", next_messages, args.runs)
    some_message = db.messages.list(thread_ids[0], limit=1)[0]
    assert some_message.id is not None
    message_id = some_message.id
    measure("messages: get one, with tags", lambda: db.messages.get(message_id), args.runs)

    write_samples = []
    now = dt.datetime.now(dt.UTC)
    for run in range(args.write_runs):
        progress(f"timing: {args.inserts} inserts, run {run + 1}/{args.write_runs}")
        thread = db.threads.create(Thread(name="bench inserts", created_at=now))
        assert thread.id is not None
        start = time.perf_counter()
        with db.transaction():
            for i in range(args.inserts):
                db.messages.create(
                    Message(thread_id=thread.id, text=f"inserted {i}", timestamp=now + dt.timedelta(microseconds=i))
                )
        write_samples.append((time.perf_counter() - start) * 1000)
        db.threads.delete(thread.id)  # untimed: keeps the database the same for every run
    results.append((f"messages: {args.inserts} inserts in one transaction", write_samples))

    print(f"machine: {machine()}")
    print(database)
    print()
    print("| operation | runs | median ms | p95 ms | min ms |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in results:
        p95 = percentile(samples, 0.95)
        print(f"| {name} | {len(samples)} | {statistics.median(samples):.3f} | {p95:.3f} | {min(samples):.3f} |")
    per_insert_us = statistics.median(write_samples) * 1000 / args.inserts
    print()
    print(f"inserts: {per_insert_us:.1f} µs per message (median run), {1e6 / per_insert_us:,.0f} messages/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
