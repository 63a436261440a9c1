"""`python -m tools.bench import [--messages MAX | --sizes N,N,...]`: import, verify and sqlite-utils timed.

For each size (default 100k, 300k and 1M messages) it generates a canonical export
(`tools.generate`: 10k threads, 5% blobs of 2-50 KB, 50 tags, about 1.5 tag links
per message, messages/10 mode outputs) and runs, each as its own process:
  * our import: `python -m tools.import EXPORT --db DB` (every field validated,
    every check run, atomic publish);
  * our verify: `python -m tools.verify EXPORT --db DB`;
  * sqlite-utils: `sqlite-utils insert DB TABLE FILE --nl --batch-size 1000` per
    collection into a database already migrated to the same schema (STRICT tables,
    constraints, indexes), with `--convert` mapping the file's camelCase keys to the
    columns and base64 to bytes: without that conversion the same files do not fit the
    same schema, and with it the resulting database holds the same rows as ours.
Wall time comes from the parent, peak RSS from `os.wait4()` on each child (its own
ru_maxrss; for sqlite-utils the largest of its per-collection processes). Prints a
Markdown table (stdout) and progress (stderr); asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pychat_db.connection import connect
from pychat_db.exchange.contract import COLLECTIONS, Collection, Kind
from pychat_db.migrations import migrate
from tools.bench.common import cpu_model, new_parser

LADDER = (100_000, 300_000, 1_000_000)
THREADS = 10_000
TAGS = 50


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int


def _hwm_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a live process plus that of its live children, in KiB.

    Summing the children's peaks (tools.verify forks one) is an upper bound: pages a
    forked child shares with its parent count twice. 0 when /proc cannot be read.
    """
    total = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    total += int(line.split()[1])
                    break
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError):
        return total
    return total + sum(_hwm_kib(int(child)) for child in children)


def run_child(argv: Sequence[str], log: Path) -> Run:
    """Run `argv` to completion (output to `log`); its wall time and its own peak RSS.

    The peak is the child's VmHWM (plus its own children's), polled every 20 ms until it
    exits: exact for the exec'd program, where ru_maxrss from wait4 would also count this
    process's memory at fork.
    Where /proc is missing, falls back to wait4's ru_maxrss.
    """
    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=out)
        peak = 0
        while True:
            peak = max(peak, _hwm_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, (peak or usage.ru_maxrss) / 1024, proc.returncode)


def convert_code(collection: Collection) -> str:
    """sqlite-utils `--convert` body: file keys → columns, base64 → bytes, booleans → 0/1."""
    parts = []
    for f in collection.fields:
        value = f"row[{f.name!r}]"
        if f.kind is Kind.BYTES:
            value = f"(None if {value} is None else base64.b64decode({value}))"
        elif f.kind is Kind.BOOL:
            value = f"int({value})"
        parts.append(f"{f.column!r}: {value}")
    return "return {" + ", ".join(parts) + "}"


def sqlite_utils_load(export: Path, db: Path, log: Path) -> Run:
    """Load every collection file with `sqlite-utils insert --nl` into a freshly migrated `db`."""
    conn = connect(db)
    migrate(conn)
    conn.execute("PRAGMA journal_mode = DELETE").fetchall()  # sqlite-utils' own default journal
    conn.close()
    exe = Path(sys.executable).with_name("sqlite-utils")
    total = 0.0
    peak = 0.0
    for collection in COLLECTIONS:
        path = export / collection.canonical_file
        with path.open("rb") as head:
            if head.read(5) == b"null\n":
                continue
        argv = [
            str(exe),
            "insert",
            str(db),
            collection.table,
            str(path),
            "--nl",
            "--batch-size",
            "1000",
            "--import",
            "base64",
            "--convert",
            convert_code(collection),
        ]
        run = run_child(argv, log)
        if run.returncode != 0:
            return Run(total + run.seconds, max(peak, run.peak_rss_mb), run.returncode)
        total += run.seconds
        peak = max(peak, run.peak_rss_mb)
    return Run(total, peak, 0)


def export_rows(export: Path) -> int:
    manifest = json.loads((export / "manifest.json").read_text())
    return sum(int(c["rows"]) for c in manifest["collections"].values())


def machine() -> str:
    cpu = cpu_model(platform.processor() or "unknown CPU")
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def _sizes(args: argparse.Namespace) -> list[int]:
    if args.sizes:
        return [int(s.replace("_", "")) for s in args.sizes.split(",")]
    sizes = [n for n in LADDER if n <= args.messages]
    if args.messages not in sizes:
        sizes.append(args.messages)
    return sizes


class StepFailed(Exception):
    """A step exited non-zero: `Error: {what} failed (see LOG)`."""


def checked(run: Run, what: str) -> Run:
    """`run`, unless it exited non-zero: then StepFailed(`what`)."""
    if run.returncode != 0:
        raise StepFailed(what)
    return run


def bench_size(n: int, args: argparse.Namespace, log: Path) -> list[tuple[int, int, str, Run]]:
    """Generate an export of `n` messages, then time the steps on it: (messages, rows, step, run) each."""
    py = sys.executable
    base = args.workdir / f"m{n}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    export = base / "export"
    print(f"[{n:,} messages] generating {export}", file=sys.stderr)
    generate = [
        *(py, "-m", "tools.generate", "--out", str(export), "--messages", str(n), "--threads", str(THREADS)),
        *("--tags", str(TAGS), "--seed", str(args.seed), "--blob-ratio", "0.05", "--blob-size", "2048-51200"),
        "--quiet",
    ]
    gen = checked(run_child(generate, log), f"generating {n} messages")
    rows = export_rows(export)
    size_mb = sum(p.stat().st_size for p in export.iterdir()) / 1e6
    results = [(n, rows, f"generate ({size_mb:,.0f} MB)", gen)]
    db = base / "chat.db"
    timed: dict[str, Run] = {}
    for step in ("import", "verify"):
        print(f"[{n:,} messages] {step}", file=sys.stderr)
        run = run_child([py, "-m", f"tools.{step}", str(export), "--db", str(db), "--quiet"], log)
        timed[step] = checked(run, f"{step} of {n} messages")
        results.append((n, rows, step, timed[step]))
    imp, ver = timed["import"], timed["verify"]
    results.append(
        (n, rows, "import + verify", Run(imp.seconds + ver.seconds, max(imp.peak_rss_mb, ver.peak_rss_mb), 0))
    )
    if not args.no_sqlite_utils:
        print(f"[{n:,} messages] sqlite-utils insert --nl", file=sys.stderr)
        su = sqlite_utils_load(export, base / "sqlite_utils.db", log)
        results.append((n, rows, "sqlite-utils insert --nl", checked(su, f"sqlite-utils on {n} messages")))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = new_parser("import", "Time our import, import + verify and sqlite-utils on generated exports.")
    parser.add_argument("--messages", type=int, default=1_000_000, help="largest size: runs 100k, 300k, 1M up to it")
    parser.add_argument("--sizes", help="comma-separated message counts instead, e.g. 100000,300000")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pychat-bench"), help="exports and databases")
    parser.add_argument("--keep", action="store_true", help="keep exports and databases afterwards")
    parser.add_argument("--no-sqlite-utils", action="store_true", help="skip the sqlite-utils comparison")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    args = parser.parse_args(argv)
    sizes = _sizes(args)
    if any(n < 1 for n in sizes):
        parser.error("sizes must be >= 1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    log = args.workdir / "bench.log"
    results: list[tuple[int, int, str, Run]] = []
    print(f"machine: {machine()}", file=sys.stderr)
    try:
        for n in sizes:
            results += bench_size(n, args, log)
    except StepFailed as exc:
        print(f"Error: {exc} failed (see {log})", file=sys.stderr)
        return 1
    print(f"machine: {machine()}")
    print()
    print("| messages | rows (all files) | step | seconds | rows/s | peak RSS MB | sqlite-utils s / this s |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for n, rows, step, run in results:
        reference = next((r for m, _, s, r in results if m == n and s.startswith("sqlite-utils")), None)
        compared = reference is not None and not step.startswith(("generate", "sqlite"))
        ratio = f"{reference.seconds / run.seconds:.2f}x" if reference is not None and compared else ""
        rate = rows / run.seconds if run.seconds > 0 else 0.0
        print(f"| {n:,} | {rows:,} | {step} | {run.seconds:.1f} | {rate:,.0f} | {run.peak_rss_mb:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
