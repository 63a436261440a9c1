"""python -m tools.bench import: a smoke run at a tiny size (the table's shape, not its numbers)."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import run_module


def test_bench_import_prints_its_table(tmp_path: Path) -> None:
    done = run_module("tools.bench", "import", "--sizes", "300", "--workdir", tmp_path / "bench")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 300 |")]
    steps = [row.split("|")[3].strip() for row in rows]
    assert steps[0].startswith("generate (") and steps[1:] == [
        "import",
        "verify",
        "import + verify",
        "sqlite-utils insert --nl",
    ]
    for row in rows:
        seconds, rate, rss = (float(cell.replace(",", "")) for cell in row.split("|")[4:7])
        assert seconds > 0 and rate > 0 and 5 < rss < 1000
    assert rows[1].split("|")[7].strip().endswith("x")  # import compared with sqlite-utils
    assert list((tmp_path / "bench").iterdir()) == [tmp_path / "bench" / "bench.log"]  # data removed


def test_bench_isar_prints_its_tables(tmp_path: Path) -> None:
    """`tools.bench isar` at a tiny size: every step, then each import split at the loader's start."""
    done = run_module("tools.bench", "isar", "--messages", "300", "--repeat", "1", "--settle", "0", "--work", tmp_path)
    assert done.returncode == 0, done.stderr
    imports = [
        "import FILE.isar (reader process)",
        "import FILE.isar --isar-reader inline",
        "import EXPORT_DIR (NDJSON)",
    ]
    tables = done.stdout.split("| messages | import |")
    assert len(tables) == 2
    steps = [row.split("|")[2].strip() for row in tables[0].splitlines() if row.startswith("| 300 |")]
    assert steps == [
        "write .isar (test writer)",
        "read rows (pychat_db.isar)",
        "export_isar --out",
        *imports,
        "verify FILE.isar",
    ]
    split = [row.split("|")[2:5] for row in tables[1].splitlines() if row.startswith("| 300 |")]
    assert [name.strip() for name, _, _ in split] == imports
    for _, before, inside in split:
        assert float(before.split()[0]) >= 0 and float(inside.split()[0]) > 0
    assert list(tmp_path.iterdir()) == []  # data removed


def test_bench_lists_import() -> None:
    done = run_module("tools.bench")
    assert done.returncode == 2
    assert "import" in done.stderr and "sqlite-utils" in done.stderr


def test_bench_memory_prints_a_row_per_pause() -> None:
    """`tools.bench memory` on 8 MiB: one row per pause, with rates; bad arguments are usage errors."""
    done = run_module("tools.bench", "memory", "--gib", str(8 / 1024), "--pauses", "0,0.1")
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "round" not in line]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [("1", "0"), ("2", "0.1")]
    for row in rows:
        assert float(row[2]) > 0 and float(row[4]) > 0
    bad = run_module("tools.bench", "memory", "--pauses", "soon")
    assert bad.returncode == 2 and "--pauses" in bad.stderr
