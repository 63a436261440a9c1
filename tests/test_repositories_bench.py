"""`python -m tools.bench repos` runs end to end on a tiny database (a smoke test: no timing asserted)."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import run_module


def test_bench_repos_prints_its_table(tmp_path: Path) -> None:
    db = tmp_path / "bench.db"
    args = ["--threads", "20", "--messages", "400", "--runs", "3", "--write-runs", "1", "--inserts", "20"]
    result = run_module("tools.bench", "repos", *args, "--page", "5", "--db", db)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "database: 20 threads, 400 messages, 400 tag links; page size 5"
    assert "| operation | runs | median ms | p95 ms | min ms |" in lines
    operations = [line.split(" | ")[0].lstrip("| ") for line in lines if line.startswith("| ") and "---" not in line]
    assert operations[1:] == [
        "threads: first page",
        "threads: page in the middle (keyset)",
        "messages: first 5 of a thread, with tags",
        "messages: latest 5 of a thread, with tags",
        "messages: 5 after a cursor, with tags",
        "messages: get one, with tags",
        "messages: 20 inserts in one transaction",
    ]
    assert "building" in result.stderr
    # The database is reused, and the insert runs left it as it was.
    again = run_module("tools.bench", "repos", *args, "--page", "5", "--db", db, "--quiet")
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.splitlines()[1] == lines[1]


def test_bench_repos_usage_errors() -> None:
    result = run_module("tools.bench", "repos", "--threads", "0")
    assert result.returncode == 2
    assert "need --threads >= 1" in result.stderr
