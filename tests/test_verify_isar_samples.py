"""`tools.verify FILE.isar --samples N`: the same digests, samples and verdict with either Isar reader.

The reader process hands blobs over as `memoryview`s of its frames, the inline reader as `bytes`: the same
values. Sampling every message of a file with blobs of every size (empty ones too) proves that the field by
field comparison sees values, not the objects holding them; a blob that really differs is named by
collection, id and field, shown short (length, SHA-256, a prefix), never whole.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import apsw
import pytest

from pychat_db.exchange.codec import NaiveTimezone, row_digest
from pychat_db.exchange.contract import COLLECTIONS, CONFIGURATION, MESSAGES
from pychat_db.exchange.verify_values import describe_difference, field_differences, same_value, show_value
from pychat_db.isar.source import open_source
from tests.support.commands import run_module
from tests.support.isar_writer import write_app_file

API_KEY = "sk-test-NEVER-SHOWN-0123456789"
NEW_KEY = "sk-other-NEVER-SHOWN-9876543210"
# Around the limits that matter: the shown-whole limit (32), a page (4096), the reader process's chunk
# (128 KiB: a larger blob is a frame of its own), and far past it; None is no file, 0 an empty one.
SIZES = (None, 0, 0, 1, 2, 16, 32, 33, 255, 256, 4095, 4096, 4097, 65_536, 131_071, 131_072, 131_073, 300_000)
LONG_ID = 1 + SIZES.index(300_000)
EMPTY_ID = 1 + SIZES.index(0)
FLIPPED_AT = 100_000


def _blob(size: int | None, seed: int) -> bytes | None:
    if size is None:
        return None
    return bytes((i * 31 + seed * 7) % 256 for i in range(size))


def app_data() -> dict[str, list[dict[str, Any]]]:
    messages = [
        {
            "id": 1 + i,
            "threadId": 1 + i % 2,
            "text": f"message {i}",
            "timestamp": 1_700_000_000_000_000 + i,
            "type": ("text", "audio", "image")[i % 3],
            "description": "",
            "fileData": _blob(size, i),
            "mimeType": None if size is None else "application/octet-stream",
            "transcript": None,
            "fileName": None if size is None else f"f{i}.bin",
        }
        for i, size in enumerate(SIZES)
    ]
    return {
        "configuration": [{"id": 1, "apiKey": API_KEY, "baseUrl": None, "modelName": "gpt-x"}],
        "threads": [{"id": 1, "name": "a", "createdAt": 0}, {"id": 2, "name": "b", "createdAt": 1}],
        "tags": [{"id": 1, "name": "t", "description": "", "isEditable": True}],
        "messages": messages,
        "message_tags": [{"messageId": m["id"], "tagId": 1} for m in messages[::3]],
    }


@pytest.fixture(params=["LongList", "ByteList"])
def isar(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The app's file of `app_data()`, its blobs stored either way the app's builds store them."""
    return write_app_file(tmp_path / "default.isar", app_data(), file_data_type=request.param)


@pytest.fixture
def imported(isar: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(the .isar file, the database the real importer made of it)."""
    db = tmp_path / "chat.db"
    result = run_module("tools.import", isar, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    return isar, db


def _verify(isar: Path, db: Path, reader: str, *extra: str | Path) -> Any:
    return run_module(
        "tools.verify", isar, "--db", db, "--quiet", "--samples", str(len(SIZES) + 5), "--isar-reader", reader, *extra
    )


VARYING = frozenset({"seconds", "rows_per_second", "reader_process"})  # time, and the reader process's memory


def _comparable(report: Any) -> Any:
    """The report without what depends on time or on the reader process, at any depth."""
    if isinstance(report, dict):
        return {k: _comparable(v) for k, v in report.items() if k not in VARYING}
    if isinstance(report, list):
        return [_comparable(v) for v in report]
    return report


def _find(report: Any, key: str) -> Any:
    """The value of the first `key` in the report, at any depth (None if there is none)."""
    if isinstance(report, dict):
        if key in report:
            return report[key]
        for value in report.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def test_every_message_sampled_agrees_with_either_reader(imported: tuple[Path, Path], tmp_path: Path) -> None:
    isar, db = imported
    reports = {}
    for reader in ("process", "inline"):
        path = tmp_path / f"{reader}.json"
        result = _verify(isar, db, reader, "--report", path)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert f"samples: {len(SIZES)} messages compared field by field, 0 differ" in result.stdout
        assert result.stdout.splitlines()[-1].startswith("database matches the export: ")
        reports[reader] = json.loads(path.read_text())
    # the process run did read through the reader process (its peak memory is reported), the inline one did not
    assert (
        _find(reports["process"], "reader_process") is not None and _find(reports["inline"], "reader_process") is None
    )
    assert _find(reports["process"], "samples") == {"requested": len(SIZES) + 5, "checked": len(SIZES), "mismatches": 0}
    assert _find(reports["process"], "messages")["matching"] == len(SIZES)
    assert _comparable(reports["process"]) == _comparable(reports["inline"])


def test_the_readers_give_the_same_rows_and_digests(isar: Path) -> None:
    read: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for reader in ("process", "inline"):
        with open_source(isar, "default.isar", NaiveTimezone.REJECT, reader=reader, checked=True) as source:
            assert (source.reader is not None) == (reader == "process")
            read[reader] = {}
            for c in COLLECTIONS:
                items = [item for chunk in source.checked_chunks(c) for item in chunk.all_items()]
                assert all(item.error is None and item.row is not None for item in items)
                read[reader][c.name] = [(item.row, row_digest(item.row)) for item in items if item.row is not None]
    assert len(read["process"]["messages"]) == len(SIZES)
    # what this test is about: the reader process hands blobs over as memoryviews, the inline read as bytes
    assert {type(row[6]) for row, _ in read["process"]["messages"]} == {memoryview, type(None)}
    assert {type(row[6]) for row, _ in read["inline"]["messages"]} == {bytes, type(None)}
    for name, rows in read["process"].items():
        inline = read["inline"][name]
        assert [d for _, d in rows] == [d for _, d in inline]
        assert all(
            same_value(a, b)
            for (row, _), (other, _) in zip(rows, inline, strict=True)
            for a, b in zip(row, other, strict=True)
        )


def test_a_blob_that_really_differs_is_named_and_shown_short(imported: tuple[Path, Path]) -> None:
    isar, db = imported
    conn = apsw.Connection(str(db))
    stored = conn.execute("SELECT file_data FROM messages WHERE id = ?", (LONG_ID,)).fetchone()
    assert stored is not None
    blob: bytes = stored[0]
    changed = bytearray(blob)
    changed[FLIPPED_AT] ^= 0xFF
    with conn:
        conn.execute("UPDATE messages SET file_data = ? WHERE id = ?", (bytes(changed), LONG_ID))
        conn.execute("UPDATE messages SET file_data = x'01' WHERE id = ?", (EMPTY_ID,))
        conn.execute("UPDATE configuration SET api_key = ?", (NEW_KEY,))
    conn.close()

    def short(data: bytes) -> str:
        return f"{len(data):,} bytes (sha256 {hashlib.sha256(data).hexdigest()}, starts {data[:16]!r}…)"

    long_line = (
        f"messages id {LONG_ID}: fileData: export {short(blob)}, database {short(bytes(changed))}, "
        f"first difference at byte {FLIPPED_AT:,}"
    )
    empty_line = (
        f"messages id {EMPTY_ID}: fileData: export 0 bytes b'', database 1 bytes b'\\x01', first difference at byte 0"
    )
    key_line = "configuration id 1: apiKey: differs (value redacted: it is the API key)"
    lines = {}
    for reader in ("process", "inline"):
        result = _verify(isar, db, reader)
        assert result.returncode == 1
        out = result.stdout + result.stderr
        mismatches = [line for line in result.stderr.splitlines() if line.startswith("mismatch: ")]
        sampled = f" (sampled from {isar}: messages id="
        assert mismatches == [
            f"mismatch: {key_line}",
            f"mismatch: {empty_line}",
            f"mismatch: {long_line}",
            f"mismatch: {empty_line}{sampled}{EMPTY_ID})",
            f"mismatch: {long_line}{sampled}{LONG_ID})",
        ]
        assert f"samples: {len(SIZES)} messages compared field by field, 2 differ" in result.stdout
        assert "database DOES NOT match the export" in result.stdout
        assert "<memory at" not in out
        assert API_KEY not in out and NEW_KEY not in out
        assert repr(blob[16:48])[2:-1] not in out  # nothing of the blob past its prefix
        assert max(len(line) for line in out.splitlines()) < 600
        lines[reader] = result.stderr
    assert lines["process"] == lines["inline"]


# -- the comparison itself -------------------------------------------------------------------------


def test_a_blob_is_the_same_value_whatever_holds_it() -> None:
    assert same_value(memoryview(b"abc"), b"abc") and same_value(b"", memoryview(b""))
    assert same_value(bytearray(b"\x00"), memoryview(b"\x00"))
    assert not same_value(memoryview(b""), None) and not same_value(None, b"")
    assert not same_value(memoryview(b"ab"), b"abc")
    assert not same_value(1, "1") and not same_value(b"1", "1") and not same_value(1, 1.0)  # storage classes
    row = (1, 2, "t", "2024-01-01T00:00:00.000000Z", "audio", "", b"\x00\xff", None, None, None)
    viewed: Any = (*row[:6], memoryview(b"\x00\xff"), *row[7:])
    assert field_differences(MESSAGES, viewed, row) == []


def test_long_values_are_shown_by_length_digest_and_prefix() -> None:
    blob = bytes(range(256)) * 4000
    shown = show_value(memoryview(blob))
    assert shown == f"1,024,000 bytes (sha256 {hashlib.sha256(blob).hexdigest()}, starts {blob[:16]!r}…)"
    assert show_value(b"\x00\x01") == "2 bytes b'\\x00\\x01'"
    text = "x" * 50 + "y" * 1000
    assert (
        show_value(text, 50)
        == f"…'{'x' * 10}{'y' * 30}'… (1,050 chars, sha256 {hashlib.sha256(text.encode()).hexdigest()})"
    )
    detail = describe_difference(MESSAGES, "fileData", memoryview(blob), blob[:-1] + b"!")
    assert "<memory" not in detail and len(detail) < 400
    assert detail.endswith(f"first difference at byte {len(blob) - 1:,}")
    assert describe_difference(MESSAGES, "fileData", None, memoryview(b"")) == "export null, database 0 bytes b''"
    secret = describe_difference(CONFIGURATION, "apiKey", API_KEY, NEW_KEY)
    assert secret == "differs (value redacted: it is the API key)"
