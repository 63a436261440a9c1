"""tools.import through the real CLI (subprocess) and the reader/loader through their API."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import apsw
import pytest

from pychat_db.exchange import reader as reader_module
from pychat_db.exchange.codec import FieldError, NaiveTimezone, RowCodec, row_digest
from pychat_db.exchange.contract import COLLECTIONS, CONFIGURATION, MESSAGES, TAGS, THREADS
from pychat_db.exchange.loader import ImportFailed, ImportOptions, import_source
from pychat_db.exchange.reader import ExportDirectory, MappingSource
from tests.support.commands import ROOT, run_module
from tests.support.faulty_vfs import import_leftovers
from tests.support.import_exports import API_KEY, dumps, sample_rows, write_export, write_lines, write_manifest


def run_import(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return run_module("tools.import", *args)


def table(db: Path, name: str) -> list[tuple[Any, ...]]:
    collection = next(c for c in COLLECTIONS if c.name == name)
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        order = ", ".join(collection.field(k).column for k in collection.key)
        return conn.execute(f"SELECT {', '.join(collection.columns)} FROM {name} ORDER BY {order}").fetchall()
    finally:
        conn.close()


def db_content(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {c.name: table(db, c.name) for c in COLLECTIONS}


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    export = write_export(tmp_path / "reference", sample_rows())
    db = tmp_path / "reference.db"
    result = run_import(export, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    return db_content(db)


# ---------------------------------------------------------------------------------------------
# Every input variant imports, to the same content


def test_canonical_import_content(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows(), manifest=True)
    db = tmp_path / "chat.db"
    result = run_import(export, "--db", db)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"imported {export} into {db}" in result.stdout
    messages = table(db, "messages")
    assert messages[0][:3] == (1, 1, "hello \x00 wörld 👩‍👩‍👧")
    assert messages[1][3] == "1969-12-31T23:59:59.999999Z"
    assert messages[1][6] == b"\x00\x01\x02\xff"
    assert messages[2][6] == b"" and messages[0][6] is None  # empty file vs no file
    assert messages[1][8] == "" and messages[2][8] is None  # "" vs null
    assert [r[0] for r in table(db, "threads")] == [-(2**63), 1, 2**63 - 1]
    assert table(db, "modes") == [(1, "Summary", "Summarise.", 0)]
    assert os.stat(db).st_mode & 0o777 == 0o600
    conn = apsw.Connection(str(db))
    assert conn.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")} >= {
        "messages_thread_id_timestamp",
        "message_tags_tag_id",
        "mode_outputs_mode_id_created_at",
    }
    conn.close()
    assert import_leftovers(tmp_path) == []


def _legacy(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The legacy store's own JSON export: µs timestamps, integer-array blobs."""
    from pychat_db.convert import timestamp_text_to_micros

    for objects in rows.values():
        for obj in objects:
            for key in ("createdAt", "timestamp"):
                if key in obj:
                    obj[key] = timestamp_text_to_micros(obj[key])
            if obj.get("fileData") is not None:
                obj["fileData"] = list(base64.b64decode(obj["fileData"]))
    return rows


def _offsets(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    rows["threads"][0]["createdAt"] = "2024-01-02T08:34:05.123456+05:30"
    rows["messages"][0]["timestamp"] = "2024-01-02T03:04:06.000001+00:00"
    del rows["messages"][0]["mimeType"]  # an absent nullable field is null
    return rows


VARIANTS: dict[str, dict[str, Any]] = {
    "bom-crlf-blank-lines": {"bom": True, "crlf": True, "blank_lines": True},
    "json-arrays-compact": {"array": [c.name for c in COLLECTIONS]},
    "json-arrays-pretty": {"array": [c.name for c in COLLECTIONS], "pretty": True},
    "mixed-with-manifest": {"array": ["messages", "tags"], "manifest": True, "bom": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_file_variants_import_the_same(tmp_path: Path, reference: dict[str, Any], variant: str) -> None:
    export = write_export(tmp_path / variant, sample_rows(), **VARIANTS[variant])
    db = tmp_path / "v.db"
    result = run_import(export, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    assert db_content(db) == reference


@pytest.mark.parametrize("transform", [_legacy, _offsets], ids=["legacy-values", "offsets-and-absent-nulls"])
def test_value_variants_import_the_same(tmp_path: Path, reference: dict[str, Any], transform: Any) -> None:
    export = write_export(tmp_path / "x", transform(sample_rows()), array=["messages"])
    db = tmp_path / "v.db"
    result = run_import(export, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    assert db_content(db) == reference


@pytest.mark.parametrize("text", [b"{}", b"null", b"", b"  \n", None], ids=["{}", "null", "empty", "blank", "absent"])
def test_configuration_may_be_missing(tmp_path: Path, text: bytes | None) -> None:
    rows = sample_rows()
    del rows["configuration"]
    export = write_export(tmp_path / "x", rows)
    if text is not None:
        (export / "configuration.json").write_bytes(text)
    db = tmp_path / "c.db"
    result = run_import(export, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    assert table(db, "configuration") == []


@pytest.mark.parametrize("zone", ["UTC", "local"])
def test_naive_timezone_option(tmp_path: Path, zone: str) -> None:
    rows = sample_rows()
    rows["threads"][0]["createdAt"] = "2024-01-02T03:04:05.123456"
    export = write_export(tmp_path / "x", rows)
    result = run_import(export, "--db", tmp_path / "n.db", "--quiet", "--naive-timezone", zone)
    assert result.returncode == 0, result.stderr
    if zone == "UTC":
        assert table(tmp_path / "n.db", "threads")[1][2] == "2024-01-02T03:04:05.123456Z"


# ---------------------------------------------------------------------------------------------
# Every error class: exit 1, the exact line, no traceback, no database


def _msg(**changes: Any) -> bytes:
    row = dict(sample_rows()["messages"][0], id=9)
    row.update(changes)
    return dumps({k: v for k, v in row.items() if v != "<drop>"}).encode()


GOOD = [dumps(m).encode() for m in sample_rows()["messages"]]
ERRORS: dict[str, tuple[str, list[bytes], str]] = {
    "malformed": (
        "messages.ndjson",
        [*GOOD, b'{"id": 9,'],
        "messages.ndjson:4: malformed JSON: Expecting property name",
    ),
    "wrong-type": ("messages.ndjson", [*GOOD, _msg(text=5)], "messages.ndjson:4: text: expected `str`, got `int`"),
    "missing": ("messages.ndjson", [*GOOD, _msg(text="<drop>")], "messages.ndjson:4: text: missing required field"),
    "unknown": (
        "messages.ndjson",
        [*GOOD, _msg(colour="red")],
        "messages.ndjson:4: colour: unknown field in messages (it would be lost)",
    ),
    "enum": ("messages.ndjson", [*GOOD, _msg(type="video")], "messages.ndjson:4: type: invalid enum value 'video'"),
    "timestamp": (
        "messages.ndjson",
        [*GOOD, _msg(timestamp="2024-02-30T00:00:00Z")],
        "messages.ndjson:4: timestamp: not an ISO-8601 timestamp: '2024-02-30T00:00:00Z' (day is out of range",
    ),
    "naive": (
        "messages.ndjson",
        [*GOOD, _msg(timestamp="2024-01-01T00:00:00")],
        "messages.ndjson:4: timestamp: '2024-01-01T00:00:00' has no UTC offset",
    ),
    "base64": ("messages.ndjson", [*GOOD, _msg(fileData="AAE")], "messages.ndjson:4: fileData: invalid base64"),
    "byte-array": (
        "messages.ndjson",
        [*GOOD, _msg(fileData=[1, 256])],
        "messages.ndjson:4: fileData[1]: expected `int` <= 255",
    ),
    "duplicate": ("messages.ndjson", [*GOOD, GOOD[1]], "messages.ndjson:4: id: duplicate id 2 in messages"),
    "duplicate-tag-link": (
        "message_tags.ndjson",
        [b'{"messageId":1,"tagId":1}', b'{"messageId":1,"tagId":1}'],
        "message_tags.ndjson:2: duplicate message_tags link (messageId=1, tagId=1)",
    ),
    "dangling": (
        "messages.ndjson",
        [*GOOD, _msg(threadId=77)],
        "messages.ndjson:4: threadId: 77 points to no threads row; use --orphans adopt to keep it in a recovery thread",
    ),
    "dangling-tag": (
        "message_tags.ndjson",
        [b'{"messageId":1,"tagId":1}', b"", b'{"messageId":2,"tagId":99}'],
        "message_tags.ndjson:3: tagId: 99 points to no tags row",
    ),
    "empty-link": (
        "messages.ndjson",
        [*GOOD, _msg(threadId=None)],
        "messages.ndjson:4: threadId: empty link: no threads row; use --orphans adopt",
    ),
    "surrogate": (
        "messages.ndjson",
        [*GOOD, _msg().replace(b'"hello', b'"\\ud800hello')],
        "messages.ndjson:4: text: lone UTF-16 surrogate in the string",
    ),
    "utf8": (
        "messages.ndjson",
        [*GOOD, _msg().replace(b"hello", b"hel\xfflo")],
        "messages.ndjson:4: text: invalid UTF-8 in the string",
    ),
    "int64": (
        "threads.ndjson",
        [b'{"id":9223372036854775808,"name":"x","createdAt":0}'],
        "threads.ndjson:1: id: expected `int` <= 9223372036854775807",
    ),
    "not-an-object": ("tags.json", [b"[", b'{"id":1,"name":"a","description":"","isEditable":true},', b"7]"], ""),
}
ERRORS["not-an-object"] = (*ERRORS["not-an-object"][:2], "tags.json:3: expected a JSON object, got int")


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_refused_input(tmp_path: Path, case: str) -> None:
    file, lines, expected = ERRORS[case]
    rows = sample_rows()
    export = write_export(tmp_path / "x", rows)
    if file.endswith(".json"):
        (export / file.replace(".json", ".ndjson")).unlink()
    write_lines(export, file, lines)
    db = tmp_path / "chat.db"
    result = run_import(export, "--db", db, "--quiet")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"Error: {expected}"), first
    assert result.stderr.splitlines()[-1] == f"nothing written to {db}"
    assert not db.exists()
    assert import_leftovers(tmp_path) == []
    assert result.stdout == ""


def test_manifest_mismatches(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows(), manifest=True)
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["collections"]["tags"]["rows"] = 3
    write_manifest(export, manifest["collections"])
    result = run_import(export, "--db", tmp_path / "m.db", "--quiet")
    assert result.returncode == 1
    assert "Error: manifest.json: collections.tags.rows: manifest says 3, tags.ndjson has 2" in result.stderr
    manifest["collections"]["tags"]["rows"] = 2
    write_manifest(export, manifest["collections"])
    with (export / "messages.ndjson").open("ab") as f:
        f.write(b"\n")  # same rows, other bytes
    result = run_import(export, "--db", tmp_path / "m.db", "--quiet")
    assert result.returncode == 1
    assert "Error: manifest.json: collections.messages.sha256: manifest says " in result.stderr
    assert not (tmp_path / "m.db").exists()


def test_both_ndjson_and_json_refused(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    (export / "tags.json").write_text("[]")
    result = run_import(export, "--db", tmp_path / "b.db")
    assert result.returncode == 1
    assert result.stderr == "Error: tags.json: both tags.ndjson and tags.json exist; keep one of them\n"


def test_max_errors_lists_several(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    write_lines(export, "messages.ndjson", [*GOOD, _msg(id=10, type="x"), _msg(id=11, text=1), _msg(id=12, text=2)])
    result = run_import(export, "--db", tmp_path / "e.db", "--quiet", "--max-errors", "2")
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: messages.ndjson:4: type: invalid enum value 'x'",
        "Error: messages.ndjson:5: text: expected `str`, got `int`",
    ]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_import(tmp_path).returncode == 2
    assert run_import(tmp_path, "--db", tmp_path / "a.db", "--orphans", "keep").returncode == 2
    assert run_import(tmp_path, "--db", tmp_path / "a.db", "--max-errors", "0").returncode == 2


# ---------------------------------------------------------------------------------------------
# Atomicity


def test_existing_target_needs_force_and_survives_failed_force(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    db = tmp_path / "chat.db"
    assert run_import(export, "--db", db, "--quiet").returncode == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = run_import(export, "--db", db, "--quiet")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {db}: exists; pass --force to replace it")
    write_lines(export, "tags.ndjson", [b'{"id":1,"name":"a","description":"","isEditable":"yes"}'])
    result = run_import(export, "--db", db, "--quiet", "--force")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: tags.ndjson:1: isEditable: expected `bool`, got `str`")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert import_leftovers(tmp_path) == []
    write_lines(export, "tags.ndjson", [b'{"id":1,"name":"new","description":"","isEditable":true}'])
    write_lines(export, "message_tags.ndjson", [b'{"messageId":1,"tagId":1}'])
    result = run_import(export, "--db", db, "--quiet", "--force")
    assert result.returncode == 0, result.stderr
    assert table(db, "tags") == [(1, "new", "", 1)]


def test_kill_mid_import_leaves_no_target(tmp_path: Path) -> None:
    rows = sample_rows()
    big = rows["messages"][1]
    rows["messages"] = [dict(big, id=i, text=f"message {i} " * 20) for i in range(1, 150_001)]
    rows["message_tags"] = []
    export = write_export(tmp_path / "x", rows)
    db = tmp_path / "chat.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.import", str(export), "--db", str(db)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("messages: reading"):
            break
    time.sleep(0.3)
    assert proc.poll() is None, "the import finished before it could be killed; make the export bigger"
    assert import_leftovers(tmp_path), "no temporary database while loading"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not db.exists()
    stale = import_leftovers(tmp_path)
    rows["messages"] = rows["messages"][:10]
    write_export(export, rows)
    result = run_import(export, "--db", db)
    assert result.returncode == 0, result.stderr
    assert f"note: removed {stale[0]}, left by an interrupted import" in result.stderr
    assert import_leftovers(tmp_path) == []
    assert len(table(db, "messages")) == 10


# ---------------------------------------------------------------------------------------------
# Rejections, orphans, dry run, report, secrets


def test_reject_file_reconciles(tmp_path: Path) -> None:
    rows = sample_rows()
    export = write_export(tmp_path / "x", rows)
    write_lines(export, "threads.ndjson", [dumps(t).encode() for t in rows["threads"]] + [b'{"id":5,"name":1}'])
    write_lines(export, "messages.ndjson", [*GOOD, _msg(id=10, type="x"), _msg(id=11, threadId=42), GOOD[0]])
    tags = [dumps(t).encode() for t in rows["message_tags"]]
    write_lines(export, "message_tags.ndjson", [*tags, b'{"messageId":11,"tagId":1}', tags[0]])
    rejects, report = tmp_path / "rejects.ndjson", tmp_path / "report.json"
    result = run_import(export, "--db", tmp_path / "r.db", "--quiet", "--reject-file", rejects, "--report", report)
    assert result.returncode == 0, result.stderr
    doc = json.loads(report.read_text())
    for name, c in doc["collections"].items():
        assert c["read"] == c["imported"] + c["rejected"], name
    assert {n: c["rejected"] for n, c in doc["collections"].items() if c["rejected"]} == {
        "threads": 1,
        "messages": 3,
        "message_tags": 2,
    }
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["location"], r["field"]) for r in records] == [
        ("threads.ndjson:4", "name"),
        ("messages.ndjson:4", "type"),
        ("messages.ndjson:6", "id"),
        ("message_tags.ndjson:5", None),
        ("messages.ndjson:5", "threadId"),
        ("message_tags.ndjson:4", "messageId"),
    ]
    assert records[0]["text"] == '{"id":5,"name":1}'
    assert "6 rows refused, recorded in" in result.stdout
    assert len(table(tmp_path / "r.db", "messages")) == 3


def test_orphans_adopt(tmp_path: Path) -> None:
    rows = sample_rows()
    rows["messages"].append(dict(rows["messages"][0], id=20, threadId=None, timestamp="2020-01-01T00:00:00Z"))
    rows["messages"].append(dict(rows["messages"][0], id=21, threadId=404))
    del rows["messages"][-1]["threadId"]
    rows["messages"].append(dict(rows["messages"][0], id=22, threadId=405))
    rows["mode_outputs"].append(dict(rows["mode_outputs"][0], id=2, threadId=406))
    export = write_export(tmp_path / "x", rows)
    db, report = tmp_path / "o.db", tmp_path / "report.json"
    refused = run_import(export, "--db", db, "--quiet")
    assert refused.returncode == 1
    result = run_import(export, "--db", db, "--quiet", "--orphans", "adopt", "--report", report)
    assert result.returncode == 0, result.stderr
    threads = {r[1]: r for r in table(db, "threads")}
    recovered = threads["Recovered messages"]  # both id limits are taken: the first free id after the smallest
    assert recovered[0] == -(2**63) + 1
    assert recovered[2] == "2020-01-01T00:00:00.000000Z"
    adopted = [m[0] for m in table(db, "messages") if m[1] == recovered[0]]
    assert adopted == [20, 21, 22]
    assert [o[0] for o in table(db, "mode_outputs") if o[1] == recovered[0]] == [2]
    doc = json.loads(report.read_text())
    assert doc["collections"]["messages"]["adopted"] == 3
    assert doc["collections"]["mode_outputs"]["adopted"] == 1
    assert doc["collections"]["threads"]["imported"] == 4
    assert doc["details"]["recovery_thread_id"] == recovered[0]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    db = tmp_path / "d.db"
    result = run_import(export, "--db", db, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: " in result.stdout and "nothing written" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
    write_lines(export, "tags.ndjson", [b"{"])
    result = run_import(export, "--db", db, "--dry-run", "--quiet")
    assert result.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_api_key_appears_in_no_output(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    outputs: list[str] = []
    report = tmp_path / "report.json"
    rejects = tmp_path / "rejects.ndjson"
    ok = run_import(export, "--db", tmp_path / "k.db", "--report", report)
    assert ok.returncode == 0
    outputs += [ok.stdout, ok.stderr, report.read_text()]
    bad_configs = [
        {"id": 1, "apiKey": API_KEY, "baseUrl": None, "modelName": 5},
        {"id": 1, "apiKey": API_KEY, "baseUrl": None, "modelName": "m", "secret": API_KEY},
    ]
    for config in bad_configs:
        (export / "configuration.json").write_text(json.dumps(config))
        for extra in ([], ["--reject-file", rejects]):
            result = run_import(export, "--db", tmp_path / "k2.db", "--report", report, *extra)
            outputs += [result.stdout, result.stderr, report.read_text()]
            if extra:
                outputs.append(rejects.read_text())
    (export / "configuration.json").write_text(f'{{"id": 1, "apiKey": "{API_KEY}\\ud800", "modelName": "m"}}')
    result = run_import(export, "--db", tmp_path / "k3.db")
    assert "apiKey: lone UTF-16 surrogate" in result.stderr
    outputs += [result.stdout, result.stderr]
    assert "configuration.json:1: modelName: expected `str`, got `int`" in "".join(outputs)
    for text in outputs:
        assert API_KEY not in text
        assert API_KEY[:12] not in text


# ---------------------------------------------------------------------------------------------
# Reader and codec units


def test_array_scanner_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = sample_rows()
    tricky = dict(rows["messages"][0], id=5, text='a } b ] [ { \\ " c', description="}")
    rows["messages"].append(tricky)
    rows["messages"].append(dict(rows["messages"][1], id=6, fileData=list(range(256)) * 3))
    expected = [RowCodec(MESSAGES).convert(m) for m in rows["messages"]]
    for chunk in (1, 2, 3, 7, 64, 1 << 20):
        monkeypatch.setattr(reader_module, "CHUNK_BYTES", chunk)
        for pretty in (False, True):
            export = write_export(tmp_path / f"a{chunk}{pretty}", rows, array=["messages"], pretty=pretty, bom=True)
            items = list(ExportDirectory(export).items(MESSAGES))
            assert [i.error for i in items] == [None] * len(expected)
            assert [i.row for i in items] == expected
    lines = [i.line for i in items]
    assert lines[0] == 2 and lines == sorted(lines)


def test_ndjson_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = sample_rows()
    codec = RowCodec(MESSAGES)
    expected = [codec.convert(m) for m in rows["messages"]]
    for chunk in (1, 2, 3, 5, 64, 1 << 20):
        monkeypatch.setattr(reader_module, "CHUNK_BYTES", chunk)
        export = write_export(tmp_path / f"n{chunk}", rows, bom=True, crlf=True, blank_lines=True)
        (export / "messages.ndjson").write_bytes((export / "messages.ndjson").read_bytes().rstrip(b"\r\n"))
        items = list(ExportDirectory(export).items(MESSAGES))
        assert [i.row for i in items] == expected
        assert [i.line for i in items] == [2, 5, 8]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'[{"id":1}', "unexpected end of file"),
        (b'[{"id":1},]', "trailing comma"),
        (b'[{"id":1} {"id":2}]', "expected `,` or `]`"),
        (b'{"id":1}', "expected a JSON array"),
        (b"[] []", "content after the end of the array"),
    ],
)
def test_array_structure_errors(tmp_path: Path, text: bytes, reason: str) -> None:
    (tmp_path / "tags.json").write_bytes(text)
    with pytest.raises(reader_module.ExportError, match=reason):
        list(ExportDirectory(tmp_path).items(TAGS))


def test_codec_same_for_json_and_dicts() -> None:
    codec = RowCodec(MESSAGES)
    for obj in sample_rows()["messages"]:
        assert codec.decode(dumps(obj).encode()) == codec.convert(obj)
    with pytest.raises(FieldError, match="lone UTF-16 surrogate") as info:
        codec.convert(dict(sample_rows()["messages"][0], text="\ud800"))
    assert info.value.field == "text"
    with pytest.raises(FieldError, match="expected `int`, got `bool`"):
        RowCodec(THREADS).convert({"id": True, "name": "x", "createdAt": 0})


def test_mapping_source_loads_like_files(tmp_path: Path, reference: dict[str, Any]) -> None:
    rows = sample_rows()
    factories = {
        name: (lambda objs=objs, name=name: [(f"mem: {name} #{i}", o) for i, o in enumerate(objs)])
        for name, objs in rows.items()
    }
    source = MappingSource("mem", factories)
    import_source(source, tmp_path / "m.db")
    assert db_content(tmp_path / "m.db") == reference
    rows["tags"][1]["isEditable"] = "no"
    with pytest.raises(ImportFailed, match=r"^mem: tags #1: isEditable: expected `bool`, got `str`$"):
        import_source(MappingSource("mem", factories), tmp_path / "m2.db", ImportOptions())
    assert not (tmp_path / "m2.db").exists()


def test_row_digest_same_on_both_sides(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    db = tmp_path / "d.db"
    import_source(ExportDirectory(export), db)
    for collection in COLLECTIONS:
        read = sorted(row_digest(i.row) for i in ExportDirectory(export).items(collection) if i.row)
        stored = sorted(row_digest(r) for r in table(db, collection.name))
        assert read == stored, collection.name
    assert row_digest((1, "", None)) != row_digest((1, None, ""))
    assert row_digest((1, b"", None)) != row_digest((1, "", None))


def test_configuration_text_never_kept(tmp_path: Path) -> None:
    (tmp_path / "configuration.json").write_text(json.dumps({"id": 1, "apiKey": API_KEY, "modelName": 3}))
    [item] = ExportDirectory(tmp_path).items(CONFIGURATION)
    assert item.error is not None and item.text is not None
    assert API_KEY.encode() not in item.text
    assert API_KEY not in repr(item)


def test_naive_timezone_reject_is_default() -> None:
    codec = RowCodec(THREADS)
    with pytest.raises(FieldError, match="no UTC offset"):
        codec.convert({"id": 1, "name": "x", "createdAt": "2024-01-01T00:00:00"})
    utc = RowCodec(THREADS, NaiveTimezone.UTC).convert({"id": 1, "name": "x", "createdAt": "2024-01-01T00:00:00"})
    assert utc[2] == "2024-01-01T00:00:00.000000Z"


def test_isar_file_imports_like_its_export(tmp_path: Path) -> None:
    from tests.support.isar_writer import export_to_isar

    rows = sample_rows()
    rows["threads"] = rows["threads"][:1]
    rows["messages"] = [dict(m, threadId=1) for m in rows["messages"]]
    export = write_export(tmp_path / "x", rows)
    isar = export_to_isar(export, tmp_path / "chat.isar")
    assert run_import(export, "--db", tmp_path / "from-export.db", "--quiet").returncode == 0
    result = run_import(isar, "--db", tmp_path / "from-isar.db", "--quiet")
    assert result.returncode == 0, result.stderr
    assert db_content(tmp_path / "from-isar.db") == db_content(tmp_path / "from-export.db")


def test_force_never_replays_the_old_databases_wal(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    db = tmp_path / "chat.db"
    assert run_import(export, "--db", db, "--quiet").returncode == 0
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("UPDATE tags SET name = 'OLD'")
    crashed = {p: p.read_bytes() for p in (db, Path(f"{db}-wal"))}  # as a crash would leave them
    conn.close()
    for path, data in crashed.items():
        path.write_bytes(data)
    write_lines(export, "tags.ndjson", [b'{"id":1,"name":"new","description":"","isEditable":true}'])
    write_lines(export, "message_tags.ndjson", [b'{"messageId":1,"tagId":1}'])
    result = run_import(export, "--db", db, "--quiet", "--force")
    assert result.returncode == 0, result.stderr
    assert table(db, "tags") == [(1, "new", "", 1)]
    check = apsw.Connection(str(db))
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    check.close()


def test_progress_renderers() -> None:
    import io

    from pychat_db.cli import ui

    plain = io.StringIO()
    progress = ui.PlainProgress(plain, every=0.0)
    progress.begin("messages", 4_000_000)
    progress.update(1000, 2_000_000)
    progress.end("messages", 2000, 1.5)
    lines = plain.getvalue().splitlines()
    assert lines[0] == "messages: reading (4.0 MB)"
    assert lines[1].startswith("messages: 1,000 rows, 2.0 of 4.0 MB, ") and lines[1].endswith(" MB/s")
    assert lines[2] == "messages: 2,000 rows read in 1.5 s (1,333 rows/s)"
    tty = io.StringIO()
    bar = ui.TerminalProgress(tty, width=160)
    bar.begin("messages", 4_000_000)
    bar.update(1000, 2_000_000)
    bar.end("messages", 2000, 1.5)
    bar.close()
    final = tty.getvalue().rsplit("\r", 1)[-1]
    assert "messages" in final and "100%" in final and "2,000 rows" in final and "4.0 MB" in final
    assert "\x1b[" in tty.getvalue()  # drawn in place on a terminal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.000000Z"),
        ("2024-01-01T05:30:00.000000+05:30", "2024-01-01T00:00:00.000000Z"),
        ("2024-W01-1T00:00:00.00000Z", "2024-01-01T00:00:00.000000Z"),
        ("2024-01-01T00:00:00,000000Z", "2024-01-01T00:00:00.000000Z"),
        ("2024-01-01 00:00:00.000000Z", "2024-01-01T00:00:00.000000Z"),
        ("0999-12-31T23:00:00-02:00", "1000-01-01T01:00:00.000000Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (-62135596800000000, "0001-01-01T00:00:00.000000Z"),
    ],
)
def test_timestamp_forms_normalise(value: str | int, expected: str) -> None:
    from pychat_db.exchange.codec import timestamp_to_text

    assert timestamp_to_text(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-13-01T00:00:00Z", "not an ISO-8601 timestamp"),
        ("yesterday", "not an ISO-8601 timestamp"),
        ("0001-01-01T00:00:00+01:00", "outside years 0001-9999"),
        (-62135596800000001, "outside years 0001-9999"),
    ],
)
def test_bad_timestamps(value: str | int, reason: str) -> None:
    from pychat_db.exchange.codec import timestamp_to_text

    with pytest.raises(ValueError, match=reason):
        timestamp_to_text(value)


def test_reject_file_keeps_undecodable_text_as_base64(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    bad = _msg(id=10).replace(b"hello", b"hel\xfflo")
    write_lines(export, "messages.ndjson", [*GOOD, bad])
    rejects, report = tmp_path / "rejects.ndjson", tmp_path / "report.json"
    result = run_import(export, "--db", tmp_path / "r.db", "--quiet", "--reject-file", rejects, "--report", report)
    assert result.returncode == 0, result.stderr
    [record] = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert record["location"] == "messages.ndjson:4" and record["field"] == "text"
    assert "text" not in record and base64.b64decode(record["textBase64"]) == bad
    assert os.stat(rejects).st_mode & 0o777 == 0o600
    doc = json.loads(report.read_text())
    assert doc["ok"] is True and doc["details"]["rejected"] == ["messages.ndjson:4: text: invalid UTF-8 in the string"]


def test_report_written_when_refused(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    write_lines(export, "messages.ndjson", [*GOOD, _msg(id=10, type="x")])
    report = tmp_path / "report.json"
    result = run_import(export, "--db", tmp_path / "r.db", "--quiet", "--report", report)
    assert result.returncode == 1
    doc = json.loads(report.read_text())
    assert doc["ok"] is False
    assert doc["problems"] == ["messages.ndjson:4: type: invalid enum value 'x'"]
    assert doc["collections"]["messages"]["read"] == 4


@pytest.mark.parametrize(
    ("file", "data", "expected"),
    [
        (
            "configuration.json",
            b'{"id":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
            "configuration.json:1: id: expected `int`, got `object`",
        ),
        ("tags.json", b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]", "tags.json:1: expected a JSON object, got array"),
        ("manifest.json", b"[" * 100_000 + b"]" * 100_000, "manifest.json: invalid manifest: Expected `object`"),
    ],
)
def test_deep_nesting_is_refused(tmp_path: Path, file: str, data: bytes, expected: str) -> None:
    export = write_export(tmp_path / "x", sample_rows())
    if file == "tags.json":
        (export / "tags.ndjson").unlink()
    (export / file).write_bytes(data)
    result = run_import(export, "--db", tmp_path / "d.db", "--quiet")
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.startswith(f"Error: {expected}"), result.stderr[:300]
    assert "Traceback" not in result.stderr
