"""A writer or a reader process for tests/test_concurrency.py.

    python -m tests.support.concurrency_worker write DB WRITER_ID COUNT
    python -m tests.support.concurrency_worker read DB STOP_FILE SECONDS

The writer adds COUNT messages through `Database`, each with the two tags
"a" and "b" (one transaction per message: BEGIN IMMEDIATE, waiting up to the
busy timeout for the other writer). The reader pages through every thread's
messages until STOP_FILE exists (or SECONDS pass) and counts messages seen
without both tags. Each prints one JSON line of figures; any error is printed
and exits 1.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

from pychat_db.database import Database
from pychat_db.models import Message

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def write(path: str, writer: int, count: int) -> dict[str, float]:
    with Database(path) as db:
        thread = db.threads.list(limit=writer + 1)[writer]
        tags = tuple(t for t in db.tags.list() if t.name in ("a", "b"))
        assert thread.id is not None and len(tags) == 2
        started = time.perf_counter()
        worst = 0.0
        for i in range(count):
            t = time.perf_counter()
            db.messages.create(
                Message(
                    thread_id=thread.id,
                    text=f"writer {writer} message {i}",
                    timestamp=T0 + dt.timedelta(seconds=i),
                    tags=tags,
                )
            )
            worst = max(worst, time.perf_counter() - t)
        seconds = time.perf_counter() - started
    return {"writes": count, "seconds": seconds, "worst_write_seconds": worst}


def read(path: str, stop: str, seconds: float) -> dict[str, float]:
    deadline = time.monotonic() + seconds
    pages = messages = untagged = 0
    with Database(path, seed_modes=False) as db:
        while not Path(stop).exists() and time.monotonic() < deadline:
            for thread in db.threads.list():
                assert thread.id is not None
                page = db.messages.list(thread.id, limit=100)
                while page:
                    pages += 1
                    messages += len(page)
                    untagged += sum(1 for m in page if {t.name for t in m.tags} != {"a", "b"})
                    page = db.messages.list(thread.id, limit=100, after=page[-1])
    return {"pages": pages, "messages_seen": messages, "untagged": untagged}


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "write":
            result = write(argv[1], int(argv[2]), int(argv[3]))
        else:
            result = read(argv[1], argv[2], float(argv[3]))
    except Exception as exc:
        print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
