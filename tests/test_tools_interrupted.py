"""`kill` (SIGTERM) stops export_isar, verify and export as it stops the import: exit 130, one `Error:
interrupted` line and no traceback (not even from a child process), nothing half-written, and no private
copy of the user's file left in the temporary directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pychat_db.interrupts import deferred_interrupts
from tests.support.commands import ROOT, run_module
from tests.support.exports import make_export
from tests.support.isar_writer import rows_from_export, write_app_file


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """40,000 messages as an export, the same as an .isar file, and the database imported from them."""
    root = tmp_path_factory.mktemp("interrupted")
    export = make_export(root / "export", messages=40_000)
    isar = write_app_file(root / "default.isar", rows_from_export(export))
    db = root / "chat.db"
    done = run_module("tools.import", export, "--db", db, "--quiet")
    assert done.returncode == 0, done.stderr
    return {"export": export, "isar": isar, "db": db}


def _start(scratch: Path, module: str, *args: str | os.PathLike[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(os.fspath, args)],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": os.fspath(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _terminate_when(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> str:
    """SIGTERM `proc` as soon as `ready()`; its stderr, once it has ended with 130."""
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    return err


def _copying(scratch: Path) -> Callable[[], bool]:
    """Whether the private copy of the .isar file is being written in `scratch`."""
    return lambda: any((d / "copy.isar").exists() for d in scratch.glob("pychat-isar-*"))


def _children(pid: int) -> list[str]:
    try:
        return [
            c
            for task in os.listdir(f"/proc/{pid}/task")
            for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        ]
    except OSError:  # it ended meanwhile
        return []


def test_export_isar_leaves_no_export_and_no_copy(data: dict[str, Path], tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "out"
    proc = _start(scratch, "tools.export_isar", data["isar"], "--out", out, "--quiet", "--isar-reader", "process")
    err = _terminate_when(proc, lambda: any(p.name.endswith(".partial") for p in tmp_path.iterdir()))
    assert err == f"Error: interrupted; nothing written to {out}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scratch"]  # no export, no staging directory
    assert list(scratch.iterdir()) == []  # no private copy


def test_verify_of_the_isar_file_leaves_no_copy(data: dict[str, Path], tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = _start(scratch, "tools.verify", data["isar"], "--db", data["db"], "--quiet", "--isar-reader", "process")
    err = _terminate_when(proc, _copying(scratch))
    assert err == "Error: interrupted; the verification did not finish\n"
    assert list(scratch.iterdir()) == []


def test_verify_stops_its_database_process_quietly(data: dict[str, Path], tmp_path: Path) -> None:
    """An export directory with --jobs 2: the forked process reading the database ends without a word."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = _start(scratch, "tools.verify", data["export"], "--db", data["db"], "--quiet", "--jobs", "2")
    err = _terminate_when(proc, lambda: bool(_children(proc.pid)))
    assert err == "Error: interrupted; the verification did not finish\n"


@pytest.mark.parametrize("program", [("tools.export",), ("pychat_db.cli", "export")], ids=["door", "pychat-db"])
def test_export_leaves_no_export(data: dict[str, Path], tmp_path: Path, program: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    proc = _start(tmp_path, *program, "--db", data["db"], "--out", out, "--quiet")
    err = _terminate_when(proc, lambda: any(p.name.endswith(".partial") for p in tmp_path.iterdir()))
    assert err == f"Error: interrupted; nothing written to {out}\n"
    assert list(tmp_path.iterdir()) == []


class _Stopped(Exception):
    pass


def test_deferred_interrupts_hold_a_signal_until_the_block_ends() -> None:
    def stop(signum: int, frame: object) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    steps = []
    try:
        with pytest.raises(_Stopped):
            with deferred_interrupts():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # a handler that could run, would have
                steps.append("made and recorded")
            steps.append("after the block")  # pragma: no cover - the signal is handled before
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert steps == ["made and recorded"]
