"""Hypothesis round trips: any value the contract allows is stored exactly as import normalises it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import apsw
from hypothesis import given, settings
from hypothesis import strategies as st

from pychat_db import convert
from pychat_db.exchange.codec import RowCodec, row_digest
from pychat_db.exchange.contract import MESSAGES
from pychat_db.exchange.loader import import_source
from pychat_db.exchange.reader import ExportDirectory

INT64 = st.integers(-(2**63), 2**63 - 1)
OFFSETS = st.integers(-1439, 1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
MOMENTS = st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=OFFSETS)
TEXT = st.text()  # any Unicode scalar value, NUL and astral planes included (no lone surrogates: not text)
BLOB = st.none() | st.binary(max_size=300)


@st.composite
def messages(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """(the JSON object in some contract form, the row import must store)."""
    moment = draw(MOMENTS)
    blob = draw(BLOB)
    blob_form = draw(st.sampled_from(["base64", "array"]))
    time_form = draw(st.sampled_from(["iso", "micros"]))
    nullable = [draw(st.none() | TEXT) for _ in range(3)]
    obj = {
        "id": draw(INT64),
        "threadId": 7,
        "text": draw(TEXT),
        "timestamp": moment.isoformat()
        if time_form == "iso"
        else convert.timestamp_text_to_micros(convert.timestamp_to_db(moment)),
        "type": draw(st.sampled_from(["text", "audio", "image"])),
        "description": draw(TEXT),
        "fileData": None if blob is None else base64.b64encode(blob).decode() if blob_form == "base64" else list(blob),
        "mimeType": nullable[0],
        "transcript": nullable[1],
        "fileName": nullable[2],
    }
    row = (obj["id"], 7, obj["text"], convert.timestamp_to_db(moment), obj["type"], obj["description"], blob, *nullable)
    return obj, row


@settings(max_examples=40, deadline=None)
@given(st.lists(messages(), max_size=6, unique_by=lambda m: m[0]["id"]), st.booleans())
def test_values_round_trip_through_import(cases: list[tuple[dict[str, Any], tuple[Any, ...]]], ascii: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        export.mkdir()
        (export / "threads.ndjson").write_text('{"id":7,"name":"t","createdAt":0}\n', encoding="utf-8")
        lines = "".join(json.dumps(obj, ensure_ascii=ascii) + "\n" for obj, _ in cases)
        (export / "messages.ndjson").write_text(lines, encoding="utf-8")
        db = Path(tmp) / "chat.db"
        import_source(ExportDirectory(export), db)
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
        stored = conn.execute(f"SELECT {', '.join(MESSAGES.columns)} FROM messages ORDER BY id").fetchall()
        conn.close()
    expected = sorted((row for _, row in cases), key=lambda r: r[0])
    assert stored == expected
    assert [row_digest(r) for r in stored] == [row_digest(r) for r in expected]


@settings(max_examples=200, deadline=None)
@given(messages())
def test_codec_decode_and_convert_agree(case: tuple[dict[str, Any], tuple[Any, ...]]) -> None:
    obj, row = case
    codec = RowCodec(MESSAGES)
    assert codec.decode(json.dumps(obj).encode()) == row
    assert codec.convert(obj) == row
