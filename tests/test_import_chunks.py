"""The importer's chunked NDJSON path: same rows, same refusals, same lines as reading line by line.

`ExportDirectory.chunks` decodes a block of lines in one msgspec call when each
line is one object, and the loader inserts such a chunk with one `executemany`;
a row the database refuses inside a chunk is found by the count of rows inserted
before it. These tests make chunks small so that every case falls inside one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import apsw
import pytest

from pychat_db.exchange import reader as reader_module
from pychat_db.exchange.codec import FieldError, RowCodec
from pychat_db.exchange.contract import MESSAGES
from pychat_db.exchange.loader import ImportFailed, ImportOptions, RejectWriter, import_source
from pychat_db.exchange.reader import ExportDirectory
from tests.support.import_exports import dumps, sample_rows, write_export, write_lines


def message(n: int, **changes: Any) -> bytes:
    row = dict(sample_rows()["messages"][0], id=n)
    row.update(changes)
    return dumps(row).encode()


def line_by_line(path: Path) -> list[tuple[int, str]]:
    """(line, row or error) of every non-blank line, decoded one line at a time."""
    codec = RowCodec(MESSAGES)
    out = []
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, repr(codec.decode(line))))
        except FieldError as exc:
            out.append((number, f"{exc.field}: {exc.reason}"))
    return out


@pytest.mark.parametrize("chunk", [64, 700, 1 << 20])
@pytest.mark.parametrize(
    "odd",
    [
        b"",  # a blank line
        message(50) + b" " + message(51),  # two objects on one line
        message(50)[:-1] + b",\n" + b'"colour":"red"}',  # one object over two lines
        b'{"id":50}',  # a refused object
        message(50) + b"\r",  # CRLF on one line
        b"  " + message(50),  # leading blanks
    ],
)
def test_chunks_read_like_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, odd: bytes) -> None:
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", chunk)
    export = write_export(tmp_path / "x", sample_rows())
    lines = [message(n) for n in range(10, 40)] + [odd] + [message(n) for n in range(60, 90)]
    write_lines(export, "messages.ndjson", lines)
    items = list(ExportDirectory(export).items(MESSAGES))
    got = [(i.line, repr(i.row) if i.error is None else f"{i.error.field}: {i.error.reason}") for i in items]
    assert got == line_by_line(export / "messages.ndjson")
    assert [i.text for i in items] == [
        line for line in (export / "messages.ndjson").read_bytes().split(b"\n") if line.strip()
    ]


def test_rows_the_database_refuses_inside_a_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Duplicates in the middle of chunks: each named by its own line, the rows around them all imported."""
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", 2000)
    export = write_export(tmp_path / "x", sample_rows())
    lines = [dumps(m).encode() for m in sample_rows()["messages"]] + [message(n) for n in range(10, 70)]
    lines[28] = message(12)  # line 29: duplicate of line 6
    lines[29] = message(13)  # line 30: and another, right after it
    lines[50] = message(59)  # line 51 is fine, line 53 (id 59) is the duplicate
    write_lines(export, "messages.ndjson", lines)
    stream = io.BytesIO()
    report = import_source(
        ExportDirectory(export), tmp_path / "r.db", ImportOptions(reject=RejectWriter(stream), max_errors=None)
    )
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["location"], r["field"], r["reason"]) for r in records] == [
        ("messages.ndjson:29", "id", "duplicate id 12 in messages"),
        ("messages.ndjson:30", "id", "duplicate id 13 in messages"),
        ("messages.ndjson:53", "id", "duplicate id 59 in messages"),
    ]
    assert records[0]["text"] == message(12).decode()
    stats = report.collections["messages"]
    assert (stats.read, stats.imported, stats.rejected) == (63, 60, 3)
    conn = apsw.Connection(str(tmp_path / "r.db"))
    ids = [r[0] for r in conn.execute("SELECT id FROM messages ORDER BY id")]
    conn.close()
    assert ids == [1, 2, 3, *(n for n in range(10, 70) if n not in (35, 36, 57))]


def test_first_refusal_inside_a_chunk_stops_the_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", 1 << 20)
    export = write_export(tmp_path / "x", sample_rows())
    lines = [dumps(m).encode() for m in sample_rows()["messages"]] + [message(n) for n in range(10, 70)]
    lines[40] = message(11)
    lines[50] = message(12)
    write_lines(export, "messages.ndjson", lines)
    with pytest.raises(ImportFailed) as failed:
        import_source(ExportDirectory(export), tmp_path / "r.db", ImportOptions(max_errors=1))
    assert [str(p) for p in failed.value.report.problems] == ["messages.ndjson:41: id: duplicate id 11 in messages"]
    assert not (tmp_path / "r.db").exists()
