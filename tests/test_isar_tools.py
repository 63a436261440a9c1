"""`tools.import FILE.isar` and `tools.verify FILE.isar`: the same loader and checks as for an export directory."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path
from typing import Any

import apsw

from tests.support.commands import ROOT, run_module
from tests.support.isar_writer import rows_from_export, write_app_file
from tests.test_isar_roundtrip import API_KEY, sample

EXAMPLE = ROOT / "examples" / "export"
AT = "2026-01-01T00:00:00Z"


def linked_sample() -> dict[str, list[dict[str, Any]]]:
    """The edge-case sample with every link set (the importer refuses empty links unless --orphans adopt)."""
    data = sample(b"blob")
    data["messages"][1]["threadId"] = 2
    data["mode_outputs"][1].update(threadId=2, modeId=1)
    return data


def test_import_verify_export_from_the_isar_file(tmp_path: Path) -> None:
    isar = write_app_file(tmp_path / "default.isar", rows_from_export(EXAMPLE), type_type="Int", page_size=16384)
    before = (isar.read_bytes(), isar.stat().st_mtime_ns)
    db = tmp_path / "chat.db"
    result = run_module("tools.import", isar, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "messages" in result.stdout and "2,000" in result.stdout
    result = run_module("tools.verify", isar, "--db", db, "--quiet", "--samples", "25")
    assert result.returncode == 0, result.stderr
    assert "database matches the export" in result.stdout
    # the database exports to the same bytes as export_isar writes from the file
    run_module("tools.export", "--db", db, "--out", tmp_path / "from_db", "--exported-at", AT, "--quiet")
    run_module("tools.export_isar", isar, "--out", tmp_path / "from_isar", "--exported-at", AT, "--quiet")
    names = sorted(os.listdir(tmp_path / "from_db"))
    assert names == sorted(os.listdir(tmp_path / "from_isar")) == sorted(os.listdir(EXAMPLE))
    assert all(filecmp.cmp(tmp_path / "from_db" / n, tmp_path / "from_isar" / n, shallow=False) for n in names)
    assert (isar.read_bytes(), isar.stat().st_mtime_ns) == before


def test_verify_against_the_isar_file_finds_a_changed_row(tmp_path: Path) -> None:
    isar = write_app_file(tmp_path / "default.isar", linked_sample())
    db = tmp_path / "chat.db"
    assert run_module("tools.import", isar, "--db", db, "--quiet").returncode == 0
    conn = apsw.Connection(str(db))
    conn.execute("UPDATE messages SET text = 'changed' WHERE id = 7")
    conn.close()
    result = run_module("tools.verify", isar, "--db", db, "--quiet")
    assert result.returncode == 1
    assert "messages" in result.stderr and "7" in result.stderr and "text" in result.stderr
    assert API_KEY not in result.stdout + result.stderr


def test_import_refuses_a_bad_isar_file_and_writes_nothing(tmp_path: Path) -> None:
    data = linked_sample()
    data["messages"][2]["timestamp"] = None
    isar = write_app_file(tmp_path / "default.isar", data)
    db = tmp_path / "chat.db"
    result = run_module("tools.import", isar, "--db", db, "--quiet", "--nulls", "refuse")  # default: as the app
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Message id 7: timestamp: required field is null" in result.stderr
    assert not db.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.isar"]


def test_verify_refuses_a_non_isar_file(tmp_path: Path) -> None:
    path = tmp_path / "x.isar"
    path.write_bytes(b"not mdbx" * 1000)
    db = tmp_path / "chat.db"
    result = run_module("tools.verify", path, "--db", db, "--quiet")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and "not a readable MDBX" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_and_verify_say_when_the_file_needed_recovery(tmp_path: Path) -> None:
    from tests.support.isar_writer import CONTRACT_TO_ISAR, IsarWriter, app_schemas

    data = linked_sample()
    live, crashed = tmp_path / "live.isar", tmp_path / "default.isar"
    w = IsarWriter(live, unsynced=True)
    for s in app_schemas().values():
        w.collection(s)
    for name in ("threads", "modes", "tags"):
        for row in data[name]:
            w.put(CONTRACT_TO_ISAR[name], row["id"], row)
    w.close(crash_copy=crashed)
    before = crashed.read_bytes()
    db = tmp_path / "chat.db"
    for module, args in (("tools.import", ()), ("tools.verify", ("--quiet",))):
        result = run_module(module, crashed, "--db", db, *args)
        assert result.returncode == 0, result.stderr
        assert "left mid-write" in result.stderr and "untouched" in result.stderr
    assert crashed.read_bytes() == before


def test_an_isar_file_under_another_name_is_read_as_one(tmp_path: Path) -> None:
    """A copy saved as `default.isar.bak` starts as an MDBX file does: import and verify read it as the .isar."""
    isar = write_app_file(tmp_path / "default.isar", linked_sample())
    renamed = isar.rename(tmp_path / "default.isar.bak")
    db = tmp_path / "chat.db"
    result = run_module("tools.import", renamed, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr
    result = run_module("tools.verify", renamed, "--db", db, "--quiet")
    assert result.returncode == 0, result.stderr


def test_a_file_that_is_neither_is_named_so(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an export\n")
    for module in ("tools.import", "tools.verify"):
        result = run_module(module, notes, "--db", tmp_path / "chat.db", "--quiet")
        assert result.returncode == 1
        assert result.stderr == f"Error: {notes}: a file, but neither an export directory nor an Isar database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_mdbx_magic_is_what_tells_a_file(tmp_path: Path) -> None:
    from pychat_db.isar.storage import looks_like_mdbx

    fixtures = sorted((ROOT / "tests" / "fixtures" / "isar").glob("*.isar"))
    assert len(fixtures) == 2 and all(looks_like_mdbx(f) for f in fixtures)  # written by the real Isar engine
    head = fixtures[0].read_bytes()[:4096]
    (tmp_path / "short").write_bytes(head[:27])
    (tmp_path / "other").write_bytes(head[:20] + b"\x00" * 8 + head[28:])
    assert not looks_like_mdbx(tmp_path / "short")
    assert not looks_like_mdbx(tmp_path / "other")
    assert not looks_like_mdbx(tmp_path / "missing")
