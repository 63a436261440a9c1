"""Crashes of the import: `kill -9` at ten moments of its run, and power cuts.

* kill -9: `python -m tools.import --force` over an existing database is
  killed right after its k-th progress line, for ten k spread over the run
  (loading each collection, checking links, building indexes, the final checks,
  publishing). Afterwards the previous database is byte-for-byte untouched (or,
  if the kill came after the rename, the new one is complete), and the next run
  removes the stale temporary file it finds, says so, and succeeds.
* power cut: the import runs in-process over the power-loss VFS, which cuts the
  power at a point of its run and then drops, tears or keeps a random subset of
  the unsynced writes. The previous database is untouched and the next import,
  with the ordinary VFS, succeeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pychat_db.connection import VFS_ENVIRONMENT_VARIABLE
from tests.support.commands import ROOT
from tests.support.exports import make_export
from tests.support.faulty_vfs import check_db, db_digest, import_leftovers
from tests.support.powerloss_vfs import MODES, PowerLossVFS, install
from tests.test_faults_import import run_import


def spawn_import(export: Path, target: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != VFS_ENVIRONMENT_VARIABLE}
    return subprocess.Popen(
        [sys.executable, "-m", "tools.import", str(export), "--db", str(target), "--force"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("kill-import")
    return make_export(base / "big", messages=6000, seed=5), make_export(base / "previous", messages=50, seed=9)


def test_kill_9_at_ten_moments_of_an_import(exports: tuple[Path, Path], tmp_path: Path) -> None:
    big, small = exports
    reference = tmp_path / "reference.db"
    assert run_import(big, reference)[0] == 0
    expected = db_digest(reference)
    previous = tmp_path / "previous.db"
    assert run_import(small, previous)[0] == 0
    old_bytes = previous.read_bytes()

    # the progress lines of a full run: the moments to kill at
    directory = tmp_path / "out"
    directory.mkdir()
    target = directory / "chat.db"
    target.write_bytes(old_bytes)
    proc = spawn_import(big, target)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    lines = stderr.splitlines()
    assert len(lines) >= 12, lines
    moments = sorted({round(1 + i * (len(lines) - 2) / 9) for i in range(10)})
    assert len(moments) == 10

    outcomes = {"previous untouched": 0, "new complete": 0, "stale temp removed and reported": 0}
    for moment in moments:
        target.unlink()
        target.write_bytes(old_bytes)
        target.chmod(0o600)
        proc = spawn_import(big, target)
        assert proc.stderr is not None
        seen = []
        for _ in range(moment):
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL, f"after {seen[-1:]}: the import ended before the kill"
        if target.read_bytes() == old_bytes:
            outcomes["previous untouched"] += 1
            stale = import_leftovers(directory)
        else:  # killed after the rename: the new file must be whole
            assert db_digest(target) == expected, f"killed after {seen[-1]!r}: a changed target that is not the export"
            outcomes["new complete"] += 1
            stale = import_leftovers(directory)
        check_db(target).close()

        again = spawn_import(big, target)
        _, stderr = again.communicate(timeout=300)
        assert again.returncode == 0, stderr
        for name in {s.removesuffix("-journal").removesuffix("-wal").removesuffix("-shm") for s in stale}:
            assert f"removed {name}" in stderr, f"killed after {seen[-1]!r}: the stale {name} was not reported"
            outcomes["stale temp removed and reported"] += 1
        assert import_leftovers(directory) == []
        assert db_digest(target) == expected
    assert outcomes["previous untouched"] >= 5 and outcomes["stale temp removed and reported"] >= 5, outcomes
    print(f"kill -9 at progress lines {moments} of {len(lines)}: {outcomes}")


@pytest.fixture(scope="module")
def vfs() -> PowerLossVFS:
    return install("powerloss-import")


@pytest.mark.parametrize("sample", [12, pytest.param(None, marks=pytest.mark.slow)], ids=["sample", "every point"])
def test_power_cut_during_an_import_leaves_the_previous_database(
    exports: tuple[Path, Path], tmp_path: Path, vfs: PowerLossVFS, monkeypatch: pytest.MonkeyPatch, sample: int | None
) -> None:
    _, small = exports
    small_copy = make_export(tmp_path / "small-import", messages=60, seed=4)
    previous = tmp_path / "previous.db"
    assert run_import(small, previous)[0] == 0
    old_bytes = previous.read_bytes()
    directory = tmp_path / "out"
    directory.mkdir()
    target = directory / "chat.db"
    reference = tmp_path / "reference.db"
    assert run_import(small_copy, reference)[0] == 0
    expected = db_digest(reference)

    monkeypatch.setenv(VFS_ENVIRONMENT_VARIABLE, vfs.name)
    target.write_bytes(old_bytes)
    vfs.arm(None)
    assert run_import(small_copy, target, "--force") == (0, "")
    total = vfs.points
    trials = 0
    cuts = range(1, total + 1) if sample is None else sorted({1, total, *range(1, total, max(1, total // sample))})
    for cut in cuts:
        for mode in MODES:
            target.unlink()
            target.write_bytes(old_bytes)
            target.chmod(0o600)
            vfs.arm(cut_at=cut)
            code, stderr = run_import(small_copy, target, "--force")
            vfs.crash(mode, seed=cut)
            if code == 0:  # the cut came after the last database write: the import is complete
                assert db_digest(target) == expected
            else:
                assert code == 1 and "Traceback" not in stderr, stderr
                assert target.read_bytes() == old_bytes, f"cut at {cut}, {mode}: previous database changed"
            monkeypatch.delenv(VFS_ENVIRONMENT_VARIABLE)
            assert run_import(small_copy, target, "--force")[0] == 0
            assert db_digest(target) == expected
            assert import_leftovers(directory) == []
            monkeypatch.setenv(VFS_ENVIRONMENT_VARIABLE, vfs.name)
            trials += 1
    vfs.arm(None)
    print(f"power cuts during an import: {total} points, {trials} trials, previous database untouched in all")
    assert trials >= 30


def test_the_import_syncs_the_file_before_the_rename_and_the_directory_after(
    exports: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publish order that makes a reported success durable: fsync(temp), rename, fsync(directory)."""
    _, small = exports
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("rename", f"{os.fspath(src)} -> {os.fspath(dst)}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    directory = tmp_path / "out"
    directory.mkdir()
    target = directory / "chat.db"
    assert run_import(small, target) == (0, "")
    renames = [i for i, (kind, _) in enumerate(events) if kind == "rename" and str(target) in events[i][1]]
    assert len(renames) == 1, events
    at = renames[0]
    temp = events[at][1].split(" -> ")[0]
    assert ("fsync", temp) in events[:at], f"the file was not synced before the rename: {events}"
    assert ("fsync", str(directory)) in events[at + 1 :], f"the directory was not synced after the rename: {events}"
