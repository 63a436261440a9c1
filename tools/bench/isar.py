"""`python -m tools.bench isar [--messages N,N,...]`: reading, exporting and importing an Isar 3 file.

For each size (default 100k and 1M messages) it generates a canonical export
(`tools.generate`: messages/100 threads up to 10k, 5% blobs, 50 tags, about 1.5
tag links per message, messages/10 mode outputs), writes the same data as an
app-shaped Isar 3 file with the test writer (`tests/support/isar_writer.py`,
`clibmdbx`), then runs, each as its own process:
  * read: every contract row of every collection through `pychat_db.isar`
    (decode only, nothing written): objects/s;
  * `python -m tools.export_isar FILE.isar --out DIR`;
  * `python -m tools.import FILE.isar --db DB` with its reader process, the same with
    `--isar-reader inline`, and `python -m tools.import EXPORT --db DB` (the NDJSON export
    of the same data): alternating, `--repeat` rounds (default 3; an even number balances what runs
    before each), each after `os.sync()` and 3 s; the table gives the median and every run, and
    each import's time before its loader starts (the private copy) and in it;
  * `python -m tools.verify FILE.isar --db DB`.
Wall time from the parent; peak RSS is the step's VmHWM plus that of its live children
(the reader process), polled every 20 ms (`tools.bench.import_.run_child`): for the
import with a reader process, the sum of both peaks.
Prints a Markdown table (stdout) and progress (stderr); asserts nothing.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.bench.common import new_parser
from tools.bench.import_ import Run, run_child

DEFAULT_SIZES = (100_000, 1_000_000)
SETTLE_SECONDS = 3.0  # after os.sync(), before each import

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


Step = tuple[str, Run, "int | None", "list[Run]"]  # name, the run (median), rows, every run


def _median(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.seconds)
    median = ordered[len(ordered) // 2]
    return Run(median.seconds, max(r.peak_rss_mb for r in runs), max((r.returncode for r in runs), key=abs))


def _loader_seconds(report: Path) -> float | None:
    """The import's own time from its `--report` (`seconds`: from the loader's start to the rename)."""
    try:
        return float(json.loads(report.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


Split = dict[str, list[tuple[float, float]]]  # import name -> (seconds before the loader, in it) per run


def bench_size(
    messages: int,
    work: Path,
    page_size: int,
    repeat: int = 3,
    split: Split | None = None,
    settle: float = SETTLE_SECONDS,
) -> list[Step]:
    """Run every step for one size; (step, run, rows, runs) per step. `split` receives, for each import,
    (seconds before the loader, seconds in the loader) per run."""
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
    steps: list[Step] = [("write .isar (test writer)", write, None, [write])]
    say("reading every row")
    read_log = work / "read.txt"
    read = run_child([py, "-c", READ_CODE, str(isar)], read_log)
    steps.append(("read rows (pychat_db.isar)", read, _rows(read_log), [read]))
    say("export_isar")
    exported = run_child([py, "-m", "tools.export_isar", str(isar), "--out", str(work / "out"), "--quiet"], log)
    steps.append(("export_isar --out", exported, None, [exported]))
    # The imports alternate, `repeat` rounds, each after os.sync() and a pause (the previous step's writes,
    # and the discards of the files it deleted, must not go on during the next one): the median of each
    # and every run. Even rounds run A B C, odd rounds A C B, so that over two rounds each import follows
    # each other one once: what ran before matters. In the fixed order A B C the reader-process import
    # always followed the NDJSON one, and its private copy took 2.5-3.5 s where the inline import's, right
    # after it, took 1.2-1.4 s (1M messages; likely the 1.8 GB of page cache a FILE.isar import frees
    # when it deletes its copy, which makes the next step's new pages cheap on this virtual machine).
    imports = [
        ("import FILE.isar (reader process)", [str(isar), "--isar-reader", "process"], "isar.db"),
        ("import FILE.isar --isar-reader inline", [str(isar), "--isar-reader", "inline"], "inline.db"),
        ("import EXPORT_DIR (NDJSON)", [str(export)], "ndjson.db"),
    ]
    runs: dict[str, list[Run]] = {name: [] for name, _, _ in imports}
    for round_ in range(repeat):
        for name, args, db in imports if round_ % 2 == 0 else [imports[0], imports[2], imports[1]]:
            say(f"{name}, run {round_ + 1} of {repeat}")
            (work / db).unlink(missing_ok=True)
            report = work / "report.json"
            report.unlink(missing_ok=True)
            os.sync()
            time.sleep(settle)
            run = run_child(
                [py, "-m", "tools.import", *args, "--db", str(work / db), "--quiet", "--report", str(report)], log
            )
            runs[name].append(run)
            loader = _loader_seconds(report)
            if split is not None and loader is not None:
                split.setdefault(name, []).append((run.seconds - loader, loader))
    for name, _, _ in imports:
        steps.append((name, _median(runs[name]), None, runs[name]))
    say("verify against .isar")
    verified = run_child([py, "-m", "tools.verify", str(isar), "--db", str(work / "isar.db"), "--quiet"], log)
    steps.append(("verify FILE.isar", verified, None, [verified]))
    for name, run, _, _ in steps:
        if run.returncode:
            raise SystemExit(f"Error: step {name!r} exited {run.returncode}, see {log}")
    size = isar.stat().st_size
    say(f"done (.isar {size / 1e6:.0f} MB)")
    return steps


def main(argv: Sequence[str] | None = None) -> int:
    parser = new_parser(
        "isar", "Time reading, exporting, importing and verifying an Isar 3 file (prints a Markdown table)."
    )
    parser.add_argument(
        "--messages", default=",".join(str(s) for s in DEFAULT_SIZES), help="comma-separated message counts"
    )
    parser.add_argument("--page-size", type=int, default=4096, choices=[4096, 16384], help="MDBX page size")
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one, deleted)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each import (alternating; the median)")
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS, help="pause before each import, s")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s.replace("_", "")) for s in args.messages.split(",") if s.strip()]
    except ValueError:
        parser.error("--messages: comma-separated integers")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    print("| messages | step | seconds (median) | every run, s | rows/s | peak RSS MB |")
    print("|---:|---|---:|---|---:|---:|")
    splits: dict[int, Split] = {}
    for messages in sizes:
        work = Path(tempfile.mkdtemp(prefix="bench-isar-", dir=args.work))
        splits[messages] = {}
        try:
            for name, run, rows, runs in bench_size(
                messages, work, args.page_size, max(1, args.repeat), splits[messages], max(0.0, args.settle)
            ):
                rate = f"{rows / run.seconds:,.0f}" if rows and run.seconds > 0 else ""
                every = ", ".join(f"{r.seconds:.2f}" for r in runs) if len(runs) > 1 else ""
                print(
                    f"| {messages:,} | {name} | {run.seconds:.2f} | {every} | {rate} | {run.peak_rss_mb:.0f} |",
                    flush=True,
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("Each import's wall time split at the loader's start (`--report` seconds): before it, start-up,")
    print("opening the source and, for FILE.isar, its private copy; medians of the runs, each run in parentheses.")
    print()
    print("| messages | import | before the loader, s | in the loader, s |")
    print("|---:|---|---:|---:|")
    for messages, split in splits.items():
        for name, pairs in split.items():
            before, inside = ([p[i] for p in pairs] for i in (0, 1))
            print(
                f"| {messages:,} | {name} | {statistics.median(before):.2f} ({', '.join(f'{b:.2f}' for b in before)}) "
                f"| {statistics.median(inside):.2f} ({', '.join(f'{x:.2f}' for x in inside)}) |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
