"""The app's real schema history (itsparth/spec_genie, docs/isar-format.md): a file the first build wrote and
the last Isar build upgraded. Nulls are read as the app reads them (counted), `Nulls.REFUSE` refuses them,
removed properties that hold values are counted and kept, never dropped silently; both reader modes agree.

The files are made by the test writer from the facts of the history (`upgraded_schemas`): old objects are
shorter than the static size, their words sit in the removed `content`, they have no thread link."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pychat_db.exchange.contract import BY_NAME, COLLECTIONS, MESSAGES
from pychat_db.exchange.reader import ExportError
from pychat_db.isar import history
from pychat_db.isar.app import open_isar
from pychat_db.isar.history import Nulls
from pychat_db.isar.source import UNKNOWN_TYPE, open_source
from tests.support.commands import run_module
from tests.support.isar_writer import (
    FIRST_BUILD,
    IsarWriter,
    Schema,
    app_schemas,
    upgraded_schemas,
    write_app_file,
    write_upgraded_file,
)

T = 1_757_950_000_000_000  # 2025-09-15, µs
API_KEY = "sk-history-SECRET-0123456789"
MODES = ("process", "inline")


def new_data() -> dict[str, list[dict[str, Any]]]:
    """What the last build wrote after the upgrade (contract-shaped)."""
    return {
        "configuration": [],
        "threads": [{"id": 10, "name": "new thread", "createdAt": T + 1000}],
        "modes": [{"id": 1, "name": "Chat", "prompt": "p", "isEditable": True}],
        "tags": [{"id": 1, "name": "t", "description": "", "isEditable": True}],
        "messages": [
            {
                "id": 100,
                "threadId": 10,
                "text": "new text",
                "timestamp": T + 2000,
                "type": "audio",
                "description": "",
                "fileData": b"\x00\x01\xff",
                "mimeType": "audio/ogg",
                "transcript": "hi",
                "fileName": "a.ogg",
            }
        ],
        "mode_outputs": [{"id": 1, "threadId": 10, "modeId": 1, "createdAt": T + 3000, "content": "out"}],
        "message_tags": [{"messageId": 100, "tagId": 1}],
    }


def old_objects() -> dict[str, list[dict[str, Any]]]:
    """What the first build wrote before the upgrade (its property names)."""
    return {
        "Message": [
            {"id": 1, "content": "old words", "filePath": None, "isAttachment": False, "timestamp": T, "type": "text"},
            {"id": 2, "content": "a picture", "filePath": "/p.png", "isAttachment": True, "timestamp": T + 1,
             "type": "image"},
            {"id": 3, "content": "", "filePath": None, "isAttachment": False, "timestamp": T + 2, "type": "audio"},
        ],
        "Configuration": [
            {"id": 1, "apiKey": API_KEY, "baseUrl": None, "effectiveBaseUrl": "https://api.openai.com/v1",
             "hasValidApiKey": True, "isCustomEndpoint": False, "isValid": True, "modelName": "gpt-4o",
             "transcribeAudioFirst": False},
        ],
        "Mode": [{"id": 2, "isDefault": True, "isEditable": False, "name": "Default", "prompt": "be brief"}],
        "Thread": [{"id": 3, "createdAt": T - 5, "hasCustomName": True, "messageCount": 3, "name": "first"}],
    }  # fmt: skip


def some_old(path: Path) -> Path:
    """Some objects predate several properties (three old messages beside a new one)."""
    return write_upgraded_file(path, new_data(), old_objects())


def all_old(path: Path) -> Path:
    """Every object predates the properties added since: the app was upgraded and never wrote again."""
    empty: dict[str, list[dict[str, Any]]] = {c.name: [] for c in COLLECTIONS}
    return write_upgraded_file(path, empty, old_objects())


def _message(id_: int, threads: bool = False, **values: Any) -> dict[str, Any]:
    row = {
        "id": id_,
        "threadId": None,
        "text": "",
        "timestamp": T,
        "type": "text",
        "description": "",
        "fileData": None,
        "mimeType": None,
        "transcript": None,
        "fileName": None,
    }
    row.update(values)
    return row


def test_the_upgraded_schema_is_the_history_isar_stores() -> None:
    """Old properties where they were (removed ones nameless), new ones appended in name order."""
    message = upgraded_schemas()["Message"]
    assert message.properties[:5] == [
        (None, "String", None),
        (None, "String", None),
        (None, "Bool", None),
        ("timestamp", "Long", None),
        ("type", "String", None),
    ]
    assert [p[0] for p in message.properties[5:]] == [
        "description",
        "fileData",
        "fileName",
        "mimeType",
        "text",
        "transcript",
    ]
    assert message.former == {0: "content", 1: "filePath", 2: "isAttachment"}
    assert upgraded_schemas()["Thread"].former == {1: "hasCustomName", 2: "messageCount"}
    assert upgraded_schemas()["Mode"].former == {0: "isDefault"}
    assert len(upgraded_schemas()["Configuration"].properties) == len(FIRST_BUILD["Configuration"])


def test_old_objects_read_as_the_app_reads_them(tmp_path: Path) -> None:
    path = some_old(tmp_path / "default.isar")
    with open_isar(path) as f:
        rows = {c.name: list(f.app.rows(c)) for c in COLLECTIONS}
        notes = dict(f.app.notes)
    assert rows["messages"] == [
        _message(1, timestamp=T),
        _message(2, timestamp=T + 1, type="image"),
        _message(3, timestamp=T + 2, type="audio"),
        _message(
            100,
            threadId=10,
            text="new text",
            timestamp=T + 2000,
            type="audio",
            fileData=base64.b64encode(b"\x00\x01\xff").decode(),
            mimeType="audio/ogg",
            transcript="hi",
            fileName="a.ogg",
        ),
    ]
    assert rows["threads"] == [
        {"id": 3, "name": "first", "createdAt": T - 5},
        {"id": 10, "name": "new thread", "createdAt": T + 1000},
    ]
    assert rows["configuration"] == [{"id": 1, "apiKey": API_KEY, "baseUrl": None, "modelName": "gpt-4o"}]
    assert rows["modes"][1] == {"id": 2, "name": "Default", "prompt": "be brief", "isEditable": False}
    assert notes["messages"].defaults == {"text": 3, "description": 3}
    assert list(history.default_lines(notes)) == [
        "messages.text: 3 nulls read as '' (as the app reads them)",
        "messages.description: 3 nulls read as '' (as the app reads them)",
    ]
    # removed values: by position and type, counted per object holding one
    assert notes["messages"].removed == {0: ("String", 3), 1: ("String", 1), 2: ("Bool", 3)}
    assert notes["configuration"].removed == {2: ("String", 1), 3: ("Bool", 1), 4: ("Bool", 1), 5: ("Bool", 1),
                                              7: ("Bool", 1)}  # fmt: skip
    assert notes["modes"].removed == {0: ("Bool", 1)}
    # the new thread's removed Long slot is zero-filled by the app's writer: 0 is a value
    assert notes["threads"].removed == {1: ("Bool", 1), 2: ("Long", 2)}
    lines = list(history.removed_lines(notes))
    assert (
        "Message: removed properties hold values (position 0 String: 3 objects, position 1 String: 1 object, "
        "position 2 Bool: 3 objects); not carried over (keep them with --keep-removed FILE.ndjson)"
    ) in lines
    assert API_KEY not in "\n".join(lines)


def test_every_object_predating_reads_the_same_way(tmp_path: Path) -> None:
    path = all_old(tmp_path / "default.isar")
    with open_isar(path) as f:
        rows = list(f.app.rows(MESSAGES))
        assert [r["text"] for r in rows] == ["", "", ""]
        assert [r["threadId"] for r in rows] == [None, None, None]  # orphans: `--orphans adopt`
        assert f.app.notes["messages"].defaults == {"text": 3, "description": 3}
        batches = list(f.app.typed_batches(MESSAGES))
        assert [typed for _, typed in batches] == [False]  # the checked path made them


def test_a_new_object_under_the_upgraded_schema_takes_the_fast_path(tmp_path: Path) -> None:
    """Removed slots left null by the app's writer: the generated decoder reads the object (typed rows)."""
    data = new_data()
    data["threads"] = []
    data["mode_outputs"] = []
    data["messages"][0]["threadId"] = None
    path = write_upgraded_file(tmp_path / "default.isar", data, {})
    with open_isar(path) as f:
        batches = list(f.app.typed_batches(MESSAGES))
        assert [typed for _, typed in batches] == [True]
        assert not f.app.notes["messages"]


STORED_NULLS: list[tuple[str, str, dict[str, Any], str, Any]] = [
    ("messages", "text", {"text": None}, "''", ""),
    ("messages", "description", {"description": None}, "''", ""),
    ("messages", "timestamp", {"timestamp": None}, "1970-01-01T00:00:00Z", 0),
    ("messages", "type", {"type": None}, "'text'", "text"),
    ("threads", "name", {"name": None}, "''", ""),
    ("threads", "createdAt", {"createdAt": None}, "1970-01-01T00:00:00Z", 0),
    ("modes", "name", {"name": None}, "''", ""),
    ("modes", "prompt", {"prompt": None}, "''", ""),
    ("modes", "isEditable", {"isEditable": None}, "true", True),
    ("tags", "name", {"name": None}, "''", ""),
    ("tags", "description", {"description": None}, "''", ""),
    ("tags", "isEditable", {"isEditable": None}, "true", True),
    ("mode_outputs", "content", {"content": None}, "''", ""),
    ("mode_outputs", "createdAt", {"createdAt": None}, "1970-01-01T00:00:00Z", 0),
    ("configuration", "apiKey", {"apiKey": None}, "''", ""),
    ("configuration", "modelName", {"modelName": None}, "''", ""),
]


def _with_stored_null(tmp_path: Path, collection: str, values: dict[str, Any]) -> Path:
    data = new_data()
    data["configuration"] = [{"id": 1, "apiKey": API_KEY, "baseUrl": None, "modelName": "m"}]
    data[collection][0].update(values)
    return write_app_file(tmp_path / "default.isar", data)


@pytest.mark.parametrize(
    ("collection", "name", "values", "shown", "value"), STORED_NULLS, ids=[f"{c}.{n}" for c, n, *_ in STORED_NULLS]
)
def test_a_stored_null_reads_as_the_app_reads_it(
    tmp_path: Path, collection: str, name: str, values: dict[str, Any], shown: str, value: Any
) -> None:
    """The table of the issue, checked against the app's deserializers (docs/isar-format.md)."""
    path = _with_stored_null(tmp_path, collection, values)
    with open_isar(path) as f:
        row = next(iter(f.app.rows(BY_NAME[collection])))
        assert row[name] == value
        assert f.app.notes[collection].defaults == {name: 1}
        assert list(history.default_lines(f.app.notes)) == [
            f"{collection}.{name}: 1 null read as {shown} (as the app reads them)"
        ]
    # --nulls refuse: today's strict refusal, in both reader modes
    for mode in MODES:
        with (
            pytest.raises(ExportError) as raised,
            open_source(path, "default.isar", reader=mode, nulls=Nulls.REFUSE) as source,
        ):
            for c in COLLECTIONS:
                for _ in source.chunks(c):
                    pass
        assert f"{name}: required field is null" in str(raised.value)


def _read_all(path: Path, mode: str, *, checked: bool, nulls: Nulls = Nulls.APP) -> tuple[Any, Any, Any]:
    """(rows and refusals per collection, notes, report lines) of a whole read in `mode`."""
    out: dict[str, list[Any]] = {}
    with open_source(path, "default.isar", reader=mode, checked=checked, nulls=nulls) as source:
        for c in COLLECTIONS:
            chunks = source.checked_chunks(c) if checked else source.chunks(c)
            got: list[Any] = []
            for chunk in chunks:
                if chunk.rows is not None:
                    got.extend(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in chunk.rows)
                else:
                    got.extend((i.where, i.error.field, i.error.reason) for i in chunk.items or () if i.error)
            out[c.name] = got
        notes = {k: v.to_wire() for k, v in source.notes.items()}
        lines = list(history.default_lines(source.notes)) + list(history.removed_lines(source.notes))
    return out, notes, lines


@pytest.mark.parametrize("make", [some_old, all_old])
@pytest.mark.parametrize("checked", [False, True], ids=["import", "verify"])
def test_both_reader_modes_read_the_history_the_same(tmp_path: Path, make: Any, checked: bool) -> None:
    path = make(tmp_path / "default.isar")
    process = _read_all(path, "process", checked=checked)
    inline = _read_all(path, "inline", checked=checked)
    assert process == inline
    assert process[1]["messages"][2] == {"text": 3, "description": 3}
    assert process[2][:2] == [
        "messages.text: 3 nulls read as '' (as the app reads them)",
        "messages.description: 3 nulls read as '' (as the app reads them)",
    ]


def test_an_unknown_type_name_is_a_row_refusal_naming_the_loss(tmp_path: Path) -> None:
    """Not null and not in the list: refused (the app would show it as text), row by row, the same both ways,
    so `--reject-file` can record it and import the rest. An unknown name is never counted as a default."""
    data = new_data()
    data["messages"].append(_message(101, threadId=10, type="video"))
    path = write_app_file(tmp_path / "default.isar", data)
    results = {mode: _read_all(path, mode, checked=False) for mode in MODES}
    assert results["process"] == results["inline"]
    messages = results["inline"][0]["messages"]
    assert len(messages) == 2
    assert messages[1] == (
        "default.isar: messages id=101",
        "type",
        UNKNOWN_TYPE.format(value="video", names="text, audio, image"),
    )
    assert "its value would be lost" in messages[1][2] and "--reject-file" in messages[1][2]
    assert results["inline"][1]["messages"][2] == {}


def test_keep_removed_writes_every_value_privately(tmp_path: Path) -> None:
    path = some_old(tmp_path / "default.isar")
    kept = tmp_path / "removed.ndjson"
    kept.write_text("stale\n")
    os.chmod(kept, 0o644)  # replaced: the new file is private whatever was there
    with open_isar(path) as f:
        assert history.write_removed(f.isar, kept) == 16  # Message 7, Configuration 5, Thread 3, Mode 1
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    assert {"collection": "Message", "id": 1, "position": 0, "type": "String", "value": "old words"} in records
    assert {"collection": "Message", "id": 2, "position": 1, "type": "String", "value": "/p.png"} in records
    assert {"collection": "Message", "id": 2, "position": 2, "type": "Bool", "value": True} in records
    assert {"collection": "Message", "id": 3, "position": 0, "type": "String", "value": ""} in records
    assert {"collection": "Thread", "id": 3, "position": 2, "type": "Long", "value": 3} in records
    assert {"collection": "Thread", "id": 10, "position": 2, "type": "Long", "value": 0} in records
    assert {"collection": "Configuration", "id": 1, "position": 2, "type": "String",
            "value": "https://api.openai.com/v1"} in records  # fmt: skip
    assert [r for r in records if r["collection"] == "Message" and r["id"] == 100] == []
    assert all(list(r) == ["collection", "id", "position", "type", "value"] for r in records)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".removed")] == []


def test_keep_removed_writes_bytes_as_base64(tmp_path: Path) -> None:
    """A removed List<byte> (not in the app's history, but any removed type is kept)."""
    schemas = app_schemas()
    tag = schemas["Tag"]
    schemas["Tag"] = Schema("Tag", [(None, "ByteList", None), *tag.properties], former={0: "icon"})
    data = new_data()
    path = write_app_file(tmp_path / "default.isar", data, schemas=schemas)
    with IsarWriter(path) as w:
        w.schemas = schemas
        w.put("Tag", 2, {"icon": b"\x89PNG\x00", "name": "n", "description": "", "isEditable": True})
    kept = tmp_path / "removed.ndjson"
    with open_isar(path) as f:
        assert history.write_removed(f.isar, kept) == 1
        assert [r["name"] for r in f.app.rows(BY_NAME["tags"])] == ["t", "n"]
        assert f.app.notes["tags"].removed == {0: ("ByteList", 1)}
    record = json.loads(kept.read_text())
    assert record == {
        "collection": "Tag",
        "id": 2,
        "position": 0,
        "type": "ByteList",
        "value": base64.b64encode(b"\x89PNG\x00").decode(),
    }


def test_scan_says_which_objects_predate_which_properties(tmp_path: Path) -> None:
    path = some_old(tmp_path / "default.isar")
    with open_isar(path) as f:
        found = history.scan(f.isar)
        message = list(history.history_lines(f.isar.collections["Message"], found["Message"]))
        thread = list(history.history_lines(f.isar.collections["Thread"], found["Thread"]))
        tag = list(history.history_lines(f.isar.collections["Tag"], found["Tag"]))
    assert message == [
        "3 of 4 objects predate description, fileData, fileName, mimeType, text, transcript (those read as null there)",
        "removed property at position 0 (String) holds a value in 3 of 4 objects (keep them with --keep-removed "
        "FILE.ndjson)",
        "removed property at position 1 (String) holds a value in 1 of 4 objects (keep them with --keep-removed "
        "FILE.ndjson)",
        "removed property at position 2 (Bool) holds a value in 3 of 4 objects (keep them with --keep-removed "
        "FILE.ndjson)",
    ]
    assert thread[0].startswith("removed property at position 1 (Bool) holds a value in 1 of 2 objects")
    assert tag == []


def test_the_defaults_table_names_only_contract_fields() -> None:
    for (collection, name), default in history.APP_READS_NULL.items():
        field = BY_NAME[collection].field(name)
        assert not field.nullable, (collection, name)
        assert default.shown


# -- the commands, as real processes -----------------------------------------------------------------------------


def _run(module: str, *args: Any) -> subprocess.CompletedProcess[str]:
    result = run_module(module, *args)
    assert "Traceback" not in result.stderr, result.stderr
    assert API_KEY not in result.stdout + result.stderr
    return result


def _export_db(db: Path, out: Path) -> dict[str, bytes]:
    result = _run("tools.export", "--db", db, "--out", out, "--exported-at", "2026-01-01T00:00:00Z", "--quiet")
    assert result.returncode == 0, result.stderr
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("make", [some_old, all_old])
def test_import_and_verify_an_upgraded_file(tmp_path: Path, make: Any) -> None:
    """The issue's user: `--orphans adopt` imports the file (today: refused), the summary and the report name
    every default and every removed value, `--keep-removed` keeps them, verify agrees; both reader modes alike."""
    isar = make(tmp_path / "default.isar")
    refused = _run("tools.import", isar, "--db", tmp_path / "refused.db", "--quiet")
    assert refused.returncode == 1  # the old messages have no thread: orphans
    assert "messages id=1: threadId" in refused.stderr and "--orphans adopt" in refused.stderr
    outputs = {}
    for mode in MODES:
        db, kept, report = tmp_path / f"{mode}.db", tmp_path / f"{mode}.ndjson", tmp_path / f"{mode}.json"
        result = _run(
            "tools.import", isar, "--db", db, "--quiet", "--orphans", "adopt", "--isar-reader", mode,
            "--keep-removed", kept, "--report", report,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert "messages.text: 3 nulls read as '' (as the app reads them)" in lines
        assert "messages.description: 3 nulls read as '' (as the app reads them)" in lines
        assert (
            "Message: removed properties hold values (position 0 String: 3 objects, position 1 String: 1 object, "
            f"position 2 Bool: 3 objects); not carried over (written to {kept})"
        ) in lines
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        records = [json.loads(line) for line in kept.read_text().splitlines()]
        assert {"collection": "Message", "id": 1, "position": 0, "type": "String", "value": "old words"} in records
        reading = json.loads(report.read_text())["details"]["isar_reading"]
        assert reading["nulls"] == "app" and reading["keep_removed"] == str(kept)
        assert reading["defaults"]["messages.text"] == {"nulls": 3, "read_as": "''"}
        assert {"collection": "Message", "position": 0, "type": "String", "objects": 3} in reading["removed_values"]
        verified = _run(
            "tools.verify", isar, "--db", db, "--quiet", "--orphans", "adopt", "--samples", "100",
            "--isar-reader", mode, "--report", tmp_path / f"verify-{mode}.json",
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "messages.text: 3 nulls read as '' (as the app reads them)" in verified.stdout.splitlines()
        assert "database matches the export" in verified.stdout
        verify_reading = json.loads((tmp_path / f"verify-{mode}.json").read_text())["details"]["isar_reading"]
        assert verify_reading["defaults"] == reading["defaults"]
        outputs[mode] = (_export_db(db, tmp_path / f"export-{mode}"), kept.read_bytes(), reading["defaults"])
    assert outputs["process"] == outputs["inline"]
    messages = [json.loads(line) for line in outputs["inline"][0]["messages.ndjson"].splitlines()]
    old = [m for m in messages if m["id"] in (1, 2, 3)]
    assert [(m["text"], m["description"], m["type"]) for m in old] == [
        ("", "", "text"),
        ("", "", "image"),
        ("", "", "audio"),
    ]
    # without --orphans adopt, verify says the orphans differ (the database's recovery thread is not in the file)
    unadopted = _run("tools.verify", isar, "--db", tmp_path / "inline.db", "--quiet")
    assert unadopted.returncode == 1


def test_nulls_refuse_keeps_the_strict_refusal(tmp_path: Path) -> None:
    isar = some_old(tmp_path / "default.isar")
    refuse = ["--quiet", "--orphans", "adopt", "--nulls", "refuse"]
    results = {
        mode: _run("tools.import", isar, "--db", tmp_path / "chat.db", *refuse, "--isar-reader", mode) for mode in MODES
    }
    assert results["process"].returncode == results["inline"].returncode == 1
    assert results["process"].stderr == results["inline"].stderr
    assert f"Error: {isar}: Message id 1: text: required field is null" in results["inline"].stderr
    assert not (tmp_path / "chat.db").exists()
    exported = _run("tools.export_isar", isar, "--out", tmp_path / "out", "--quiet", "--nulls", "refuse")
    assert exported.returncode == 1 and "required field is null" in exported.stderr
    assert not (tmp_path / "out").exists()
    # verify reads the same way: the default reading against a database imported with it agrees, a
    # refusing reading refuses the file
    assert _run("tools.import", isar, "--db", tmp_path / "chat.db", "--quiet", "--orphans", "adopt").returncode == 0
    verified = _run("tools.verify", isar, "--db", tmp_path / "chat.db", "--quiet", "--nulls", "refuse")
    assert verified.returncode == 1 and "required field is null" in verified.stderr


def test_export_isar_reads_and_keeps_the_same_way(tmp_path: Path) -> None:
    """export_isar FILE.isar --out DIR writes what the import stores (the same reading), keeps the removed values."""
    isar = some_old(tmp_path / "default.isar")
    kept = tmp_path / "kept.ndjson"
    result = _run(
        "tools.export_isar", isar, "--out", tmp_path / "out", "--quiet", "--keep-removed", kept,
        "--exported-at", "2026-01-01T00:00:00Z", "--report", tmp_path / "r.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "messages.text: 3 nulls read as '' (as the app reads them)" in result.stdout.splitlines()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert len(kept.read_text().splitlines()) == 16
    reading = json.loads((tmp_path / "r.json").read_text())["details"]["isar_reading"]
    assert reading["defaults"]["messages.description"] == {"nulls": 3, "read_as": "''"}
    imported = _run("tools.import", tmp_path / "out", "--db", tmp_path / "chat.db", "--quiet", "--orphans", "adopt")
    assert imported.returncode == 0, imported.stderr


def test_inspect_shows_the_history(tmp_path: Path) -> None:
    isar = some_old(tmp_path / "default.isar")
    result = _run("tools.export_isar", isar, "--inspect")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    message = lines.index("collection Message: 4 objects, static size 38")
    assert lines[message + 1 : message + 4] == [
        "  property (removed)                String               offset 2",
        "  property (removed)                String               offset 5",
        "  property (removed)                Bool                 offset 8",
    ]
    assert (
        "  3 of 4 objects predate description, fileData, fileName, mimeType, text, transcript "
        "(those read as null there)"
    ) in lines
    assert (
        "  removed property at position 0 (String) holds a value in 3 of 4 objects "
        "(keep them with --keep-removed FILE.ndjson)"
    ) in lines
    assert lines[-1].startswith("app mapping: schema accepted")


def test_an_unknown_type_name_is_refused_or_rejected(tmp_path: Path) -> None:
    data = new_data()
    data["messages"].append(_message(101, threadId=10, type="video", text="keep me"))
    isar = write_app_file(tmp_path / "default.isar", data)
    refused = _run("tools.import", isar, "--db", tmp_path / "chat.db", "--quiet")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == (
        f"Error: {isar}: messages id=101: type: 'video' is not one of text, audio, image: the app would show it "
        "as text and its value would be lost, so the message is refused (--reject-file FILE records it and "
        "imports the rest)"
    )
    records = {}
    for mode in MODES:
        rejects = tmp_path / f"rejects-{mode}.ndjson"
        result = _run(
            "tools.import", isar, "--db", tmp_path / f"{mode}.db", "--quiet", "--reject-file", rejects,
            "--isar-reader", mode,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        records[mode] = rejects.read_bytes()
    assert records["process"] == records["inline"]
    first = json.loads(records["inline"].splitlines()[0])
    assert first["field"] == "type" and "its value would be lost" in first["reason"]
    assert json.loads(first["text"]) == _message(101, threadId=10, type="video", text="keep me")  # all of it kept


def test_keep_removed_needs_an_isar_file(tmp_path: Path) -> None:
    result = _run("tools.import", tmp_path, "--db", tmp_path / "chat.db", "--keep-removed", tmp_path / "k.ndjson")
    assert result.returncode == 2
    assert "--keep-removed applies to an .isar file" in result.stderr


def test_keep_removed_into_a_missing_directory_is_refused_first(tmp_path: Path) -> None:
    isar = some_old(tmp_path / "default.isar")
    kept = tmp_path / "missing" / "kept.ndjson"
    imported = _run("tools.import", isar, "--db", tmp_path / "chat.db", "--orphans", "adopt", "--keep-removed", kept)
    assert imported.returncode == 1
    assert imported.stderr == f"Error: {kept}: no such directory\n"
    assert not (tmp_path / "chat.db").exists()
    exported = _run("tools.export_isar", isar, "--out", tmp_path / "out", "--keep-removed", kept)
    assert exported.returncode == 1 and not (tmp_path / "out").exists()
