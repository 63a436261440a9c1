"""python -m tools.generate: determinism, shape, both variants hold the same data, the shipped example."""

from __future__ import annotations

import json
from pathlib import Path

from pychat_db.exchange.contract import COLLECTIONS, MESSAGES, THREADS
from pychat_db.exchange.reader import read_rows
from tests.support import exports
from tests.support.commands import ROOT, run_module
from tests.support.exports import api_key, export_digests, export_files, make_export

small_export = exports.small_export

ARGS = ["--messages", "400", "--threads", "9", "--tags", "11", "--blob-ratio", "0.2", "--blob-size", "100-3000"]


def test_same_arguments_give_the_same_bytes(tmp_path: Path) -> None:
    for variant in ("canonical", "legacy"):
        a, b = tmp_path / f"{variant}-a", tmp_path / f"{variant}-b"
        for out in (a, b):
            done = run_module("tools.generate", "--out", out, *ARGS, "--variant", variant, "--seed", "3")
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith(f"wrote {out}: {variant}, ")
            assert api_key(out) not in done.stdout + done.stderr
        assert export_files(a) == export_files(b)
    other = tmp_path / "other-seed"
    assert run_module("tools.generate", "--out", other, *ARGS, "--seed", "4").returncode == 0
    assert export_files(other)["messages.ndjson"] != export_files(tmp_path / "canonical-a")["messages.ndjson"]


def test_canonical_layout(small_export: Path) -> None:
    names = {p.name for p in small_export.iterdir()}
    assert names == {"manifest.json", "configuration.json"} | {
        f"{c.name}.ndjson" for c in COLLECTIONS if not c.single_object
    }
    manifest = json.loads((small_export / "manifest.json").read_text())
    assert list(manifest) == ["format", "version", "exportedAt", "collections"]
    assert list(manifest["collections"]) == [c.name for c in COLLECTIONS]
    for c in COLLECTIONS:
        lines = (small_export / c.canonical_file).read_bytes().split(b"\n")
        assert lines[-1] == b""  # every row ends with \n
        rows = [json.loads(line) for line in lines[:-1]]
        assert manifest["collections"][c.name]["rows"] == len(rows)
        assert all(list(r) == list(c.field_names) for r in rows)  # every key, contract order
        keys = [tuple(r[k] for k in c.key) for r in rows]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        for line in lines[:-1]:
            assert b", " not in line.split(b'"text"')[0] and b'": ' not in line  # compact separators
    assert (small_export / "messages.ndjson").read_bytes()[:3] != b"\xef\xbb\xbf"


def test_realistic_shape(small_export: Path) -> None:
    messages = list(read_rows(small_export, MESSAGES))
    ids = [m[0] for m in messages]
    assert -(2**63) in ids and 2**63 - 1 in ids
    assert any(i < 0 for i in ids[1:]) and any(2**53 < i < 2**63 - 1 for i in ids)
    texts = "".join(str(m[2]) for m in messages)
    for needle in ("\x00", "e\u0301", "👩\u200d👩", "日本語", "\ufeff", "\n", '"', "\\"):
        assert needle in texts, needle
    stamps = [str(m[3]) for m in messages] + [str(t[2]) for t in read_rows(small_export, THREADS)]
    assert "1970-01-01T00:00:00.000000Z" in stamps and "1969-12-31T23:59:59.999999Z" in stamps
    assert any(s < "1969-12-31" for s in stamps)
    types = {m[4] for m in messages}
    assert types == {"text", "audio", "image"}
    blobs = [m[6] for m in messages if m[6] is not None]
    assert b"" in blobs and max(map(len, blobs)) > 1024
    assert "" in {m[8] for m in messages} and None in {m[8] for m in messages}  # transcript "" vs null


def test_legacy_variant_holds_the_same_data(tmp_path: Path) -> None:
    canonical = make_export(tmp_path / "canonical")
    legacy = make_export(tmp_path / "legacy", variant="legacy")
    names = {p.name for p in legacy.iterdir()}
    assert names == {f"{c.name}.json" for c in COLLECTIONS}  # no manifest, JSON arrays
    text = (legacy / "messages.json").read_bytes()
    assert text.startswith(b'[{"id":1,') and b"\n" not in text.replace(b"\\n", b"")
    first = json.loads(text)[0]
    assert isinstance(first["timestamp"], int)
    assert any(isinstance(m["fileData"], list) for m in json.loads(text))
    assert export_digests(legacy) == export_digests(canonical)


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    done = run_module("tools.generate", "--out", out, "--messages", "10")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: {out}: directory is not empty; use --force to replace the export in it"
    )
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging directory left


def test_shipped_example_is_what_its_documented_command_writes(tmp_path: Path) -> None:
    readme = (ROOT / "examples" / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python -m tools.generate"))
    args = command.split()[3:]
    assert args[:2] == ["--out", "examples/export"]
    out = tmp_path / "export"
    done = run_module("tools.generate", "--out", out, *args[2:], "--quiet")
    assert done.returncode == 0, done.stderr
    assert export_files(out) == export_files(ROOT / "examples" / "export")
    assert sum(len(b) for b in export_files(out).values()) < 3_000_000


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    done = run_module("tools.generate", "--out", tmp_path / "x", "--messages", "5", "--blob-size", "9-3")
    assert done.returncode == 2
    assert "need 0 <= MIN <= MAX" in done.stderr
