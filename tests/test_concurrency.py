"""Two writer processes and a reader on one database file.

Two processes each add messages with two tags through the repositories (one
write transaction per message, `BEGIN IMMEDIATE` under a 5 s busy timeout)
while a third pages through every thread's messages. At the end every write is
present (none lost to SQLITE_BUSY), and the reader never saw a message without
its tags. The writes per second are printed (`pytest -s`); they are a figure,
not an assertion.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pychat_db.database import Database
from pychat_db.models import Tag, Thread
from tests.support.commands import ROOT
from tests.support.concurrency_worker import T0
from tests.support.faulty_vfs import check_db

WORKER = "tests.support.concurrency_worker"


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", WORKER, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_two_writers_and_a_reader(tmp_path: Path, count: int) -> dict[str, dict[str, float]]:
    path = tmp_path / "chat.db"
    with Database(path) as db, db.transaction():
        for name in ("a", "b", "c"):
            db.tags.create(Tag(name=name))
        for writer in range(2):
            db.threads.create(Thread(name=f"writer {writer}", created_at=T0))
    stop = tmp_path / "stop"
    reader = spawn("read", str(path), str(stop), "600")
    started = time.perf_counter()
    writers = [spawn("write", str(path), str(w), str(count)) for w in range(2)]
    results: dict[str, dict[str, float]] = {}
    try:
        for w, proc in enumerate(writers):
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"writer {w}: {err}"
            results[f"writer {w}"] = json.loads(out)
        elapsed = time.perf_counter() - started
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=600)
    assert reader.returncode == 0, f"reader: {err}"
    results["reader"] = json.loads(out)
    results["total"] = {"writes": 2 * count, "seconds": elapsed, "writes_per_second": 2 * count / elapsed}

    conn = check_db(path)
    per_writer = conn.execute(
        "SELECT thread_id, count(*) FROM messages GROUP BY thread_id ORDER BY thread_id"
    ).fetchall()
    assert [n for _, n in per_writer] == [count, count], per_writer
    assert conn.execute("SELECT count(*) FROM message_tags").fetchone() == (4 * count,)
    texts = {row[0] for row in conn.execute("SELECT text FROM messages")}
    assert texts == {f"writer {w} message {i}" for w in range(2) for i in range(count)}
    conn.close()
    assert results["reader"]["untagged"] == 0, results["reader"]
    assert results["reader"]["pages"] > 0
    return results


def test_two_writers_and_a_reader(tmp_path: Path) -> None:
    results = run_two_writers_and_a_reader(tmp_path, 2000)
    total = results["total"]
    print(
        f"2 x 2,000 writes in {total['seconds']:.1f} s: {total['writes_per_second']:.0f} writes/s; "
        f"slowest write {max(results[f'writer {w}']['worst_write_seconds'] for w in range(2)) * 1000:.0f} ms; "
        f"reader: {results['reader']['pages']:.0f} pages, {results['reader']['messages_seen']:.0f} messages, "
        f"{results['reader']['untagged']:.0f} without their tags"
    )


@pytest.mark.slow
def test_two_writers_and_a_reader_long(tmp_path: Path) -> None:
    results = run_two_writers_and_a_reader(tmp_path, 20_000)
    print(f"2 x 20,000 writes: {results['total']['writes_per_second']:.0f} writes/s; reader {results['reader']}")
