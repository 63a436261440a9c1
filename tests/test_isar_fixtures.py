"""The two real Isar 3 files (written by the real engine) decode to the facts in their README."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pychat_db.isar import DataType, open_isar, storage
from pychat_db.isar.storage import MdbxStore, copy_contents, private_copy
from tests.support.commands import ROOT, run_module

FIXTURES = Path(__file__).parent / "fixtures" / "isar"
PERSON = FIXTURES / "person-mit.isar"
MAINLIST = FIXTURES / "mainlist-apache2.isar"
SHA256 = {
    PERSON: "5195780d2161573d78e6fa2f8289c106d07e10ef53d976315029dc1f27ee4497",
    MAINLIST: "c097f2648c14de2e9c25646fdddbbb380bf7faf2001112d53d0f57f2a91ec17f",
}


@pytest.fixture
def user_copy(tmp_path: Path) -> Path:
    """A writable copy of person-mit.isar in tmp_path, standing for the user's file."""
    path = tmp_path / "default.isar"
    shutil.copyfile(PERSON, path)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    return path


def test_fixtures_are_the_published_files() -> None:
    for path, digest in SHA256.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        assert path.with_suffix(".LICENSE").is_file()


def test_person_file_maps_schema_and_objects() -> None:
    with open_isar(PERSON) as f:
        assert sorted(f.isar.map_info) == ["Person", "_info"]
        assert f.page_size == 4096
        schema = f.isar.collections["Person"]
        assert schema.version == 2
        assert [(p.name, p.type, p.offset) for p in schema.properties] == [("name", DataType.String, 2)]
        assert schema.links == ()
        objects = list(f.isar.objects("Person"))
    assert [id_ for id_, _ in objects] == [2, 3, 4, 5, 6]
    assert objects[0] == (2, {"name": "Person 75"})
    assert objects[-1] == (6, {"name": "Person 49"})


def test_mainlist_file_stored_order_and_values() -> None:
    with open_isar(MAINLIST) as f:
        assert f.page_size == 16384
        schema = f.isar.collections["MainList"]
        assert [(p.name, p.type.value) for p in schema.properties] == [
            ("board", "String"),
            ("orderBy", "Long"),
            ("siteType", "String"),
            ("text", "String"),
            ("type", "Long"),
            ("url", "String"),
        ]
        objects = dict(f.isar.objects("MainList"))
    assert sorted(objects) == list(range(415, 438))
    assert objects[415] == {
        "board": "notice",
        "orderBy": 1,
        "siteType": "Damoang",
        "text": "공지사항",
        "type": 0,
        "url": "https://damoang.net/notice",
    }
    assert (objects[437]["text"], objects[437]["type"], objects[437]["orderBy"]) == ("우주본당", 1, 42)


def test_user_file_keeps_bytes_and_mtime(user_copy: Path) -> None:
    before = (user_copy.read_bytes(), user_copy.stat().st_mtime_ns, sorted(os.listdir(user_copy.parent)))
    with open_isar(user_copy) as f:
        assert len(list(f.isar.objects("Person"))) == 5
    assert (user_copy.read_bytes(), user_copy.stat().st_mtime_ns, sorted(os.listdir(user_copy.parent))) == before
    assert not Path(f"{user_copy}-lck").exists()
    result = run_module("tools.export_isar", user_copy, "--inspect")
    assert result.returncode == 0, result.stderr
    assert (user_copy.read_bytes(), user_copy.stat().st_mtime_ns, sorted(os.listdir(user_copy.parent))) == before


def test_private_copy_is_private_and_removed(user_copy: Path) -> None:
    with private_copy(user_copy) as copy:
        assert stat.S_IMODE(copy.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(copy.path.stat().st_mode) == 0o600
        assert copy.path != user_copy and copy.path.read_bytes() == user_copy.read_bytes()
        assert not copy.recovered
        # the copy, libmdbx's lock file beside it, and the lock that marks the directory in use
        assert sorted(os.listdir(copy.directory)) == [".lock", "copy.isar", "copy.isar-lck"]
        directory = copy.directory
    assert not directory.exists()


HOLD_A_COPY = """
import sys, time
from pychat_db.isar.storage import private_copy
with private_copy(sys.argv[1], tmp_dir=sys.argv[2]) as copy:
    print(copy.directory, flush=True)
    time.sleep(600)
"""


def test_copies_left_by_a_killed_process_are_removed(user_copy: Path, tmp_path: Path) -> None:
    """`kill -9` runs no cleanup: the next private copy in the same place removes the copy it left (a whole
    copy of the user's file), never one whose process is alive or that this code did not make."""
    root = tmp_path / "scratch"
    root.mkdir()
    killed = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_COPY, user_copy, root], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    alive = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_COPY, user_copy, root], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert killed.stdout is not None and alive.stdout is not None
        left, held = Path(killed.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        killed.kill()
        killed.wait()
        foreign = root / "pychat-isar-not-ours"
        foreign.mkdir()
        young = root / "pychat-isar-young"
        young.mkdir()
        (young / ".lock").touch()  # unlocked, as a live copy is for an instant after it is made
        old = time.time() - 2 * storage.STALE_SECONDS
        for directory in (left, held, foreign):
            os.utime(directory, (old, old))
        assert left.is_dir() and held.is_dir()
        with private_copy(user_copy, tmp_dir=root) as copy:
            assert sorted(p.name for p in root.iterdir()) == sorted(
                [held.name, foreign.name, young.name, copy.directory.name]
            )
        assert storage.remove_stale_copies(root) == []
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("way", ["copy_file_range", "refused: shutil.copyfile"])
def test_copy_contents_copies_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str) -> None:
    """Through `copy_file_range` (clones where the file system can), or plainly where it is refused."""
    source = tmp_path / "big.isar"
    source.write_bytes(os.urandom(3 << 20) + MAINLIST.read_bytes())
    if way.startswith("refused"):

        def refuse(*args: object) -> int:
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    copy_contents(source, tmp_path / "copy.isar")
    assert (tmp_path / "copy.isar").read_bytes() == source.read_bytes()


def test_store_interface_lists_and_iterates_in_key_order(tmp_path: Path) -> None:
    copy = tmp_path / "c.isar"
    shutil.copyfile(MAINLIST, copy)
    with MdbxStore(copy) as store:
        maps = {m.name: m for m in store.maps()}
        assert maps["MainList"].integer_key and maps["MainList"].entries == 23
        assert not maps["_info"].integer_key
        keys = [k for k, _ in store.items("MainList")]
    assert keys == sorted(keys, key=lambda k: int.from_bytes(k, "little"))


@pytest.mark.parametrize("path", [PERSON, MAINLIST])
def test_inspect_real_files(path: Path) -> None:
    result = run_module("tools.export_isar", path, "--inspect")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "schema version 2" in out
    if path == PERSON:
        assert "MDBX page size 4096" in out
        assert "collection Person: 5 objects" in out
        assert "app mapping: refused: Person id 2: collection Person is not known to the app mapping" in out
        assert "property name" in out and "String" in out
    else:
        assert "MDBX page size 16384" in out
        assert "collection MainList: 23 objects" in out
        lines = [line.split()[1:3] for line in out.splitlines() if line.strip().startswith("property")]
        assert lines == [
            ["board", "String"],
            ["orderBy", "Long"],
            ["siteType", "String"],
            ["text", "String"],
            ["type", "Long"],
            ["url", "String"],
        ]
