"""Round trips: contract rows → app-shaped Isar 3 file (test writer, real MDBX engine) → reader → same rows."""

from __future__ import annotations

import base64
import filecmp
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pychat_db.convert import MAX_MICROS, MIN_MICROS
from pychat_db.exchange.contract import COLLECTIONS, MESSAGE_TYPES
from pychat_db.isar import open_isar
from pychat_db.isar.app import OBJECT_BATCH
from tests.support.commands import ROOT, run_module
from tests.support.isar_writer import IsarWriter, Schema, app_schemas, rows_from_export, write_app_file

EXAMPLE = ROOT / "examples" / "export"
API_KEY = "sk-test-NEVER-LOGGED-0123456789"
MIN_ID = -(2**63 - 1)
MAX_ID = 2**63 - 1
BLOB = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # 3 MiB: overflow pages at any page size
# A LongList stores 8 bytes per element and Isar 3 addresses an object with u24 offsets (16 MiB):
# a List<int> blob past ~2 MiB cannot be stored by the app at all, so LongList cases use 1.5 MiB.
LONG_BLOB = BLOB[: 3 * 1024 * 1024 // 2]


def sample(blob: bytes = LONG_BLOB) -> dict[str, list[dict[str, Any]]]:
    """Edge-case data, contract-shaped (fileData as bytes; expected rows carry base64)."""
    return {
        "configuration": [{"id": 1, "apiKey": API_KEY, "baseUrl": None, "modelName": "gpt-x"}],
        "threads": [
            {"id": MIN_ID, "name": "oldest", "createdAt": -2_208_988_800_000_000},  # 1900-01-01
            {"id": 2, "name": "", "createdAt": -1},
            {"id": MAX_ID, "name": "🧵 thread\u0000nul", "createdAt": 1_700_000_000_123_456},
        ],
        "modes": [
            {"id": 1, "name": "Chat", "prompt": "", "isEditable": False},
            {"id": -5, "name": "Custom", "prompt": "p\u0000", "isEditable": True},
        ],
        "tags": [
            {"id": 1, "name": "a", "description": "", "isEditable": False},
            {"id": 2, "name": "b", "description": "ß", "isEditable": True},
            {"id": 3, "name": "c", "description": "c", "isEditable": True},
        ],
        "messages": [
            {
                "id": MIN_ID,
                "threadId": MIN_ID,
                "text": "hello\u0000world 👩‍👩‍👧 e\u0301",
                "timestamp": -1,
                "type": "audio",
                "description": "",
                "fileData": blob,
                "mimeType": "audio/ogg",
                "transcript": "",
                "fileName": "a.ogg",
            },
            {
                "id": 0,
                "threadId": None,  # a message without a thread link
                "text": "",
                "timestamp": 0,
                "type": "text",
                "description": "d",
                "fileData": None,
                "mimeType": None,
                "transcript": None,
                "fileName": None,
            },
            {
                "id": 7,
                "threadId": 2,
                "text": "img",
                "timestamp": MIN_MICROS,
                "type": "image",
                "description": "x",
                "fileData": b"",  # empty, not null
                "mimeType": "",
                "transcript": None,
                "fileName": "",
            },
            {
                "id": MAX_ID,
                "threadId": MAX_ID,
                "text": "last",
                "timestamp": MAX_MICROS,
                "type": "text",
                "description": "",
                "fileData": b"\x00\xff\x00",
                "mimeType": "application/octet-stream",
                "transcript": "t",
                "fileName": None,
            },
        ],
        "mode_outputs": [
            {"id": 1, "threadId": MIN_ID, "modeId": -5, "createdAt": -86_400_000_000, "content": "out"},
            {"id": 2, "threadId": None, "modeId": None, "createdAt": 5, "content": ""},
        ],
        "message_tags": [
            {"messageId": MIN_ID, "tagId": 1},
            {"messageId": MIN_ID, "tagId": 2},
            {"messageId": MIN_ID, "tagId": 3},
            {"messageId": 7, "tagId": 2},
            {"messageId": MAX_ID, "tagId": 1},
        ],
    }


def expected(data: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows the reader must give back: contract key order, fileData base64, sorted by key."""
    out: dict[str, list[dict[str, Any]]] = {}
    for c in COLLECTIONS:
        rows = []
        for row in data.get(c.name, []):
            r = {f.name: row.get(f.name) for f in c.fields}
            if "fileData" in r and isinstance(r["fileData"], bytes | bytearray):
                r["fileData"] = base64.b64encode(r["fileData"]).decode("ascii")
            rows.append(r)
        out[c.name] = sorted(rows, key=lambda r: tuple(r[k] for k in c.key))
    return out


def read_all(path: Path) -> dict[str, list[dict[str, Any]]]:
    with open_isar(path) as f:
        return {c.name: list(f.app.rows(c)) for c in COLLECTIONS}


@pytest.mark.parametrize("page_size", [4096, 16384])
@pytest.mark.parametrize(
    ("type_type", "file_data_type"),
    [("String", "LongList"), ("Byte", "ByteList"), ("Int", "LongList"), ("String", "ByteList")],
)
def test_round_trip_edge_cases(tmp_path: Path, page_size: int, type_type: str, file_data_type: str) -> None:
    data = sample(BLOB if file_data_type == "ByteList" else LONG_BLOB)
    path = write_app_file(
        tmp_path / "default.isar", data, type_type=type_type, file_data_type=file_data_type, page_size=page_size
    )
    with open_isar(path) as f:
        assert f.page_size == page_size
        rows = {c.name: list(f.app.rows(c)) for c in COLLECTIONS}
        assert {c.name: f.app.count(c) for c in COLLECTIONS} == {k: len(v) for k, v in rows.items()}
    assert rows == expected(data)
    # dict key order is the contract's field order
    for c in COLLECTIONS:
        for row in rows[c.name]:
            assert tuple(row) == c.field_names


def test_ordinal_types_map_to_names(tmp_path: Path) -> None:
    data = sample()
    for i, name in enumerate(MESSAGE_TYPES):
        data["messages"][i]["type"] = name
    for type_type in ("Byte", "Int"):
        path = write_app_file(tmp_path / f"{type_type}.isar", data, type_type=type_type)
        assert [r["type"] for r in read_all(path)["messages"]] == [m["type"] for m in expected(data)["messages"]]


def test_removed_property_is_skipped_and_later_offsets_hold(tmp_path: Path) -> None:
    """A property removed from the model keeps its slot (name null); fields after it still decode."""
    data = sample()
    path = tmp_path / "removed.isar"
    schemas = app_schemas()
    message = schemas["Message"]
    old = Schema("Message", [("color", "Long", None), *message.properties], message.links)
    with IsarWriter(path) as w:
        for s in schemas.values():
            w.collection(old if s.name == "Message" else s)
        for t in data["threads"]:
            w.put("Thread", t["id"], t)
        for m in data["messages"]:
            w.put("Message", m["id"], {**m, "color": 0x0BADC0DE})
            if m["threadId"] is not None:
                w.link("Message", "thread", m["id"], m["threadId"])
        w.collection(Schema("Message", [(None, "Long", None), *message.properties], message.links))
    with open_isar(path) as f:
        schema = f.isar.collections["Message"]
        assert schema.properties[0].name is None and schema.properties[1].offset == 10
        rows = list(f.app.rows(COLLECTIONS[4]))
    assert rows == expected(data)["messages"]


def _transcript_appended(path: Path, data: dict[str, list[dict[str, Any]]], old_ids: set[int]) -> Path:
    """`data` written with `transcript` appended to Message's schema, the messages `old_ids` before it was."""
    schemas = app_schemas()
    props = [p for p in schemas["Message"].properties if p[0] != "transcript"]
    schemas["Message"] = Schema("Message", [*props, ("transcript", "String", None)], schemas["Message"].links)
    return write_app_file(path, data, schemas=schemas, upto={("Message", i): len(props) for i in old_ids})


def test_objects_older_than_an_appended_property(tmp_path: Path) -> None:
    """Objects written before `transcript` was appended have a shorter static size: transcript is null."""
    data = sample()
    old = {m["id"] for m in data["messages"][:2]}
    path = _transcript_appended(tmp_path / "appended.isar", data, old)
    want = expected(data)["messages"]
    for row in want:
        if row["id"] in old:
            row["transcript"] = None
    assert read_all(path)["messages"] == want
    assert data["messages"][0]["transcript"] == ""  # the old object's value was not written: it reads as null


def test_batches_after_older_objects_are_typed_again(tmp_path: Path) -> None:
    """The objects read with older ones (64 at a time) go through the checked conversion; the lists of
    objects after them are typed again, however the rows are split (`max_rows`) into batches."""
    data = sample(b"\x01\x02")  # small values: the file is read 64 objects at a time
    first = min(data["messages"], key=lambda m: m["id"])
    data["messages"] += [{**first, "id": 1_000_000 + i} for i in range(100)]
    path = _transcript_appended(tmp_path / "appended.isar", data, {first["id"]})  # the first in id order
    with open_isar(path) as f:
        typed = [t for _, t in f.app.typed_batches(COLLECTIONS[4], max_rows=1)]
    assert typed == [False] * OBJECT_BATCH + [True] * (len(data["messages"]) - OBJECT_BATCH)


def test_needs_recovery_is_read_from_a_repaired_copy(tmp_path: Path) -> None:
    """A file copied while its writer had not synced (the app crashed / runs) is repaired on the copy only."""
    data = sample()
    live = tmp_path / "live.isar"
    crashed = tmp_path / "crashed.isar"
    w = IsarWriter(live, unsynced=True)
    for s in app_schemas().values():
        w.collection(s)
    for t in data["threads"]:
        w.put("Thread", t["id"], t)
    w.close(crash_copy=crashed)
    before = crashed.read_bytes()
    with open_isar(crashed) as f:
        assert f.recovered
        assert [r["id"] for r in f.app.rows(COLLECTIONS[1])] == sorted(t["id"] for t in data["threads"])
    assert crashed.read_bytes() == before
    result = run_module(
        "tools.export_isar", crashed, "--out", tmp_path / "out", "--exported-at", "2026-01-01T00:00:00Z"
    )
    assert result.returncode == 0, result.stderr
    assert "left mid-write" in result.stderr and "untouched" in result.stderr
    assert crashed.read_bytes() == before


def test_export_isar_is_byte_identical_to_the_canonical_export(tmp_path: Path) -> None:
    """examples/export → Isar file → export_isar --out: the same bytes, manifest included."""
    path = write_app_file(tmp_path / "default.isar", rows_from_export(EXAMPLE), type_type="Byte", page_size=16384)
    out = tmp_path / "out"
    result = run_module("tools.export_isar", path, "--out", out, "--exported-at", "2026-01-01T00:00:00Z", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    names = sorted(os.listdir(EXAMPLE))
    assert sorted(os.listdir(out)) == names
    assert all(filecmp.cmp(EXAMPLE / n, out / n, shallow=False) for n in names)
    assert "exported 5,307 rows" in result.stdout


def test_export_isar_refuses_existing_output(tmp_path: Path) -> None:
    path = write_app_file(tmp_path / "default.isar", sample())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_module("tools.export_isar", path, "--out", out)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and "not empty" in result.stderr
    assert os.listdir(out) == ["keep.txt"]


_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(st.integers(MIN_ID, MAX_ID), min_size=1, max_size=6, unique=True),
    text=_text,
    nullable=st.one_of(st.none(), _text),
    blob=st.one_of(st.none(), st.binary(max_size=300)),
    ts=st.integers(MIN_MICROS, MAX_MICROS),
    type_type=st.sampled_from(["String", "Byte", "Int"]),
    file_data_type=st.sampled_from(["LongList", "ByteList"]),
)
def test_round_trip_any_values(
    ids: list[int], text: str, nullable: str | None, blob: bytes | None, ts: int, type_type: str, file_data_type: str
) -> None:
    data: dict[str, list[dict[str, Any]]] = {
        "threads": [{"id": ids[0], "name": text, "createdAt": ts}],
        "messages": [
            {
                "id": i,
                "threadId": ids[0] if n % 2 == 0 else None,
                "text": text,
                "timestamp": ts,
                "type": MESSAGE_TYPES[n % 3],
                "description": text[::-1],
                "fileData": blob,
                "mimeType": nullable,
                "transcript": nullable,
                "fileName": nullable,
            }
            for n, i in enumerate(ids)
        ],
    }
    directory = tempfile.mkdtemp()
    try:
        path = write_app_file(Path(directory) / "h.isar", data, type_type=type_type, file_data_type=file_data_type)
        rows = read_all(path)
    finally:
        shutil.rmtree(directory)
    want = expected(data)
    assert rows["threads"] == want["threads"]
    assert rows["messages"] == want["messages"]


def test_remapping_mid_iteration_keeps_every_row(tmp_path: Path) -> None:
    """Releasing the memory map every few pairs (live cursors reposition, object batches resume after the
    last key read) changes nothing read."""
    data = sample(b"\x01" * 5000)
    for i in range(3 * OBJECT_BATCH + 5):  # messages read in several batches
        data["messages"].append({**data["messages"][2], "id": 100 + i, "threadId": 2})
        data["message_tags"] += [{"messageId": 100 + i, "tagId": t} for t in (1, 3)]
    path = write_app_file(tmp_path / "default.isar", data)
    want = expected(data)
    with open_isar(path, remap_bytes=1) as f:
        rows = {c.name: list(f.app.rows(c)) for c in COLLECTIONS}
        assert f.isar.store.remaps > 100  # type: ignore[attr-defined]
    assert rows == want


def test_lists_of_objects_shrink_after_large_values_and_grow_back(tmp_path: Path) -> None:
    """A list of objects is read in one call, so after a large value (a photo) the next lists hold about
    `remap_bytes` of such values, then grow back to OBJECT_BATCH as the values are small again."""
    data = sample(b"\x01" * 50)
    template = data["messages"][2]
    blobs = [b"s"] * 70 + [bytes([i]) * (1 << 20) for i in range(8)] + [b"s"] * 300
    data["messages"] += [{**template, "id": 1000 + i, "fileData": blob} for i, blob in enumerate(blobs)]
    path = write_app_file(tmp_path / "default.isar", data, file_data_type="ByteList")  # 1 MiB stored
    with open_isar(path) as f:
        sizes = [len(batch) for batch in f.isar.store.batches("Message", OBJECT_BATCH)]
        rows = list(f.app.rows(COLLECTIONS[4]))
    first_large = 1  # the list holding the 71st message onwards: every 1 MiB value
    assert sizes[: first_large + 1] == [OBJECT_BATCH, OBJECT_BATCH]
    assert sizes[first_large + 1] == 3  # about 4 MiB (remap_bytes) of objects of 1 MiB and a little
    assert OBJECT_BATCH in sizes[first_large + 2 :]  # and back
    assert sum(sizes) == len(data["messages"])
    assert rows == expected(data)["messages"]


def test_the_map_is_released_when_the_file_pages_it_holds_grow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading small objects scattered over a large file maps far more than the bytes read (fault-around):
    the store also releases the map when this process's file-backed pages grow past twice the window."""
    data = sample(b"\x01" * 50)
    path = write_app_file(tmp_path / "default.isar", data)
    with open_isar(path) as f:
        store: Any = f.isar.store
        assert store._file_backed_bytes() > 0  # read from /proc/self/statm
        rows = {c.name: list(f.app.rows(c)) for c in COLLECTIONS}
        assert store.remaps == 0  # a few KiB read, a few pages mapped
        monkeypatch.setattr(store, "_file_backed_bytes", lambda: store._mapped_base + 2 * store.remap_bytes + 1)
        assert {c.name: list(f.app.rows(c)) for c in COLLECTIONS} == rows == expected(data)
        assert store.remaps > 0


@pytest.mark.parametrize(
    ("type_type", "file_data_type"), [("String", "LongList"), ("Byte", "ByteList"), ("Int", "ByteList")]
)
def test_fast_path_and_reference_decoder_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, type_type: str, file_data_type: str
) -> None:
    """The generated decoder handles ordinary objects itself and gives exactly the reference decoder's rows."""
    from pychat_db.isar import app
    from pychat_db.isar.decoders import compile_fast_row
    from pychat_db.isar.keys import key_from_id
    from pychat_db.isar.mapping import MAPPING

    data = sample(b"\x00\x01\xfe\xff" * 100)
    path = write_app_file(tmp_path / "f.isar", data, type_type=type_type, file_data_type=file_data_type)
    with open_isar(path) as f:
        for cmap in MAPPING:
            fast = compile_fast_row(cmap, f.isar.collections[cmap.isar], raw_bytes=False)
            assert fast is not None
            for id_, raw in f.isar.raw_objects(cmap.isar):
                assert fast(raw, id_) is not None, (cmap.isar, id_)  # ordinary objects never fall back
        fast_rows = {c.name: list(f.app.rows(c)) for c in COLLECTIONS}
        raw_rows = list(f.app.rows(COLLECTIONS[4], raw_bytes=True))
        typed = [t for _, t in f.app.typed_batches(COLLECTIONS[4], max_rows=1)]
    assert typed == [True] * len(fast_rows["messages"])  # every message by the generated decoder
    monkeypatch.setattr(app, "compile_fast_row", lambda *a, **k: None)
    with open_isar(path) as f:  # the reference decoder alone: no batch is typed
        typed = [t for _, t in f.app.typed_batches(COLLECTIONS[4], max_rows=1)]
    assert typed == [False] * len(fast_rows["messages"])
    assert read_all(path) == fast_rows == expected(data)
    assert [r["fileData"] for r in raw_rows] == [
        None if r["fileData"] is None else base64.b64decode(r["fileData"]) for r in fast_rows["messages"]
    ]
    # Isar's key of an id: the id's two's-complement with the sign bit flipped, little-endian
    assert key_from_id(0) == bytes(7) + b"\x80"
    assert key_from_id(-1) == b"\xff" * 7 + b"\x7f"
    assert key_from_id(2**63 - 1) == b"\xff" * 8 and key_from_id(-(2**63)) == bytes(8)
