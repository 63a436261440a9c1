"""Input that is not an export: an empty or a mistyped directory, or no such path, is refused by import and verify.

Read as zero rows, such a directory would import as a success (an empty database) and verify would then
agree with it. The refusal is one line naming the path and the files an export holds, exit 1, nothing written.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pychat_db.exchange.reader import ExportDirectory, ExportError
from pychat_db.legacy.store import LegacyStore, LegacyStoreError
from tests.support.commands import ROOT, run_module

EXPECTED = (
    "manifest.json, configuration.json, threads.ndjson, modes.ndjson, tags.ndjson, messages.ndjson, "
    "mode_outputs.ndjson, message_tags.ndjson (a collection may be NAME.json, one JSON array, instead)"
)
EMPTY = f"an empty directory, not an export: expected the export format's files: {EXPECTED}"
NOT_EXPORT = f"not an export directory: it holds none of the export format's files: {EXPECTED}"
MISSING = "no such file or directory"


def _empty(tmp: Path) -> Path:
    path = tmp / "empty"
    path.mkdir()
    return path


def _docs(tmp: Path) -> Path:
    """A copy of this repository's docs/: the mistyped directory of the issue."""
    return Path(shutil.copytree(ROOT / "docs", tmp / "docs"))


def _other_json(tmp: Path) -> Path:
    """JSON and NDJSON files, none of them a file of the export format."""
    path = tmp / "project"
    path.mkdir()
    (path / "package.json").write_text('{"name": "x"}\n')
    (path / "thread.ndjson").write_text('{"id": 1}\n')  # not threads.ndjson
    (path / "Messages.json").write_text("[]\n")  # names are case-sensitive
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "migration_export"  # never created


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty": (_empty, EMPTY),
    "docs": (_docs, NOT_EXPORT),
    "other json": (_other_json, NOT_EXPORT),
    "missing": (_missing, MISSING),
}


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", CASES)
def test_import_refuses_it_and_writes_nothing(tmp_path: Path, case: str) -> None:
    make, reason = CASES[case]
    source = make(tmp_path)
    db = tmp_path / "chat.db"
    before = _snapshot(tmp_path)
    result = run_module("tools.import", source, "--db", db, "--quiet")
    assert result.returncode == 1
    assert result.stderr == f"Error: {source}: {reason}\n"
    assert result.stdout == ""
    assert not db.exists()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("case", CASES)
def test_verify_refuses_it_against_an_empty_database(tmp_path: Path, db_path: Path, case: str) -> None:
    """The database is empty: read as zero rows, the directory would 'match' it."""
    make, reason = CASES[case]
    source = make(tmp_path)
    before = _snapshot(tmp_path)
    result = run_module("tools.verify", source, "--db", db_path, "--quiet", "--samples", "5")
    assert result.returncode == 1
    assert result.stderr == f"Error: {source}: {reason}\n"
    assert "matches" not in result.stdout
    assert _snapshot(tmp_path) == before


def test_a_directory_with_only_a_configuration_is_still_an_export(tmp_path: Path) -> None:
    (tmp_path / "configuration.json").write_text("{}")
    assert ExportDirectory(tmp_path).files["configuration"] == tmp_path / "configuration.json"


@pytest.mark.parametrize("case", CASES)
def test_the_reader_names_the_path_and_what_was_expected(tmp_path: Path, case: str) -> None:
    make, reason = CASES[case]
    source = make(tmp_path)
    with pytest.raises(ExportError) as caught:
        ExportDirectory(source)
    assert str(caught.value) == f"{source}: {reason}"


def test_the_legacy_store_opens_an_empty_directory_as_an_empty_store_and_refuses_docs(tmp_path: Path) -> None:
    """An app's store directory created ahead (empty) is a new store; one holding other files is refused, so
    that saving over it never replaces files that are not the store's."""
    empty = _empty(tmp_path)
    store = LegacyStore.open(empty)
    assert store.path == empty
    docs = _docs(tmp_path)
    with pytest.raises(LegacyStoreError, match="not an export directory"):
        LegacyStore.open(docs)
