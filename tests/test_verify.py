"""python -m tools.verify: passes on a faithful database, names every kind of difference, never shows the API key."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from pathlib import Path

import pytest

from pychat_db.connection import connect
from pychat_db.exchange import verify as verify_module
from pychat_db.exchange import verify_merge
from pychat_db.exchange.contract import MESSAGE_TAGS
from pychat_db.exchange.reader import read_rows
from tests.support import exports
from tests.support.commands import run_module
from tests.support.exports import api_key, make_export

small_export = exports.small_export


@pytest.fixture
def imported(small_export: Path, tmp_path: Path) -> Path:
    """small_export imported by the real importer into tmp_path/chat.db."""
    db = tmp_path / "chat.db"
    done = run_module("tools.import", small_export, "--db", db, "--quiet")
    assert done.returncode == 0, done.stderr
    return db


def _verify(export: Path, db: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return run_module("tools.verify", export, "--db", db, "--quiet", *extra)


def _mismatches(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("mismatch: ")]


def test_faithful_database_passes(small_export: Path, imported: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = _verify(small_export, imported, "--samples", "40", "--report", report)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[-2] == "samples: 40 messages compared field by field, 0 differ"
    assert done.stdout.splitlines()[-1].startswith("database matches the export: ")
    data = json.loads(report.read_text())
    manifest = json.loads((small_export / "manifest.json").read_text())
    assert data["ok"] is True
    for name, entry in manifest["collections"].items():
        check = data["collections"][name]
        assert (check["export_rows"], check["db_rows"], check["matching"], check["ok"]) == (
            entry["rows"],
            entry["rows"],
            entry["rows"],
            True,
        )
    key = api_key(small_export)
    assert key not in done.stdout + done.stderr + report.read_text()


def test_unsorted_legacy_export_of_the_same_data_passes(imported: Path, tmp_path: Path) -> None:
    legacy = make_export(tmp_path / "legacy", variant="legacy")
    done = _verify(legacy, imported, "--samples", "10")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_one_flipped_byte_in_one_blob(small_export: Path, imported: Path, jobs: str) -> None:
    conn = connect(imported)
    message_id, blob = conn.execute(
        "SELECT id, file_data FROM messages WHERE length(file_data) > 100 ORDER BY id LIMIT 1"
    ).fetchone()
    flipped = bytearray(blob)
    flipped[37] ^= 0x01
    with conn:
        conn.execute("UPDATE messages SET file_data = ? WHERE id = ?", (bytes(flipped), message_id))
    conn.close()
    done = _verify(small_export, imported, "--jobs", jobs)
    assert done.returncode == 1
    shown = [
        f"{len(b):,} bytes (sha256 {hashlib.sha256(b).hexdigest()}, starts {b[:16]!r}…)" for b in (blob, bytes(flipped))
    ]
    line = f"messages id {message_id}: fileData: export {shown[0]}, database {shown[1]}, first difference at byte 37"
    assert _mismatches(done) == [f"mismatch: {line}"]
    assert done.stderr.splitlines()[-1] == f"Error: 1 mismatch(es); first: {line}"
    assert ["messages", "300", "300", "299", "MISMATCH"] in [line.split() for line in done.stdout.splitlines()]


def test_one_missing_tag_link(small_export: Path, imported: Path) -> None:
    links = list(read_rows(small_export, MESSAGE_TAGS))
    line = 42
    message_id, tag_id = links[line - 1]
    conn = connect(imported)
    with conn:
        conn.execute("DELETE FROM message_tags WHERE message_id = ? AND tag_id = ?", (message_id, tag_id))
    conn.close()
    done = _verify(small_export, imported, "--samples", "300", "--jobs", "1")  # every message is sampled
    assert done.returncode == 1
    tags = sorted(t for m, t in links if m == message_id)
    assert _mismatches(done) == [
        f"mismatch: message_tags messageId {message_id}, tagId {tag_id}: in the export (message_tags.ndjson:{line}), "
        "missing from the database",
        f"mismatch: messages id {message_id}: tags: export {tags}, database {[t for t in tags if t != tag_id]}",
    ]


def test_api_key_difference_is_reported_redacted(small_export: Path, imported: Path, tmp_path: Path) -> None:
    conn = connect(imported)
    with conn:
        conn.execute("UPDATE configuration SET api_key = 'sk-replaced-0123456789'")
    conn.close()
    report = tmp_path / "r.json"
    done = _verify(small_export, imported, "--report", report)
    assert done.returncode == 1
    configuration_id = json.loads((small_export / "configuration.json").read_text())["id"]
    assert _mismatches(done) == [
        f"mismatch: configuration id {configuration_id}: apiKey: differs (value redacted: it is the API key)"
    ]
    everything = done.stdout + done.stderr + report.read_text()
    assert api_key(small_export) not in everything and "sk-replaced" not in everything


def test_broken_link_and_missing_row(small_export: Path, imported: Path) -> None:
    conn = connect(imported)
    conn.execute("PRAGMA foreign_keys = OFF")
    thread_id, messages = conn.execute(
        "SELECT thread_id, count(*) FROM messages GROUP BY thread_id ORDER BY thread_id LIMIT 1"
    ).fetchone()
    with conn:
        conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
    conn.close()
    done = _verify(small_export, imported)
    assert done.returncode == 1
    found = _mismatches(done)
    assert found[0].startswith(
        f"mismatch: threads id {thread_id}: in the export (threads.ndjson:1), missing from the database"
    )
    tail = f"threadId: links to threads id {thread_id}, which is not in the database"
    broken = [m for m in found if m.startswith("mismatch: messages id ") and m.endswith(tail)]
    assert len(broken) == min(messages, 20)  # each listed, up to 20 per kind


def test_export_the_import_would_refuse_is_an_error(small_export: Path, imported: Path) -> None:
    path = small_export / "messages.ndjson"
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b'"type":"', b'"type":"x', 1)
    path.write_bytes(b"\n".join(lines))
    done = _verify(small_export, imported)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("Error: messages.ndjson:5: type: ")
    assert done.stderr.splitlines()[-1].endswith("(the import refuses this export)")
    assert "Traceback" not in done.stderr


def test_manifest_mismatch(small_export: Path, imported: Path) -> None:
    manifest = json.loads((small_export / "manifest.json").read_text())
    manifest["collections"]["tags"]["rows"] += 1
    (small_export / "manifest.json").write_text(json.dumps(manifest))
    done = _verify(small_export, imported)
    assert done.returncode == 1
    assert _mismatches(done) == ["mismatch: manifest.json: collections.tags.rows: manifest says 13, tags.ndjson has 12"]


def test_duplicate_id_in_the_export_is_an_error(small_export: Path, imported: Path) -> None:
    path = small_export / "messages.ndjson"
    lines = path.read_bytes().split(b"\n")
    lines.insert(10, lines[9])  # line 11 repeats line 10
    path.write_bytes(b"\n".join(lines))
    message_id = json.loads(lines[9])["id"]
    done = _verify(small_export, imported)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"Error: messages.ndjson:11: id: duplicate id {message_id} (the import refuses this export)"
    )


@pytest.mark.parametrize("window", [(3, 4), (20_000, 50_000)])
def test_any_row_order_pairs_up_with_small_memory(
    small_export: Path, imported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: tuple[int, int]
) -> None:
    """Shuffled and legacy-ordered exports verify; with a tiny read-ahead window rows spill to disk instead."""
    monkeypatch.setattr(verify_merge, "READ_AHEAD", window[0])
    monkeypatch.setattr(verify_merge, "MAX_AHEAD", window[1])
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for path in small_export.glob("*.ndjson"):
        lines = path.read_bytes().splitlines(keepends=True)
        random.Random(path.name).shuffle(lines)
        (shuffled / path.name).write_bytes(b"".join(lines))
    (shuffled / "configuration.json").write_bytes((small_export / "configuration.json").read_bytes())
    legacy = make_export(tmp_path / "legacy", variant="legacy")
    for export in (shuffled, legacy, small_export):
        report = verify_module.verify(export, imported, samples=5, jobs=1)
        assert report.ok, [str(m) for m in report.mismatches]
        assert [c.matching for c in report.collections] == [c.export_rows for c in report.collections]
    conn = connect(imported)
    with conn:
        message_id, tag_id = conn.execute("SELECT message_id, tag_id FROM message_tags LIMIT 1 OFFSET 99").fetchone()
        conn.execute("DELETE FROM message_tags WHERE message_id = ? AND tag_id = ?", (message_id, tag_id))
        conn.execute("UPDATE threads SET name = 'renamed' WHERE id = (SELECT max(id) FROM threads)")
        conn.execute("INSERT INTO tags (id, name) VALUES (424242, 'only in the database')")
    conn.close()
    for export in (shuffled, legacy):
        report = verify_module.verify(export, imported, jobs=1)
        found = sorted(str(m) for m in report.mismatches)
        assert len(found) == 3, found
        assert found[0].startswith(f"message_tags messageId {message_id}, tagId {tag_id}: in the export (")
        assert found[1] == "tags id 424242: in the database, not in the export"
        assert found[2].startswith(f"threads id {2**63 - 1}: name: export ")
