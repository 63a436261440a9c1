"""python -m tools.export, and the round trips through python -m tools.import (real subprocesses)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pychat_db import convert
from pychat_db.connection import connect
from pychat_db.exchange.codec import RowCodec
from pychat_db.exchange.contract import CONFIGURATION, MESSAGE_TYPES, MESSAGES, TAGS
from pychat_db.exchange.writer import ExportWriteError, row_encoder, staged_directory, write_collection
from pychat_db.migrations import migrate
from tests.support import exports
from tests.support.commands import run_module
from tests.support.exports import GENERATED_AT, api_key, export_digests, export_files, make_export

small_export = exports.small_export


def _import(export: Path, db: Path) -> None:
    done = run_module("tools.import", export, "--db", db, "--quiet")
    assert done.returncode == 0, done.stderr


def _export(db: Path, out: Path, *extra: str) -> str:
    done = run_module("tools.export", "--db", db, "--out", out, "--exported-at", GENERATED_AT, *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_canonical_round_trip_is_byte_identical(small_export: Path, tmp_path: Path) -> None:
    _import(small_export, tmp_path / "one.db")
    output = _export(tmp_path / "one.db", tmp_path / "e1")
    # A generated canonical export is exactly what export writes, manifest included.
    assert export_files(tmp_path / "e1") == export_files(small_export)
    _import(tmp_path / "e1", tmp_path / "two.db")
    _export(tmp_path / "two.db", tmp_path / "e2")
    assert export_files(tmp_path / "e2") == export_files(tmp_path / "e1")
    assert api_key(small_export) not in output


def test_legacy_round_trip(tmp_path: Path) -> None:
    legacy = make_export(tmp_path / "legacy", variant="legacy")
    _import(legacy, tmp_path / "one.db")
    _export(tmp_path / "one.db", tmp_path / "e1")
    # export(import(X)) is semantically equal to X ...
    assert export_digests(tmp_path / "e1") == export_digests(legacy)
    # ... and is the canonical form of the same data.
    assert export_files(tmp_path / "e1") == export_files(make_export(tmp_path / "canonical"))
    _import(tmp_path / "e1", tmp_path / "two.db")
    _export(tmp_path / "two.db", tmp_path / "e2")
    assert export_files(tmp_path / "e2") == export_files(tmp_path / "e1")


def test_files_are_private_and_manifest_describes_them(small_export: Path, tmp_path: Path) -> None:
    _import(small_export, tmp_path / "db")
    out = tmp_path / "out"
    done = run_module("tools.export", "--db", tmp_path / "db", "--out", out)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exportedAt"] != GENERATED_AT and manifest["exportedAt"].endswith("Z")
    original = json.loads((small_export / "manifest.json").read_text())
    assert manifest["collections"] == original["collections"]  # only exportedAt differs
    assert f"exported {sum(c['rows'] for c in manifest['collections'].values()):,} rows to {out}" in done.stdout


def test_refuses_a_non_empty_directory_and_force_replaces_only_an_export(small_export: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    _import(small_export, db)
    out = tmp_path / "out"
    _export(db, out)
    before = export_files(out)
    done = run_module("tools.export", "--db", db, "--out", out)
    assert (done.returncode, done.stderr.splitlines()[-1]) == (
        1,
        f"Error: {out}: directory is not empty; use --force to replace the export in it",
    )
    (out / "messages.ndjson").write_bytes(b"stale\n")
    _export(db, out, "--force")
    assert export_files(out) == before
    (out / "notes.txt").write_text("mine")
    done = run_module("tools.export", "--db", db, "--out", out, "--force")
    assert (done.returncode, done.stderr.splitlines()[-1]) == (
        1,
        f"Error: {out}: holds 'notes.txt', which is not part of an export; refusing to replace it even with --force",
    )
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_empty_database_exports_every_file(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    conn = connect(db)
    migrate(conn)
    conn.close()
    out = tmp_path / "out"
    _export(db, out)
    files = export_files(out)
    assert files.pop("configuration.json") == b"null\n"
    manifest = json.loads(files.pop("manifest.json"))
    assert files == {f: b"" for f in files} and len(files) == 6
    assert {c["rows"] for c in manifest["collections"].values()} == {0}
    _import(out, tmp_path / "again.db")


def test_missing_database_writes_nothing(tmp_path: Path) -> None:
    done = run_module("tools.export", "--db", tmp_path / "nope.db", "--out", tmp_path / "out")
    assert done.returncode == 1
    assert done.stderr.strip() == f"Error: {tmp_path / 'nope.db'}: no such database"
    assert list(tmp_path.iterdir()) == []


# -- the writer itself -------------------------------------------------------------------------

_ID = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_TIMESTAMP = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
).map(convert.timestamp_to_db)
_MESSAGE = st.tuples(
    _ID,
    _ID,
    st.text(),
    _TIMESTAMP,
    st.sampled_from(MESSAGE_TYPES),
    st.text(),
    st.none() | st.binary(max_size=300),
    st.none() | st.text(),
    st.none() | st.text(),
    st.none() | st.text(),
)
_TAG = st.tuples(_ID, st.text(), st.text(), st.integers(0, 1))


@given(row=_MESSAGE)
@settings(max_examples=300, deadline=None)
def test_canonical_message_line_reads_back_exactly(row: tuple[object, ...]) -> None:
    line = row_encoder(MESSAGES)(row)
    assert b"\n" not in line and b"\r" not in line  # one row, one line
    assert RowCodec(MESSAGES).decode(line) == row
    assert list(json.loads(line)) == list(MESSAGES.field_names)


@given(row=_TAG)
@settings(max_examples=100, deadline=None)
def test_canonical_tag_line_reads_back_exactly(row: tuple[object, ...]) -> None:
    line = row_encoder(TAGS)(row)
    assert (b'"isEditable":true' in line) == (row[3] == 1)
    assert RowCodec(TAGS).decode(line) == row


def test_manifest_hashes_are_the_files_hashes(small_export: Path) -> None:
    manifest = json.loads((small_export / "manifest.json").read_text())
    for entry in manifest["collections"].values():
        data = (small_export / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk on fire"), staged_directory(out) as stage:
        (stage / "threads.ndjson").write_bytes(b"{}\n")
        raise RuntimeError("disk on fire")
    assert list(tmp_path.iterdir()) == []
    out.mkdir()
    (out / "manifest.json").write_bytes(b"old")
    with pytest.raises(RuntimeError), staged_directory(out, force=True) as stage:
        raise RuntimeError("again")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "manifest.json").read_bytes() == b"old"


def test_two_configuration_rows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportWriteError, match="configuration: more than one row"):
        write_collection(tmp_path, CONFIGURATION, [(1, "a", None, "m"), (2, "b", None, "m")])
