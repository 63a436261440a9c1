"""`pychat-db` and the `python -m tools.X` doors: one parser per command, one way of talking."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pychat_db.cli import COMMANDS
from tests.support.commands import run_module

ROOT = Path(__file__).resolve().parent.parent
DOORS = {
    "import": "tools.import",
    "verify": "tools.verify",
    "export": "tools.export",
    "export-isar": "tools.export_isar",
    "generate": "tools.generate",
    "dual-write-smoke": "tools.dual_write_smoke",
    "migrate": "pychat_db.migrate",
}


def test_every_command_has_a_door() -> None:
    assert set(DOORS) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(DOORS))
def test_door_and_subcommand_share_one_parser(command: str) -> None:
    door = run_module(DOORS[command], "--help")
    sub = run_module("pychat_db.cli", command, "--help")
    assert door.returncode == sub.returncode == 0, door.stderr + sub.stderr
    # the same text but for the program name (argparse wraps lines by its length, so compare words)
    assert door.stdout.replace(f"python -m {DOORS[command]}", "PROG").split() == (
        sub.stdout.replace(f"pychat-db {command}", "PROG").split()
    )
    assert "(default: None)" not in sub.stdout and "(default: False)" not in sub.stdout


def test_top_level_help_lists_every_command() -> None:
    done = run_module("pychat_db.cli", "--help")
    assert done.returncode == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", done.stdout, re.M), name


def test_usage_errors_exit_2() -> None:
    assert run_module("pychat_db.cli").returncode == 2
    assert run_module("pychat_db.cli", "import").returncode == 2  # SOURCE and --db are required


def test_runtime_lock_pins_the_dev_lock_versions() -> None:
    def pins(name: str) -> dict[str, str]:
        text = (ROOT / "requirements" / name).read_text()
        return dict(re.findall(r"^([a-z0-9][a-z0-9_.-]*)==(\S+)", text, re.M))

    runtime, dev = pins("runtime.txt"), pins("dev.txt")
    assert runtime and {name: dev.get(name) for name in runtime} == runtime


@pytest.mark.parametrize("command", ["import", "verify", "export", "export-isar"])
def test_data_commands_take_report(command: str) -> None:
    done = run_module("pychat_db.cli", command, "--help")
    assert "--report FILE.json" in done.stdout


def test_every_data_command_writes_one_report_schema(tmp_path: Path) -> None:
    from tests.support.isar_writer import rows_from_export, write_app_file

    sample = ROOT / "examples" / "export"
    isar = write_app_file(tmp_path / "default.isar", rows_from_export(sample))
    runs = {
        "import": ("import", sample, "--db", tmp_path / "chat.db"),
        "verify": ("verify", sample, "--db", tmp_path / "chat.db"),
        "export": ("export", "--db", tmp_path / "chat.db", "--out", tmp_path / "out"),
        "export-isar": ("export-isar", isar, "--out", tmp_path / "out-isar"),
    }
    documents = {}
    for name, args in runs.items():
        report = tmp_path / f"{name}.json"
        done = run_module("pychat_db.cli", *args, "--quiet", "--report", report)
        assert done.returncode == 0, done.stderr
        assert report.stat().st_mode & 0o777 == 0o600
        documents[name] = json.loads(report.read_text())
    keys = {name: sorted(doc) for name, doc in documents.items()}
    assert len({tuple(k) for k in keys.values()}) == 1, keys
    for name, doc in documents.items():
        assert doc["command"] == name and doc["ok"] is True and doc["schema"] == 1
        assert doc["rows"] == 5307, name
        assert all(re.fullmatch(r"[a-z_]+", key) for key in doc), doc
        for entry in doc["collections"].values():
            assert all(re.fullmatch(r"[a-z_]+", key) for key in entry), entry


@pytest.mark.parametrize(
    "command",
    [
        ("verify", ROOT / "examples" / "export", "--db"),
        ("export", "--out", "out", "--db"),
        ("migrate", "status", "--db"),
        ("migrate", "up", "--db"),
    ],
    ids=lambda c: " ".join(str(p) for p in c[:2] if not str(p).startswith("/")),
)
def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are my notes, not SQLite\n" * 200)
    before = bogus.read_bytes()
    done = run_module("pychat_db.cli", *command, bogus, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, f"Error: {bogus}: file is not a database\n")
    assert bogus.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # nothing written beside it


@pytest.mark.parametrize("command", ["import", "verify", "export-isar"])
def test_an_empty_isar_file_is_one_line(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "default.isar"
    empty.touch()
    args = ("--inspect",) if command == "export-isar" else ("--db", tmp_path / "chat.db")
    done = run_module("pychat_db.cli", command, empty, *args, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, f"Error: {empty}: an empty file, not an Isar 3 database\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.isar"]
