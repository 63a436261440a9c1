"""Every refusal of the Isar reader, through the real command: exit 1, one `Error:` line naming
collection, id and field, no traceback, no output directory, the API key nowhere."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.commands import run_module
from tests.support.isar_writer import IsarWriter, Schema, app_schemas, id_key, write_app_file
from tests.test_isar_roundtrip import API_KEY, sample

Data = dict[str, list[dict[str, Any]]]


def _msg(data: Data, i: int) -> dict[str, Any]:
    return data["messages"][i]


def _set(collection: str, i: int, **values: Any) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        data[collection][i].update(values)

    return change


# (case id, change to the sample data, write_app_file options, expected pieces of the error line)
# A null in a required field is read as the app reads it unless `--nulls refuse` (tests/test_isar_history.py).
NULL_CASES: list[tuple[str, Callable[[Data], None], list[str]]] = [
    ("required-null", _set("messages", 2, timestamp=None), ["Message id 7", "timestamp", "required field is null"]),
    ("required-null-text", _set("threads", 1, name=None), ["Thread id 2", "name", "required field is null"]),
    ("required-null-bool", _set("modes", 0, isEditable=None), ["Mode id 1", "isEditable", "required"]),
]
DATA_CASES: list[tuple[str, Callable[[Data], None], dict[str, Any], list[str]]] = [
    (
        "enum-name",
        _set("messages", 2, type="video"),
        {},
        ["messages id=7", "type", "'video' is not one of", "its value would be lost", "--reject-file"],
    ),
    ("enum-ordinal", _set("messages", 2, type=3), {"type_type": "Byte"}, ["Message id 7", "type", "ordinal 3"]),
    ("enum-ordinal-int", _set("messages", 2, type=-1), {"type_type": "Int"}, ["Message id 7", "type", "ordinal -1"]),
    (
        "file-data-range",
        _set("messages", 2, fileData=[1, 300, 2]),
        {},
        ["Message id 7", "fileData", "element 1 is 300, outside 0-255"],
    ),
    ("link-missing-thread", _set("messages", 2, threadId=99), {}, ["Message id 7", "thread", "Thread id 99"]),
    ("link-missing-mode", _set("mode_outputs", 0, modeId=42), {}, ["ModeOutput id 1", "mode", "Mode id 42"]),
    (
        "link-missing-tag",
        lambda d: d["message_tags"].append({"messageId": 7, "tagId": 77}),
        {},
        ["Message id 7", "tags", "Tag id 77"],
    ),
    (
        "link-from-missing-message",
        lambda d: d["message_tags"].append({"messageId": 8, "tagId": 1}),
        {},
        ["Message id 8", "tags", "does not exist"],
    ),
    (
        "second-configuration",
        lambda d: d["configuration"].append({"id": 9, "apiKey": API_KEY, "baseUrl": None, "modelName": "m"}),
        {},
        ["Configuration id 9", "id", "a second Configuration"],
    ),
    (
        "timestamp-range",
        _set("messages", 2, timestamp=2**62),
        {},
        ["Message id 7", "timestamp", "outside years 0001-9999"],
    ),
]


def refused(path: Path, tmp_path: Path, *options: str) -> str:
    """Run export_isar --out on `path`; check the refusal contract; return the error line."""
    out = tmp_path / "out"
    result = run_module("tools.export_isar", path, "--out", out, "--quiet", *options)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {path}: ")  # the path as given
    assert "Traceback" not in result.stderr
    assert API_KEY not in result.stderr + result.stdout
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    return lines[0]


@pytest.mark.parametrize(("change", "options", "pieces"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_data_refusals(
    tmp_path: Path, change: Callable[[Data], None], options: dict[str, Any], pieces: list[str]
) -> None:
    data = sample(b"blob")
    change(data)
    path = write_app_file(tmp_path / "default.isar", data, **options)
    line = refused(path, tmp_path)
    for piece in pieces:
        assert piece in line, line


@pytest.mark.parametrize(("change", "pieces"), [c[1:] for c in NULL_CASES], ids=[c[0] for c in NULL_CASES])
def test_null_refusals(tmp_path: Path, change: Callable[[Data], None], pieces: list[str]) -> None:
    data = sample(b"blob")
    change(data)
    path = write_app_file(tmp_path / "default.isar", data)
    line = refused(path, tmp_path, "--nulls", "refuse")
    for piece in pieces:
        assert piece in line, line


def test_unknown_property_with_a_value(tmp_path: Path) -> None:
    schemas = app_schemas()
    message = schemas["Message"]
    schemas["Message"] = Schema("Message", [*message.properties, ("pinned", "Bool", None)], message.links)
    data = sample(b"x")
    data["messages"][2]["pinned"] = True
    line = refused(write_app_file(tmp_path / "default.isar", data, schemas=schemas), tmp_path)
    assert "Message id 7: pinned: property not known to the app mapping" in line


def test_unknown_property_always_null_is_accepted(tmp_path: Path) -> None:
    schemas = app_schemas()
    message = schemas["Message"]
    schemas["Message"] = Schema("Message", [*message.properties, ("pinned", "Bool", None)], message.links)
    path = write_app_file(tmp_path / "default.isar", sample(b"x"), schemas=schemas)
    result = run_module("tools.export_isar", path, "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 0, result.stderr


def test_unknown_collection_with_objects(tmp_path: Path) -> None:
    schemas = app_schemas()
    schemas["Draft"] = Schema("Draft", [("body", "String", None)])
    path = write_app_file(
        tmp_path / "default.isar", sample(b"x"), schemas=schemas, extra=[("Draft", 12, {"body": "b"})]
    )
    line = refused(path, tmp_path)
    assert "Draft id 12: collection Draft is not known to the app mapping" in line


def test_unknown_link_with_entries(tmp_path: Path) -> None:
    schemas = app_schemas()
    message = schemas["Message"]
    schemas["Message"] = Schema("Message", message.properties, [*message.links, ("replyTo", "Message")])
    path = tmp_path / "default.isar"
    write_app_file(path, sample(b"x"), schemas=schemas)
    with IsarWriter(path) as w:
        w.link("Message", "replyTo", 7, 0)
    line = refused(path, tmp_path)
    assert "Message id 7: replyTo: link replyTo is not known to the app mapping" in line


def test_wrong_property_type(tmp_path: Path) -> None:
    schemas = app_schemas()
    thread = schemas["Thread"]
    schemas["Thread"] = Schema("Thread", [("createdAt", "String", None), ("name", "String", None)])
    data = sample(b"x")
    for t in data["threads"]:
        t["createdAt"] = "yesterday"
    assert thread.properties[0][0] == "createdAt"
    line = refused(write_app_file(tmp_path / "default.isar", data, schemas=schemas), tmp_path)
    assert "Thread: createdAt: stored as String; the mapping reads Long" in line


def _with_object(tmp_path: Path, id_: int, raw: bytes) -> Path:
    path = write_app_file(tmp_path / "default.isar", sample(b"x"))
    with IsarWriter(path) as w:
        w.schemas = app_schemas()
        w.put_raw("Message", id_, raw)
    return path


def test_corrupt_object_static_size(tmp_path: Path) -> None:
    line = refused(_with_object(tmp_path, 7, b"\xff\x7f\x00"), tmp_path)
    assert "Message id 7: corrupt object: static size 32767 outside its 3 bytes" in line


def test_corrupt_object_truncated_string(tmp_path: Path) -> None:
    good = bytearray(_message_bytes())
    raw = bytes(good[:-3])  # the last string's bytes cut short
    line = refused(_with_object(tmp_path, 7, raw), tmp_path)
    assert "Message id 7: type: corrupt object:" in line and "run past" in line


def test_corrupt_object_invalid_utf8(tmp_path: Path) -> None:
    data = sample(b"x")
    data["messages"][2]["text"] = b"\xff\xfe"
    line = refused(write_app_file(tmp_path / "default.isar", data), tmp_path)
    assert "Message id 7: text: corrupt object: invalid UTF-8" in line


def _message_bytes() -> bytes:
    from tests.support.isar_writer import encode

    m = {k: v for k, v in sample(b"x")["messages"][2].items()}
    return encode(app_schemas()["Message"], m, {})


def test_truncated_file(tmp_path: Path) -> None:
    path = write_app_file(tmp_path / "default.isar", sample(b"x"))
    data = path.read_bytes()
    path.write_bytes(data[: 3 * 4096])
    line = refused(path, tmp_path)
    assert "not a readable MDBX (Isar 3) file" in line


def test_not_an_mdbx_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.isar"
    path.write_bytes(b"SQLite format 3\x00" + bytes(8192))
    line = refused(path, tmp_path)
    assert "not a readable MDBX (Isar 3) file" in line


def test_mdbx_without_info_map(tmp_path: Path) -> None:
    path = tmp_path / "plain.isar"
    with IsarWriter(path) as w:
        w.txn.put(b"k", b"v")
    line = refused(path, tmp_path)
    assert "not an Isar 3 file: the MDBX file has no _info map" in line


def test_isar4_file(tmp_path: Path) -> None:
    path = tmp_path / "v4.isar"
    with IsarWriter(path) as w:
        w.collection(Schema("Message", [("text", "String", None)], version=3))
    line = refused(path, tmp_path)
    assert "Isar 4 files are not supported" in line


def test_isar2_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "v1.isar"
    with IsarWriter(path) as w:
        w.collection(Schema("Message", [("text", "String", None)], version=1))
    line = refused(path, tmp_path)
    assert "Message: schema version 1 is not supported" in line


def test_corrupt_schema_json(tmp_path: Path) -> None:
    path = tmp_path / "badinfo.isar"
    with IsarWriter(path) as w:
        w.info_raw(b"Message", b"{not json")
    assert "the schema of 'Message' in _info is not valid JSON" in refused(path, tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    line = refused(tmp_path / "absent.isar", tmp_path)
    assert "no such file" in line


def test_inspect_refusal_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.isar"
    path.write_bytes(os.urandom(10_000))
    result = run_module("tools.export_isar", path, "--inspect")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert result.stdout == ""


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_module("tools.export_isar", tmp_path / "a.isar").returncode == 2
    result = run_module("tools.export_isar", tmp_path / "a.isar", "--inspect", "--out", tmp_path / "o")
    assert result.returncode == 2


def test_help_shows_usage() -> None:
    result = run_module("tools.export_isar", "--help")
    assert result.returncode == 0 and "python -m tools.export_isar" in result.stdout


def test_id_key_is_isar_encoding() -> None:
    """Keys as isar_core `object/id.rs` tests them."""
    assert id_key(-(2**63)) == bytes(8)
    assert id_key(-(2**63) + 1) == bytes([1, 0, 0, 0, 0, 0, 0, 0])
    assert id_key(2**63 - 1) == bytes([255] * 8)
    assert struct.unpack("<Q", id_key(0))[0] == 1 << 63
    assert json.dumps(None) == "null"


def test_map_without_schema_holding_data(tmp_path: Path) -> None:
    path = write_app_file(tmp_path / "default.isar", sample(b"x"))
    with IsarWriter(path) as w:
        w.put_raw("Orphaned", 1, b"\x02\x00")
    line = refused(path, tmp_path)
    assert "Orphaned: map Orphaned holds 1 entries but has no schema in _info" in line


def test_inspect_accepts_an_app_file(tmp_path: Path) -> None:
    path = write_app_file(tmp_path / "default.isar", sample(b"x"), type_type="Byte")
    result = run_module("tools.export_isar", path, "--inspect")
    assert result.returncode == 0, result.stderr
    assert "app mapping: schema accepted" in result.stdout
    assert "link     tags" in result.stdout and "-> Tag" in result.stdout
    assert "property type" in result.stdout and "Byte" in result.stdout
    assert API_KEY not in result.stdout


def test_corrupt_object_key_after_good_objects(tmp_path: Path) -> None:
    """A key that is not 8 bytes: the objects before it come out, then the refusal names the map.

    (libmdbx itself calls a 4-byte key among 8-byte INTEGERKEY keys invalid, and where it lands is its
    business; the map stays within one batch of objects, which is read in key order from the first.)"""
    from pychat_db.exchange.contract import MESSAGES
    from pychat_db.isar import IsarFormatError, open_isar
    from pychat_db.isar.app import OBJECT_BATCH
    from tests.support.isar_writer import COLLECTION_FLAGS

    data = sample(b"x")
    assert len(data["messages"]) < OBJECT_BATCH
    path = write_app_file(tmp_path / "default.isar", data)
    with open_isar(path) as f:
        want = [list(row) for batch in f.app.value_batches(MESSAGES) for row in batch]
    with IsarWriter(path) as w:
        w.schemas = app_schemas()
        w.txn.put(b"\x01\x02\x03\x04", b"\x02\x00", db=w._db("Message", COLLECTION_FLAGS))
    got: list[list[Any]] = []
    with open_isar(path) as f, pytest.raises(IsarFormatError, match=r"^Message: corrupt key of 4 bytes in map Message"):
        for batch in f.app.value_batches(MESSAGES):
            got.extend(list(row) for row in batch)
    assert got and got == want[: len(got)]
