"""The generated decoders (`pychat_db.isar.decoders`): their source is registered, so tracebacks show it."""

from __future__ import annotations

import inspect
import linecache
import traceback

import pytest

from pychat_db.isar.decoders import FastRow, compile_fast_row
from pychat_db.isar.format import CollectionSchema
from pychat_db.isar.mapping import BY_ISAR
from tests.support.isar_writer import app_schemas, encode


def _message_decoder() -> tuple[FastRow, CollectionSchema]:
    schema = app_schemas()["Message"]
    parsed = CollectionSchema.from_json("Message", schema.to_json())
    fast = compile_fast_row(BY_ISAR["Message"], parsed, raw_bytes=False)
    assert fast is not None
    return fast, parsed


def test_a_traceback_through_a_generated_decoder_shows_the_generated_line() -> None:
    fast, _ = _message_decoder()
    with pytest.raises(TypeError) as info:
        fast("not bytes", 1)  # not an IndexError, ValueError or struct.error: raised, not read as None
    last = traceback.extract_tb(info.value.__traceback__)[-1]  # checks linecache's entries on the way
    assert last.name == "fast"
    assert last.filename.startswith("<isar fast row Message ")
    assert last.line == "v = UNPACK(data)"
    shown = "".join(traceback.format_exception(info.value))
    assert f'File "{last.filename}", line {last.lineno}, in fast\n    v = UNPACK(data)\n' in shown


def test_the_generated_source_is_what_runs() -> None:
    fast, _ = _message_decoder()
    source = inspect.getsource(fast)
    assert source.startswith("def fast(data, id_, l0=None):\n  try:\n      v = UNPACK(data)\n")
    assert source.endswith("  except (IndexError, ValueError, StructError): return None\n")
    filename = fast.__code__.co_filename
    assert "".join(linecache.getlines(filename)) == source


def test_the_same_source_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder is made for every read of a collection: reading again adds no linecache entry."""
    monkeypatch.setattr(linecache, "cache", dict(linecache.cache))
    first, schema = _message_decoder()
    before = set(linecache.cache)
    again = compile_fast_row(BY_ISAR["Message"], schema, raw_bytes=False)
    assert again is not None and again.__code__.co_filename == first.__code__.co_filename
    assert set(linecache.cache) == before
    other = compile_fast_row(BY_ISAR["Message"], schema, raw_bytes=True)  # another source: another name
    assert other is not None and other.__code__.co_filename != first.__code__.co_filename
    assert set(linecache.cache) == before | {other.__code__.co_filename}


def test_a_generated_decoder_decodes_an_ordinary_object() -> None:
    fast, _ = _message_decoder()
    values = {"text": "hi", "timestamp": 5, "type": "text", "description": "", "fileData": [1, 2]}
    data = encode(app_schemas()["Message"], values, {})
    row = fast(data, 7, 3)
    assert row is not None
    assert row["id"] == 7 and row["threadId"] == 3 and row["text"] == "hi" and row["fileData"] == "AQI="
