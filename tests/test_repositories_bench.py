"""`python -m tools.bench repos` runs end to end on a tiny database (a smoke test: no timing asserted)."""

from __future__ import annotations

import re
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


def test_bench_repos_async_prints_its_table(tmp_path: Path) -> None:
    db = tmp_path / "bench.db"
    args = ["--threads", "20", "--messages", "400", "--runs", "3", "--inserts", "20", "--page", "5", "--db", db]
    args += ["--async", "--concurrency", "1,3", "--readers", "2", "--idle", "0.05"]
    result = run_module("tools.bench", "repos", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "database: 20 threads, 400 messages, 400 tag links; page size 5"
    header = (
        "| page | concurrent readers | async p50 ms | async p99 ms | async pages/s | CPU ms/page "
        "| sync p50 ms | sync p99 ms | async/sync p50 |"
    )
    assert header in lines
    cells = [line.split(" | ")[:2] for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [(name.lstrip("| "), readers) for name, readers in cells] == [
        ("threads page", "1"),
        ("messages page (5, with tags)", "1"),
        ("threads page", "1 + writer"),
        ("threads page", "3 + writer"),
        ("messages page (5, with tags)", "1 + writer"),
        ("messages page (5, with tags)", "3 + writer"),
    ]
    assert any(line.startswith("inserts (20 messages with tags, one create each): async ") for line in lines)
    assert any(re.match(r"load average \(1 min\) before: [\d.]+, after: [\d.]+: ", line) for line in lines), lines
    beside = [line for line in lines if line.startswith("threads pages while another task held a write transaction")]
    assert len(beside) == 1 and re.search(r"\): [\d,]+ read, p50 [\d.]+ ms, longest [\d.]+ ms$", beside[0]), beside
    stalls = [line for line in lines if line.startswith("- ")]
    assert [re.sub(r" \(\d+ ms\)$", "", line.split(": ")[0]) for line in stalls] == [
        "- while inserting",
        "- with nothing running",
        "- while one call read the 20 inserted messages with their tags",
        "- while they were read 5 at a time",
    ], stalls
    assert all(re.search(r"; \d+ of \d+ ticks over 5 ms$", line) for line in stalls), stalls
    # The writer's and the inserts' messages are gone again: the database is as it was.
    again = run_module("tools.bench", "repos", *args, "--quiet")
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.splitlines()[1] == lines[1]


def test_bench_repos_async_usage_errors() -> None:
    result = run_module("tools.bench", "repos", "--async", "--concurrency", "0")
    assert result.returncode == 2
    assert "every --concurrency >= 1" in result.stderr
