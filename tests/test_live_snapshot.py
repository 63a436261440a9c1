"""`tools.export` and `tools.verify` read one snapshot of a database the app is writing (issue 15, section 3).

A writer process (`tests/support/db_holder.py writer`) adds messages with two tags
and rewrites an older message's text and tags, one transaction each, for as long as
the export or verification runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from pychat_db.exchange.contract import MESSAGE_TAGS, MESSAGES, TAGS
from pychat_db.exchange.reader import read_rows
from pychat_db.exchange.verify import verify
from tests.support.commands import ROOT, run_module
from tests.support.exports import make_export

MESSAGES_IN_DB = 3000


class Writer:
    def __init__(self, db: Path, stop: Path) -> None:
        self.stop = stop
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.db_holder", "writer", str(db), str(stop)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        assert self.stdout.readline().strip() == "writing"

    def finish(self) -> int:
        self.stop.touch()
        transactions = int(self.stdout.readline())
        assert self.process.wait(timeout=60) == 0
        return transactions


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Path, Path, Writer]]:
    """(the export the database was imported from, the database, its writer, already writing)."""
    export = make_export(tmp_path / "before", messages=MESSAGES_IN_DB)
    db = tmp_path / "chat.db"
    result = run_module("tools.import", export, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    writer = Writer(db, tmp_path / "stop")
    yield export, db, writer
    if writer.process.poll() is None:
        writer.process.kill()
        writer.process.wait()


def message_count(db: Path) -> int:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        row = conn.execute("SELECT count(*) FROM messages").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        conn.close()


def test_export_of_a_database_being_written_is_whole(live: tuple[Path, Path, Writer], tmp_path: Path) -> None:
    _, db, writer = live
    started_at = message_count(db)
    out = tmp_path / "during"
    result = run_module("tools.export", "--db", db, "--out", out, "--quiet")
    ended_at = message_count(db)
    assert writer.finish() > 0
    assert result.returncode == 0, result.stderr

    message_ids = {row[0] for row in read_rows(out, MESSAGES)}
    tag_ids = {row[0] for row in read_rows(out, TAGS)}
    links = list(read_rows(out, MESSAGE_TAGS))
    assert all(m in message_ids and t in tag_ids for m, t in links)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["collections"]["messages"]["rows"] == len(message_ids)
    assert manifest["collections"]["message_tags"]["rows"] == len(links)
    # The writer committed before the export read and after it: the export is one moment in between.
    assert started_at <= len(message_ids) <= ended_at and started_at < ended_at
    added = message_ids - {row[0] for row in read_rows(tmp_path / "before", MESSAGES)}
    assert added and sum(m in added for m, _ in links) == 2 * len(added)  # each added message with both tags

    copy = tmp_path / "copy.db"
    imported = run_module("tools.import", out, "--db", copy, "--quiet")
    assert imported.returncode == 0, imported.stderr
    verified = run_module("tools.verify", out, "--db", copy, "--samples", "100")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_verify_of_a_database_being_written_reads_one_snapshot(live: tuple[Path, Path, Writer], jobs: int) -> None:
    export, db, writer = live
    report = verify(export, db, samples=MESSAGES_IN_DB, jobs=jobs)
    assert writer.finish() > 0
    checks = {c.collection: c for c in report.collections}
    messages = checks["messages"]
    assert report.samples_checked == MESSAGES_IN_DB
    # The writer changes a message's text and tags in one transaction: in one snapshot, a sampled message
    # differs (text or tags) exactly when its row's digest differs.
    assert report.sample_mismatches == messages.differing
    assert messages.only_in_export == 0 and messages.only_in_db > 0
    assert all(c.broken_links == 0 for c in report.collections)
