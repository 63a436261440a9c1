"""`python -m tools.import EXPORT_DIR --db PATH`: load an export (or an Isar file) into a new database.

Every field is validated and converted (see `pychat_db.exchange.reader`); the
database is built beside PATH and renamed into place only when every check
passed (see `pychat_db.exchange.loader`). Exit codes: 0 imported, 1 data refused
or a check failed (nothing written), 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from pychat_db.exchange.codec import NaiveTimezone
from pychat_db.exchange.loader import ImportFailed, ImportOptions, ImportReport, NoProgress, RejectWriter, import_source
from pychat_db.exchange.reader import ExportDirectory, ExportError, Source
from tools.cli import add_isar_reader, interrupt_on_sigterm

PROG = "python -m tools.import"
PLAIN_EVERY_SECONDS = 2.0
BAR_EVERY_SECONDS = 0.1
BAR_WIDTH = 24


class TerminalProgress:
    """A bar per collection (rows, MB/s) redrawn in place on a terminal."""

    def __init__(self, stream: IO[str], source: Source) -> None:
        self.stream = stream
        self.source = source
        self.name = ""
        self.total: int | None = None
        self.started = 0.0
        self.last = 0.0

    def begin(self, collection: str, total_bytes: int | None) -> None:
        self.name, self.total, self.started, self.last = collection, total_bytes, time.monotonic(), 0.0
        self._draw(0, 0)

    def update(self, rows: int, nbytes: int) -> None:
        now = time.monotonic()
        if now - self.last >= BAR_EVERY_SECONDS:
            self.last = now
            self._draw(rows, nbytes)

    def _draw(self, rows: int, nbytes: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        fraction = min(nbytes / self.total, 1.0) if self.total else 0.0
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(
            f"\r{self.name:<13} [{bar}] {fraction:4.0%} {rows:>11,} rows {nbytes / 1e6 / elapsed:7.1f} MB/s\x1b[K"
        )
        self.stream.flush()

    def end(self, collection: str, rows: int, seconds: float) -> None:
        nbytes = self.total or 0
        self.stream.write(
            f"\r{collection:<13} [{'#' * BAR_WIDTH}] 100% {rows:>11,} rows "
            f"{nbytes / 1e6 / max(seconds, 1e-9):7.1f} MB/s {seconds:6.1f} s\x1b[K\n"
        )
        self.stream.flush()

    def phase(self, text: str) -> None:
        self.stream.write(f"{text}\n")
        self.stream.flush()


class PlainProgress:
    """Plain lines when stderr is not a terminal: one at each start and end, one every few seconds."""

    def __init__(self, stream: IO[str], every: float = PLAIN_EVERY_SECONDS) -> None:
        self.stream = stream
        self.every = every
        self.name = ""
        self.total: int | None = None
        self.started = 0.0
        self.last = 0.0

    def _say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def begin(self, collection: str, total_bytes: int | None) -> None:
        self.name, self.total = collection, total_bytes
        self.started = self.last = time.monotonic()
        size = f" ({total_bytes / 1e6:.1f} MB)" if total_bytes else ""
        self._say(f"{collection}: reading{size}")

    def update(self, rows: int, nbytes: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        rate = nbytes / 1e6 / max(now - self.started, 1e-9)
        share = f" of {self.total / 1e6:.1f}" if self.total else ""
        self._say(f"{self.name}: {rows} rows, {nbytes / 1e6:.1f}{share} MB, {rate:.1f} MB/s")

    def end(self, collection: str, rows: int, seconds: float) -> None:
        self._say(f"{collection}: {rows} rows read in {seconds:.1f} s")

    def phase(self, text: str) -> None:
        self._say(text)


def summary_lines(report: ImportReport) -> Iterator[str]:
    """The final summary table, then one line of totals."""
    header = f"{'collection':<14}{'read':>11}{'imported':>11}{'rejected':>10}{'adopted':>9}{'seconds':>9}{'rows/s':>11}"
    yield header
    yield "-" * len(header)
    total = {"read": 0, "imported": 0, "rejected": 0, "adopted": 0}
    for c in report.collections.values():
        rate = f"{c.rows_per_second:,.0f}" if c.read and c.seconds > 0 else "-"
        imported = "-" if report.dry_run else f"{c.imported:,}"
        yield (f"{c.name:<14}{c.read:>11,}{imported:>11}{c.rejected:>10,}{c.adopted:>9,}{c.seconds:>9.2f}{rate:>11}")
        total["read"] += c.read
        total["imported"] += c.imported
        total["rejected"] += c.rejected
        total["adopted"] += c.adopted
    seconds = report.timings.get("total", 0.0)
    rate = f"{total['read'] / seconds:,.0f}" if seconds > 0 else "-"
    imported = "-" if report.dry_run else f"{total['imported']:,}"
    yield "-" * len(header)
    yield (
        f"{'total':<14}{total['read']:>11,}{imported:>11}{total['rejected']:>10,}{total['adopted']:>9,}"
        f"{seconds:>9.2f}{rate:>11}"
    )
    if report.recovery_thread_id is not None:
        yield f'orphans adopted into thread {report.recovery_thread_id} "Recovered messages"'
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items() if k != "total")
    if phases:
        yield f"timings: {phases}"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None / False ones."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action) or ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Validate an export directory (or an Isar file) and load it into a new SQLite database, "
        "atomically: nothing is written unless every row and every check passed.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("export", metavar="EXPORT_DIR", type=Path, help="export directory, or an .isar file")
    parser.add_argument("--db", required=True, type=Path, metavar="PATH", help="database file to create")
    parser.add_argument("--force", action="store_true", help="replace an existing database (only on success)")
    parser.add_argument(
        "--max-errors",
        type=int,
        metavar="N",
        default=None,
        help="list up to N refused rows before stopping (default 1; with --reject-file: no limit)",
    )
    parser.add_argument(
        "--reject-file",
        type=Path,
        metavar="FILE",
        help="record refused rows (location, reason, original text) as NDJSON in FILE and import the rest",
    )
    parser.add_argument(
        "--orphans",
        choices=["refuse", "adopt"],
        default="refuse",
        help='messages / mode outputs without a thread: refuse them, or adopt them into a "Recovered messages" thread',
    )
    parser.add_argument("--dry-run", action="store_true", help="validate everything, write no database")
    parser.add_argument("--report", type=Path, metavar="FILE.json", help="write counts, rejections, timings here")
    parser.add_argument(
        "--naive-timezone",
        choices=[z.value for z in NaiveTimezone],
        default=NaiveTimezone.REJECT.value,
        help="what a timestamp without an offset means",
    )
    add_isar_reader(parser, "inserts")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


@contextlib.contextmanager
def _open_source(path: Path, naive: NaiveTimezone, isar_reader: str = "auto") -> Iterator[Source]:
    if path.is_file():
        from pychat_db.isar.source import is_isar_file, open_source  # only for a file: no cost for a directory

        if is_isar_file(path):
            with open_source(path, path.name, naive, reader=isar_reader, notes=sys.stderr) as source:
                yield source
            return
    yield ExportDirectory(path, naive)


def _write_report(
    path: Path | None, report: ImportReport | None, error: str | None = None, reader_rss_kb: int | None = None
) -> None:
    if path is None:
        return
    data: dict[str, object] = report.to_json() if report is not None else {"ok": False}
    if error is not None and report is None:
        data["problems"] = [error]
    if reader_rss_kb is not None:  # the .isar file was read by a second process: its own peak
        data["reader_process"] = {"peak_rss_kb": reader_rss_kb}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # reports are private, like the db
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _open_reject_file(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_errors is not None and args.max_errors < 1:
        parser.error("--max-errors must be at least 1")
    naive = NaiveTimezone(args.naive_timezone)
    max_errors = args.max_errors if args.max_errors is not None or args.reject_file else 1
    reject_stream: IO[bytes] | None = None
    report: ImportReport | None = None
    reader_rss: int | None = None
    try:
        with _open_source(args.export, naive, args.isar_reader) as source:
            if args.quiet:
                progress: TerminalProgress | PlainProgress | NoProgress = NoProgress()
            elif sys.stderr.isatty():
                progress = TerminalProgress(sys.stderr, source)
            else:
                progress = PlainProgress(sys.stderr)
            if isinstance(source, ExportDirectory) and not args.quiet:
                for name in source.unexpected_files():
                    print(f"warning: {name}: not a file of the export format, ignored", file=sys.stderr)
            if args.reject_file is not None:
                reject_stream = _open_reject_file(args.reject_file)
            options = ImportOptions(
                force=args.force,
                dry_run=args.dry_run,
                max_errors=max_errors,
                reject=RejectWriter(reject_stream) if reject_stream is not None else None,
                adopt_orphans=args.orphans == "adopt",
                progress=progress,
            )
            report = import_source(source, args.db, options)
            reader = getattr(source, "reader", None)  # an .isar file read by a reader process
            reader_rss = reader.peak_rss_kb if reader is not None else None
    except ImportFailed as exc:
        report = exc.report
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
        for problem in report.problems:
            print(f"Error: {problem}", file=sys.stderr)
        print(f"nothing written to {args.db}", file=sys.stderr)
        _write_report(args.report, report)
        return 1
    except ExportError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        _write_report(args.report, None, str(exc))
        return 1
    except OSError as exc:
        message = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        print(f"Error: {message}", file=sys.stderr)
        _write_report(args.report, None, message)
        return 1
    except KeyboardInterrupt:
        print(f"Error: interrupted; nothing written to {args.db}", file=sys.stderr)
        return 130
    except Exception as exc:  # the Isar reader's own refusals, raised while opening
        if type(exc).__name__ not in {"IsarFormatError", "StorageError"}:
            raise
        print(f"Error: {args.export.name}: {exc}", file=sys.stderr)
        return 1
    finally:
        if reject_stream is not None:
            reject_stream.close()
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for line in summary_lines(report):
        print(line)
    rejected = sum(c.rejected for c in report.collections.values())
    if args.dry_run:
        print(f"dry run: {args.export} is valid; nothing written")
    else:
        print(f"imported {args.export} into {args.db}")
    if rejected:
        print(f"{rejected} rows refused, recorded in {args.reject_file}")
    _write_report(args.report, report, reader_rss_kb=reader_rss)
    return 0


if __name__ == "__main__":
    interrupt_on_sigterm()  # the command's own process only, not a caller of main()
    raise SystemExit(main())
