"""The reader process (`pychat_db.isar.worker`): an import that reads the .isar file in a second process
stores exactly what the in-process read stores, refuses exactly what it refuses, and says so plainly
when the second process cannot go on."""

from __future__ import annotations

import filecmp
import io
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

from pychat_db.exchange.codec import FieldError, NaiveTimezone, RowCodec
from pychat_db.exchange.contract import COLLECTIONS, MESSAGES, THREADS
from pychat_db.exchange.reader import Chunk, ExportError, Item, Problem
from pychat_db.isar import open_isar, worker
from pychat_db.isar.source import IsarSource
from tests.support.commands import ROOT, run_module
from tests.support.isar_writer import rows_from_export, write_app_file
from tests.test_isar_import_links import CASES as LINK_CASES
from tests.test_isar_import_links import _linked_sample
from tests.test_isar_refusals import DATA_CASES
from tests.test_isar_roundtrip import API_KEY, sample

EXAMPLE = ROOT / "examples" / "export"
AT = "2026-01-01T00:00:00Z"
MODES = ("process", "inline")


def _import(isar: Path, db: Path, mode: str, *args: str) -> Any:
    return run_module("tools.import", isar, "--db", db, "--quiet", "--isar-reader", mode, *args)


def _export(db: Path, out: Path) -> list[str]:
    result = run_module("tools.export", "--db", db, "--out", out, "--exported-at", AT, "--quiet")
    assert result.returncode == 0, result.stderr
    return sorted(os.listdir(out))


@pytest.mark.parametrize(("type_type", "file_data_type"), [("Int", "LongList"), ("String", "ByteList")])
def test_both_ways_store_the_same_database(tmp_path: Path, type_type: str, file_data_type: str) -> None:
    """2,000 messages (many chunks, blobs, tags): the same rows, exported to the same bytes, and the same report."""
    isar = write_app_file(
        tmp_path / "default.isar", rows_from_export(EXAMPLE), type_type=type_type, file_data_type=file_data_type
    )
    reports = {}
    for mode in MODES:
        report = tmp_path / f"{mode}.json"
        result = _import(isar, tmp_path / f"{mode}.db", mode, "--report", str(report))
        assert result.returncode == 0, result.stderr
        reports[mode] = json.loads(report.read_text())
    names = _export(tmp_path / "process.db", tmp_path / "process")
    assert names == _export(tmp_path / "inline.db", tmp_path / "inline")
    assert all(filecmp.cmp(tmp_path / "process" / n, tmp_path / "inline" / n, shallow=False) for n in names)
    counts = {mode: {c: r["read"] for c, r in reports[mode]["collections"].items()} for mode in MODES}
    assert counts["process"] == counts["inline"] and counts["process"]["messages"] == 2000
    assert reports["process"]["details"]["reader_process"]["peak_rss_kb"] > 0  # the child's own peak, for the benchmark
    assert "reader_process" not in reports["inline"]["details"]


REFUSALS = [c for c in DATA_CASES if c[0] in {"required-null", "enum-name", "file-data-range", "link-missing-mode"}]


@pytest.mark.parametrize(("change", "options"), [c[1:3] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_a_refusal_reads_the_same_both_ways(tmp_path: Path, change: Any, options: dict[str, Any]) -> None:
    data = _linked_sample()
    change(data)
    isar = write_app_file(tmp_path / "default.isar", data, **options)
    results = {mode: _import(isar, tmp_path / "chat.db", mode) for mode in MODES}
    assert results["process"].returncode == results["inline"].returncode == 1
    assert results["process"].stderr == results["inline"].stderr
    assert results["process"].stderr.startswith(f"Error: {isar}: ")
    assert "Traceback" not in results["process"].stderr and API_KEY not in results["process"].stderr
    assert not (tmp_path / "chat.db").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".chat.db")] == []


@pytest.mark.parametrize("change", [c[1] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES])
def test_a_dangling_tag_link_is_named_the_same_both_ways(tmp_path: Path, change: Any) -> None:
    """Found by the loader's foreign_key_check after the reader process sent every pair, then named by the
    checked re-read in this process."""
    data = _linked_sample()
    change(data)
    isar = write_app_file(tmp_path / "default.isar", data)
    results = {mode: _import(isar, tmp_path / "chat.db", mode) for mode in MODES}
    assert results["process"].returncode == results["inline"].returncode == 1
    assert results["process"].stderr == results["inline"].stderr


def test_orphans_are_refused_or_adopted_the_same_both_ways(tmp_path: Path) -> None:
    data = sample(b"blob")  # a message and a mode output without a thread
    data["mode_outputs"][1]["modeId"] = data["modes"][0]["id"]
    isar = write_app_file(tmp_path / "default.isar", data)
    refused = {mode: _import(isar, tmp_path / "chat.db", mode) for mode in MODES}
    assert refused["process"].returncode == 1 and refused["process"].stderr == refused["inline"].stderr
    assert "empty link" in refused["process"].stderr
    for mode in MODES:
        adopted = _import(isar, tmp_path / f"{mode}.db", mode, "--orphans", "adopt")
        assert adopted.returncode == 0, adopted.stderr
    assert _export(tmp_path / "process.db", tmp_path / "p") == _export(tmp_path / "inline.db", tmp_path / "i")
    names = os.listdir(tmp_path / "p")
    assert all(filecmp.cmp(tmp_path / "p" / n, tmp_path / "i" / n, shallow=False) for n in names)


def _verify(isar: Path, db: Path, mode: str, *args: str) -> Any:
    return run_module("tools.verify", isar, "--db", db, "--quiet", "--isar-reader", mode, *args)


def _without_timing(stdout: str) -> list[str]:
    """The summary without its last line (rows per second)."""
    return stdout.splitlines()[:-1]


def test_verify_finds_the_same_both_ways(tmp_path: Path) -> None:
    """tools.verify FILE.isar with the reader process (its checked read) matches, and names a changed row and a
    removed tag link, exactly as the in-process read does; the child's peak is in the report."""
    isar = write_app_file(tmp_path / "default.isar", rows_from_export(EXAMPLE))
    db = tmp_path / "chat.db"
    assert _import(isar, db, "inline").returncode == 0
    reports = {mode: tmp_path / f"{mode}.json" for mode in MODES}
    matched = {mode: _verify(isar, db, mode, "--samples", "20", "--report", str(reports[mode])) for mode in MODES}
    for result in matched.values():
        assert result.returncode == 0, result.stderr
        assert "database matches the export" in result.stdout
    assert _without_timing(matched["process"].stdout) == _without_timing(matched["inline"].stdout)
    assert json.loads(reports["process"].read_text())["details"]["reader_process"]["peak_rss_kb"] > 0
    assert "reader_process" not in json.loads(reports["inline"].read_text())["details"]
    conn = apsw.Connection(str(db))
    conn.execute("UPDATE messages SET text = 'changed' WHERE id = (SELECT max(id) FROM messages)")
    conn.execute("DELETE FROM message_tags WHERE message_id = (SELECT min(message_id) FROM message_tags)")
    conn.close()
    differ = {mode: _verify(isar, db, mode) for mode in MODES}
    assert differ["process"].returncode == differ["inline"].returncode == 1
    assert differ["process"].stderr == differ["inline"].stderr
    assert "text" in differ["process"].stderr and "message_tags" in differ["process"].stderr


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES])
def test_verify_refuses_a_dangling_tag_link_the_same_both_ways(tmp_path: Path, change: Any, expected: str) -> None:
    """Verify's read makes every check of the import's items(): the reader process refuses the pair itself."""
    data = _linked_sample()
    db = tmp_path / "chat.db"
    assert _import(write_app_file(tmp_path / "good.isar", data), db, "inline").returncode == 0
    change(data)
    isar = write_app_file(tmp_path / "default.isar", data)
    results = {mode: _verify(isar, db, mode) for mode in MODES}
    assert results["process"].returncode == results["inline"].returncode == 1
    assert results["process"].stderr == results["inline"].stderr
    assert results["process"].stderr == f"Error: {isar}: {expected}\n"
    assert "Traceback" not in results["process"].stderr


def _export_isar(isar: Path, out: Path, mode: str) -> Any:
    return run_module("tools.export_isar", isar, "--out", out, "--exported-at", AT, "--quiet", "--isar-reader", mode)


def test_export_isar_writes_the_same_bytes_both_ways(tmp_path: Path) -> None:
    isar = write_app_file(tmp_path / "default.isar", rows_from_export(EXAMPLE), type_type="Int")
    for mode in MODES:
        result = _export_isar(isar, tmp_path / mode, mode)
        assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(tmp_path / "process"))
    assert names == sorted(os.listdir(tmp_path / "inline")) == sorted(os.listdir(EXAMPLE))
    assert all(filecmp.cmp(tmp_path / "process" / n, tmp_path / "inline" / n, shallow=False) for n in names)


def test_export_isar_reads_every_collection_through_the_reader_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pychat_db.cli.export_isar import export_isar

    read = worker.ReaderProcess.read
    sent: list[str] = []

    def counted(self: worker.ReaderProcess, collection: Any) -> Any:
        sent.append(collection.name)
        return read(self, collection)

    monkeypatch.setattr(worker.ReaderProcess, "read", counted)
    isar = write_app_file(tmp_path / "default.isar", _linked_sample())
    export_isar(isar, tmp_path / "out", exported_at=AT, quiet=True, isar_reader="process")
    assert sent == [c.name for c in COLLECTIONS]
    sent.clear()
    export_isar(isar, tmp_path / "again", exported_at=AT, quiet=True, isar_reader="inline")
    assert sent == []


@pytest.mark.parametrize(("change", "options"), [c[1:3] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_export_isar_refuses_the_same_both_ways(tmp_path: Path, change: Any, options: dict[str, Any]) -> None:
    data = _linked_sample()
    change(data)
    isar = write_app_file(tmp_path / "default.isar", data, **options)
    results = {mode: _export_isar(isar, tmp_path / mode, mode) for mode in MODES}
    assert results["process"].returncode == results["inline"].returncode == 1
    assert results["process"].stderr == results["inline"].stderr
    assert "Traceback" not in results["process"].stderr and API_KEY not in results["process"].stderr
    assert not (tmp_path / "process").exists() and not (tmp_path / "inline").exists()


def test_a_child_that_cannot_open_the_file_says_why(tmp_path: Path) -> None:
    bogus = tmp_path / "copy.isar"
    bogus.write_bytes(b"not mdbx" * 1000)
    reader = worker.ReaderProcess()
    try:
        reader.begin(bogus, "default.isar", NaiveTimezone.REJECT, [THREADS])
        with pytest.raises(ExportError, match=r"^default\.isar: not a readable MDBX"):
            list(reader.read(THREADS))
    finally:
        reader.close()


def test_a_child_that_dies_is_reported_without_a_traceback(tmp_path: Path) -> None:
    isar = write_app_file(tmp_path / "default.isar", _linked_sample())
    reader = worker.ReaderProcess()
    try:
        reader.begin(isar, "default.isar", NaiveTimezone.REJECT, [THREADS])
        reader._proc.kill()
        reader._proc.wait()
        with pytest.raises(ExportError, match=r"^default\.isar: the reader process stopped \(exit status -9\)$"):
            list(reader.read(THREADS))
    finally:
        reader.close()
    assert reader._proc.returncode == -9


def test_the_child_leaves_ctrl_c_to_the_parent(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group; the parent stops the import (and the child) itself."""
    isar = write_app_file(tmp_path / "default.isar", _linked_sample())
    reader = worker.ReaderProcess()
    try:
        reader.begin(isar, "default.isar", NaiveTimezone.REJECT, [THREADS, MESSAGES])
        assert list(reader.read(THREADS))  # the child is past its start-up
        reader._proc.send_signal(signal.SIGINT)
        assert list(reader.read(MESSAGES))
    finally:
        reader.close()
    assert reader._proc.returncode == 0


def test_close_ends_the_child_whatever_its_state(tmp_path: Path) -> None:
    idle = worker.ReaderProcess()  # never told what to read: it ends at the end of its stdin
    idle.close()
    idle.close()
    assert idle._proc.returncode == 0
    isar = write_app_file(tmp_path / "default.isar", rows_from_export(EXAMPLE))
    busy = worker.ReaderProcess()  # asked for everything, read nothing: stopped, not waited for
    busy.begin(isar, "default.isar", NaiveTimezone.REJECT, COLLECTIONS)
    busy.close()
    assert busy._proc.returncode is not None
    with pytest.raises(ValueError, match="sends"):
        list(busy.read(MESSAGES))


def test_the_child_runs_this_code_with_its_malloc_settings() -> None:
    """The child imports this package (first on its PYTHONPATH) and keeps freed memory (glibc tunables),
    after what the user set."""
    user = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PYTHONPATH": "/elsewhere", "LANG": "C.UTF-8"}
    assert worker.child_environment(user) == {
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:" + worker._CHILD_MALLOC,
        "PYTHONPATH": os.pathsep.join([os.fspath(ROOT), "/elsewhere"]),
        "LANG": "C.UTF-8",
    }
    assert worker.child_environment({}) == {"GLIBC_TUNABLES": worker._CHILD_MALLOC, "PYTHONPATH": os.fspath(ROOT)}


def test_every_frame_kind_round_trips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The child's `serve` loop and the parent's `read`, over bytes: accepted rows, a refused object (the codec's
    FieldError, which the Isar reader itself never makes), the end, and an error."""
    isar = write_app_file(tmp_path / "default.isar", _linked_sample())
    refused = Item("default.isar: threads id=3", None, None, None, FieldError("name", "too odd"))

    asked: list[Any] = []

    def chunks(self: IsarSource, collection: Any, **options: Any) -> Any:
        asked.append(options)
        if collection is MESSAGES:
            raise ExportError(Problem("messages", "default.isar: Message id 7", "text", "broken"))
        yield Chunk("", 0, [], [(1, "a", b"\x00\xff", None)], None)
        yield Chunk(refused.where, 0, [], None, [refused])

    monkeypatch.setattr(IsarSource, "chunks", chunks)
    header = json.dumps([os.fspath(isar), "default.isar", "reject", True]) + "\n"  # verify's checked read
    out = io.BytesIO()
    worker.serve(io.BytesIO(f"{header}threads\nmessages\n".encode()), out)
    assert asked == [{"loader_checks_links": False}] * 2
    reader = worker.ReaderProcess.__new__(worker.ReaderProcess)
    reader.label, reader._reading = "default.isar", False
    reader._queue = ["threads", "messages"]
    reader._frames = io.BufferedReader(io.BytesIO(out.getvalue()))
    reader._start_pump()
    got = list(reader.read(THREADS))
    assert got[0] == [(1, "a", b"\x00\xff", None)]  # a blob comes as a view of its frame
    assert isinstance(got[1], Item) and got[1].where == refused.where
    assert got[1].error is not None and (got[1].error.field, got[1].error.reason) == ("name", "too odd")
    assert reader.peak_rss_kb is not None and reader.peak_rss_kb > 0  # serve() sent its process's peak
    with pytest.raises(ExportError) as raised:
        list(reader.read(MESSAGES))
    assert str(raised.value) == "default.isar: Message id 7: text: broken"


def test_frames_read_ahead_are_bounded_and_in_order() -> None:
    """The frame thread holds about `_AHEAD_BYTES` read ahead of the loader (or one larger frame), never more,
    and hands every frame over in order, then the end."""
    sizes = [300 << 10] * 6 + [3 << 20, 10]
    stream = b"".join(
        (n + 1).to_bytes(4, "little") + bytes([worker.ROWS]) + bytes([i]) * n for i, n in enumerate(sizes)
    )
    reader = worker.ReaderProcess.__new__(worker.ReaderProcess)
    reader.label = "default.isar"
    reader._proc = subprocess.Popen([sys.executable, "-c", ""])  # the child that sent them, since ended
    reader._stderr = io.BytesIO()  # type: ignore[assignment]
    reader._frames = io.BufferedReader(io.BytesIO(stream))
    reader._start_pump()
    deadline = time.monotonic() + 10
    while reader._ahead_bytes < worker._AHEAD_BYTES:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)  # had it gone on reading, it would hold more by now
    assert len(reader._ahead) == 4  # 1.2 MB: the fourth frame went past the bound, the fifth waits
    got = [reader._frame(THREADS) for _ in sizes]
    assert [(kind, len(payload), payload[:1]) for kind, payload in got] == [
        (worker.ROWS, n, bytes([i])) for i, n in enumerate(sizes)
    ]
    for _ in range(2):  # the end stays the end
        with pytest.raises(ExportError, match=r"the reader process stopped \(exit status 0\)"):
            reader._frame(THREADS)


def test_typed_batches_convert_as_the_codec_does(tmp_path: Path) -> None:
    """A typed batch (every row from the generated decoder) converted without validation gives what the
    codec's checked `convert_values` gives for the same values, for every collection and both encodings."""
    for type_type, file_data_type in (("String", "LongList"), ("Byte", "ByteList")):
        isar = write_app_file(
            tmp_path / f"{type_type}.isar",
            sample(b"\x00\x01\xfe\xff" * 100),
            type_type=type_type,
            file_data_type=file_data_type,
        )
        typed_rows = 0
        with open_isar(isar) as f:
            for collection in COLLECTIONS:
                codec = RowCodec(collection)
                for batch, typed in f.app.typed_batches(collection):
                    checked = [codec.convert_values(values, strict_utf8=True) for values in batch]
                    if typed:
                        assert codec.finish_typed_many(batch) == checked
                        typed_rows += len(batch)
        assert typed_rows >= 10  # the ordinary objects take the fast path


def test_sigterm_stops_the_import_and_leaves_nothing(tmp_path: Path) -> None:
    """`kill` (SIGTERM) mid-import stops it as Ctrl-C does: no database, no temporary file, and no private
    copy of the user's file left in the temporary directory (Python would otherwise skip every cleanup)."""
    from tests.support.exports import make_export

    isar = write_app_file(tmp_path / "default.isar", rows_from_export(make_export(tmp_path / "e", messages=40_000)))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    db = tmp_path / "chat.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.import", isar, "--db", db, "--quiet", "--isar-reader", "process"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": os.fspath(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".chat.db.import-") for p in tmp_path.iterdir()):  # the load has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == f"Error: interrupted; nothing written to {db}"
    assert not db.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".chat.db")] == []
    assert list(scratch.iterdir()) == []  # the private copy's directory is gone
