"""`python -m tools.bench isar [--messages N,N,...]`: reading, exporting and importing an Isar 3 file.

For each size (default 100k and 1M messages) it generates a canonical export
(`tools.generate`: messages/100 threads up to 10k, 5% blobs, 50 tags, about 1.5
tag links per message, messages/10 mode outputs), writes the same data as an
app-shaped Isar 3 file with the test writer (`tests/support/isar_writer.py`,
`clibmdbx`), then runs, each as its own process:
  * read: every contract row of every collection through `pychat_db.isar`
    (decode only, nothing written): objects/s;
  * `python -m tools.export_isar FILE.isar --out DIR`;
  * `python -m tools.import FILE.isar --db DB` beside `python -m tools.import EXPORT --db DB`
    (the NDJSON export of the same data);
  * `python -m tools.verify FILE.isar --db DB`.
Wall time from the parent, peak RSS from `os.wait4()` (the child's own ru_maxrss).
Prints a Markdown table (stdout) and progress (stderr); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tools.bench.import_ import Run, run_child

DEFAULT_SIZES = (100_000, 1_000_000)

READ_CODE = """
import sys
from pychat_db.exchange.contract import COLLECTIONS
from pychat_db.isar import open_isar
n = 0
with open_isar(sys.argv[1]) as f:
    for c in COLLECTIONS:
        for _ in f.app.rows(c):
            n += 1
print(n)
"""
WRITE_CODE = """
import sys
from tests.support.isar_writer import export_to_isar
export_to_isar(sys.argv[1], sys.argv[2], page_size=int(sys.argv[3]))
"""


def _rows(log: Path) -> int:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip().isdigit()]
    return int(lines[-1]) if lines else 0


def bench_size(messages: int, work: Path, page_size: int) -> list[tuple[str, Run, int | None]]:
    """Run every step for one size; (step, run, rows) per step."""
    py = sys.executable
    export = work / "export"
    isar = work / "default.isar"
    log = work / "log.txt"
    threads = max(1, min(10_000, messages // 100))

    def say(text: str) -> None:
        print(f"[{messages:,}] {text}", file=sys.stderr, flush=True)

    say("generating the export")
    gen = run_child(
        [
            py,
            "-m",
            "tools.generate",
            "--out",
            str(export),
            "--messages",
            str(messages),
            "--threads",
            str(threads),
            "--quiet",
        ],
        log,
    )
    if gen.returncode:
        raise SystemExit(f"Error: tools.generate failed, see {log}")
    say("writing the Isar file")
    write = run_child([py, "-c", WRITE_CODE, str(export), str(isar), str(page_size)], log)
    if write.returncode:
        raise SystemExit(f"Error: the Isar writer failed, see {log}")
    steps: list[tuple[str, Run, int | None]] = [("write .isar (test writer)", write, None)]
    say("reading every row")
    read_log = work / "read.txt"
    read = run_child([py, "-c", READ_CODE, str(isar)], read_log)
    steps.append(("read rows (pychat_db.isar)", read, _rows(read_log)))
    say("export_isar")
    steps.append(
        (
            "export_isar --out",
            run_child([py, "-m", "tools.export_isar", str(isar), "--out", str(work / "out"), "--quiet"], log),
            None,
        )
    )
    say("import from .isar")
    steps.append(
        (
            "import FILE.isar",
            run_child([py, "-m", "tools.import", str(isar), "--db", str(work / "isar.db"), "--quiet"], log),
            None,
        )
    )
    say("import from NDJSON")
    steps.append(
        (
            "import EXPORT_DIR (NDJSON)",
            run_child([py, "-m", "tools.import", str(export), "--db", str(work / "ndjson.db"), "--quiet"], log),
            None,
        )
    )
    say("verify against .isar")
    steps.append(
        (
            "verify FILE.isar",
            run_child([py, "-m", "tools.verify", str(isar), "--db", str(work / "isar.db"), "--quiet"], log),
            None,
        )
    )
    for name, run, _ in steps:
        if run.returncode:
            raise SystemExit(f"Error: step {name!r} exited {run.returncode}, see {log}")
    size = isar.stat().st_size
    say(f"done (.isar {size / 1e6:.0f} MB)")
    return steps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench isar",
        description="Time reading, exporting, importing and verifying an Isar 3 file (prints a Markdown table).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--messages", default=",".join(str(s) for s in DEFAULT_SIZES), help="comma-separated message counts"
    )
    parser.add_argument("--page-size", type=int, default=4096, choices=[4096, 16384], help="MDBX page size")
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one, deleted)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s.replace("_", "")) for s in args.messages.split(",") if s.strip()]
    except ValueError:
        parser.error("--messages: comma-separated integers")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    print("| messages | step | seconds | rows/s | peak RSS MB |")
    print("|---:|---|---:|---:|---:|")
    for messages in sizes:
        work = Path(tempfile.mkdtemp(prefix="bench-isar-", dir=args.work))
        try:
            for name, run, rows in bench_size(messages, work, args.page_size):
                rate = f"{rows / run.seconds:,.0f}" if rows and run.seconds > 0 else ""
                print(f"| {messages:,} | {name} | {run.seconds:.1f} | {rate} | {run.peak_rss_mb:.0f} |", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
