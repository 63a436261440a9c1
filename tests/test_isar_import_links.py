"""Import from an .isar file whose links dangle: the loader's foreign_key_check finds the pair (the
import's read does not look tag sources up), the checked re-read names it as the reader always did."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.commands import run_module
from tests.support.isar_writer import write_app_file
from tests.test_isar_roundtrip import API_KEY, sample

Data = dict[str, list[dict[str, Any]]]


def _linked_sample() -> Data:
    """The sample with every message and mode output linked (no orphan to refuse first)."""
    data = sample(b"blob")
    thread, mode = data["threads"][0]["id"], data["modes"][0]["id"]
    for message in data["messages"]:
        message["threadId"] = thread if message["threadId"] is None else message["threadId"]
    for output in data["mode_outputs"]:
        output["threadId"] = thread if output["threadId"] is None else output["threadId"]
        output["modeId"] = mode if output["modeId"] is None else output["modeId"]
    return data


def _add_tags(*pairs: tuple[int, int]) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        data["message_tags"].extend({"messageId": m, "tagId": t} for m, t in pairs)

    return change


CASES = [
    ("from-missing-message", _add_tags((8, 1)), "Message id 8: tags: link from an object that does not exist"),
    (
        "missing-message-before-missing-tag",
        _add_tags((8, 1), (2**62, 77)),
        "Message id 8: tags: link from an object that does not exist",
    ),
    ("to-missing-tag", _add_tags((7, 77)), "Message id 7: tags: link to Tag id 77, which does not exist"),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_import_refuses_a_dangling_tag_link_like_export_isar(
    tmp_path: Path, change: Callable[[Data], None], expected: str
) -> None:
    data = _linked_sample()
    change(data)
    path = write_app_file(tmp_path / "default.isar", data)
    db = tmp_path / "chat.db"
    imported = run_module("tools.import", path, "--db", db, "--quiet")
    exported = run_module("tools.export_isar", path, "--out", tmp_path / "out", "--quiet")
    assert imported.returncode == 1, imported.stderr
    assert exported.returncode == 1, exported.stderr
    error = imported.stderr.splitlines()[0]
    assert error == f"Error: {path}: {expected}", imported.stderr
    assert exported.stderr.splitlines()[0].endswith(f": {expected}")
    assert "Traceback" not in imported.stderr
    assert API_KEY not in imported.stderr + imported.stdout
    assert not db.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".chat.db")] == []


def test_import_of_linked_sample_succeeds(tmp_path: Path) -> None:
    path = write_app_file(tmp_path / "default.isar", _linked_sample())
    result = run_module("tools.import", path, "--db", tmp_path / "chat.db", "--quiet")
    assert result.returncode == 0, result.stderr
