"""`python -m tools.verify EXPORT_DIR --db PATH [--samples N] [--report FILE.json]`.

Proves that a database holds exactly an export (see `pychat_db.exchange.verify`):
row counts per collection, a content digest of every row compared row by row,
every link present, the manifest, and `--samples N` random messages compared
field by field with their tags. Exit 0 when everything matches; 1 on any
mismatch (each printed as `collection key: field: what differs`, the API key
never shown) or when the export or database cannot be read; 2 for usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from pychat_db.exchange.codec import NaiveTimezone
from pychat_db.exchange.reader import ExportError, Source
from pychat_db.exchange.verify import VerifyError, VerifyReport, verify
from pychat_db.isar.format import IsarFormatError
from pychat_db.isar.source import is_isar_file, open_source
from pychat_db.isar.storage import StorageError
from tools.cli import add_isar_reader, interrupt_on_sigterm

MAX_PRINTED = 50


def print_summary(report: VerifyReport) -> None:
    print(f"{'collection':<14} {'export':>10} {'database':>10} {'matching':>10}  result")
    for c in report.collections:
        print(
            f"{c.collection:<14} {c.export_rows:>10} {c.db_rows:>10} {c.matching:>10}  {'ok' if c.ok else 'MISMATCH'}"
        )
    if report.samples_requested:
        print(f"samples: {report.samples_checked} messages compared field by field, {report.sample_mismatches} differ")
    rate = report.rows / report.seconds if report.seconds > 0 else 0.0
    verdict = "database matches the export" if report.ok else "database DOES NOT match the export"
    print(f"{verdict}: {report.rows} rows in {report.seconds:.1f} s ({rate:,.0f} rows/s)")


def write_report(path: Path, report: VerifyReport, reader_rss_kb: int | None = None) -> None:
    content = report.to_json()
    if reader_rss_kb is not None:  # the .isar file was read by a reader process: its own peak
        content["reader_process"] = {"peak_rss_kb": reader_rss_kb}
    data = json.dumps(content, indent=2, ensure_ascii=False).encode() + b"\n"
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


@contextlib.contextmanager
def _open_source(path: Path, naive: NaiveTimezone, isar_reader: str = "auto") -> Iterator[Source | None]:
    """The Isar file's source when `path` is an .isar file (read through a private copy), else None.

    The file is decoded by a reader process (`pychat_db.isar.worker`, the import's) unless `isar_reader`
    is "inline", or "auto" without a second CPU.
    """
    if is_isar_file(path):
        with open_source(path, os.fspath(path), naive, reader=isar_reader, checked=True, notes=sys.stderr) as source:
            yield source
        return
    yield None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.verify",
        description="Prove that a database holds exactly an export.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("export", type=Path, metavar="EXPORT_DIR", help="export directory, or an .isar file")
    parser.add_argument("--db", required=True, type=Path, help="database file")
    parser.add_argument("--samples", type=int, default=0, help="random messages to compare field by field with tags")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample choice")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument(
        "--naive-timezone",
        choices=[z.value for z in NaiveTimezone],
        default=NaiveTimezone.REJECT.value,
        help="what a timestamp without offset means (use the import's setting)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="processes: 2 uses a second one (for an .isar file, the reader process of --isar-reader; "
        "else it reads the database), 1 does all in one",
    )
    add_isar_reader(parser, "reads the database and compares", " and --jobs is not 1")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.samples < 0:
        parser.error("--samples must be >= 0")
    try:
        isar_reader = "inline" if args.jobs <= 1 and args.isar_reader == "auto" else args.isar_reader
        with _open_source(args.export, NaiveTimezone(args.naive_timezone), isar_reader) as source:
            report = verify(
                args.export,
                args.db,
                samples=args.samples,
                seed=args.seed,
                naive=NaiveTimezone(args.naive_timezone),
                progress_stream=None if args.quiet else sys.stderr,
                source=source,
                jobs=args.jobs,
            )
            reader = getattr(source, "reader", None)
            reader_rss = reader.peak_rss_kb if reader is not None else None
    except (VerifyError, ExportError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except (IsarFormatError, StorageError) as exc:
        print(f"Error: {args.export}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted; the verification did not finish", file=sys.stderr)
        return 130
    for mismatch in report.mismatches[:MAX_PRINTED]:
        print(f"mismatch: {mismatch}", file=sys.stderr)
    if len(report.mismatches) > MAX_PRINTED:
        print(f"... and {len(report.mismatches) - MAX_PRINTED} more (see --report)", file=sys.stderr)
    for problem in report.manifest_problems:
        print(f"mismatch: {problem}", file=sys.stderr)
    print_summary(report)
    if args.report:
        write_report(args.report, report, reader_rss)
    if not report.ok:
        problems = [str(m) for m in report.mismatches] + report.manifest_problems
        first = problems[0] if problems else "the counts differ"
        print(f"Error: {len(problems)} mismatch(es); first: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    interrupt_on_sigterm()  # the command's own process only, not a caller of main()
    raise SystemExit(main())
