"""`pychat-db import SOURCE --db PATH` (also `python -m tools.import`): load an export directory or an
Isar file into a new database.

Every field is validated and converted (see `pychat_db.exchange.reader`); the
database is built beside PATH and renamed into place only when every check
passed (see `pychat_db.exchange.loader`). Exit codes: 0 imported, 1 data refused
or a check failed (nothing written), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pychat_db.cli import ui
from pychat_db.exchange.codec import NaiveTimezone
from pychat_db.exchange.loader import ImportFailed, ImportOptions, ImportReport, RejectWriter, import_source
from pychat_db.exchange.reader import ExportDirectory, ExportError, Source
from pychat_db.isar.format import IsarFormatError
from pychat_db.isar.storage import StorageError

PROG = "pychat-db import"


def print_summary(report: ImportReport) -> None:
    """The summary table (stdout), then the adopted-orphans and timing lines."""
    total = {"read": 0, "imported": 0, "rejected": 0, "adopted": 0}
    rows = []
    for c in report.collections.values():
        imported = "-" if report.dry_run else ui.count(c.imported)
        counts = [ui.count(c.read), imported, ui.count(c.rejected), ui.count(c.adopted)]
        rows.append([c.name, *counts, f"{c.seconds:.2f}", ui.rate(c.read, c.seconds)])
        for key in total:
            total[key] += getattr(c, key)
    seconds = report.timings.get("total", 0.0)
    footer = ["total", ui.count(total["read"]), "-" if report.dry_run else ui.count(total["imported"])]
    footer += [
        ui.count(total["rejected"]),
        ui.count(total["adopted"]),
        f"{seconds:.2f}",
        ui.rate(total["read"], seconds),
    ]
    ui.print_table(["collection", "read", "imported", "rejected", "adopted", "seconds", "rows/s"], rows, footer)
    if report.recovery_thread_id is not None:
        print(f'orphans adopted into thread {report.recovery_thread_id} "Recovered messages"')
    phases = ", ".join(f"{k} {ui.duration(v)}" for k, v in report.timings.items() if k != "total")
    if phases:
        print(f"timings: {phases}")


def report_document(
    args: argparse.Namespace, report: ImportReport, reading: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `--report` document (`ui.report_document`'s schema); `reading`: `ui.source_details`."""
    details: dict[str, Any] = {
        "dry_run": report.dry_run,
        "recovery_thread_id": report.recovery_thread_id,
        "rejected": [str(p) for p in report.rejected_samples],
        "timings": {k: round(v, 4) for k, v in report.timings.items()},
    } | (reading or {})
    collections = {
        c.name: {"read": c.read, "imported": c.imported, "rejected": c.rejected, "adopted": c.adopted}
        | {"bytes": c.bytes, "seconds": c.seconds}
        for c in report.collections.values()
    }
    return ui.report_document(
        "import",
        ok=report.ok,
        seconds=report.timings.get("total", 0.0),
        rows=report.rows_read,
        collections=collections,
        source=args.export,
        database=args.db,
        problems=[str(p) for p in report.problems],
        notes=report.notes,
        details=details,
    )


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = ui.new_parser(
        prog,
        "Validate an export directory (or an Isar file) and load it into a new SQLite database, "
        "atomically: nothing is written unless every row and every check passed.",
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
    ui.add_report(parser)
    ui.add_naive_timezone(parser, "what a timestamp without an offset means")
    ui.add_isar_reader(parser, "inserts")
    ui.add_nulls(parser)
    ui.add_keep_removed(parser)
    ui.add_quiet(parser)
    return parser


@contextlib.contextmanager
def _open_source(path: Path, naive: NaiveTimezone, isar_reader: str = "auto", nulls: str = "app") -> Iterator[Source]:
    if path.is_file():
        from pychat_db.isar.history import Nulls  # only for a file: no cost for a directory
        from pychat_db.isar.source import is_isar_file, open_source

        if is_isar_file(path):
            with open_source(
                path, ui.shown(path), naive, reader=isar_reader, notes=sys.stderr, nulls=Nulls(nulls)
            ) as source:
                yield source
            return
    yield ExportDirectory(path, naive)


def _keep_removed(source: Source, path: Path) -> None:
    """Write the values of the .isar file's removed properties to `path` (`history.write_removed`)."""
    from pychat_db.isar.history import write_removed
    from pychat_db.isar.source import IsarSource

    assert isinstance(source, IsarSource) and source.opened is not None
    write_removed(source.opened.isar, path)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.max_errors is not None and args.max_errors < 1:
        parser.error("--max-errors must be at least 1")
    if args.keep_removed is not None and not _is_isar_file(args.export):
        parser.error("--keep-removed applies to an .isar file (an export directory has no removed properties)")
    if args.keep_removed is not None and not args.keep_removed.parent.is_dir():  # known before the import
        return ui.error(f"{ui.shown(args.keep_removed)}: no such directory")
    naive = NaiveTimezone(args.naive_timezone)
    max_errors = args.max_errors if args.max_errors is not None or args.reject_file else 1
    reject_stream: IO[bytes] | None = None
    progress = ui.make_progress(args.quiet)
    reader_rss: int | None = None
    try:
        with _open_source(args.export, naive, args.isar_reader, args.nulls) as source:
            if isinstance(source, ExportDirectory) and not args.quiet:
                for name in source.unexpected_files():
                    print(f"warning: {name}: not a file of the export format, ignored", file=sys.stderr)
            if args.reject_file is not None:
                reject_stream = ui.create_private(args.reject_file)
            options = ImportOptions(
                force=args.force,
                dry_run=args.dry_run,
                max_errors=max_errors,
                reject=RejectWriter(reject_stream) if reject_stream is not None else None,
                adopt_orphans=args.orphans == "adopt",
                progress=progress,
            )
            report = import_source(source, args.db, options)
            reader_rss = ui.peak_rss_kb(source)
            kept = None if args.dry_run else args.keep_removed  # a dry run writes nothing
            if kept is not None:  # after the import: nothing is written when it is refused
                _keep_removed(source, kept)
    except ImportFailed as exc:
        ui.close_progress(progress)
        for note in exc.report.notes:
            print(f"note: {note}", file=sys.stderr)
        for problem in exc.report.problems:
            print(f"Error: {problem}", file=sys.stderr)
        print(f"nothing written to {ui.shown(args.db)}", file=sys.stderr)
        ui.write_report(args.report, report_document(args, exc.report))
        return ui.EXIT_REFUSED
    except (ExportError, IsarFormatError, StorageError, OSError) as exc:
        ui.close_progress(progress)
        message = _describe(exc, args.export)
        ui.write_report(args.report, ui.refused_document("import", message, source=args.export, database=args.db))
        return ui.error(message)
    except KeyboardInterrupt:
        ui.close_progress(progress)
        return ui.interrupted(f"nothing written to {ui.shown(args.db)}")
    finally:
        if reject_stream is not None:
            reject_stream.close()
    ui.close_progress(progress)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print_summary(report)
    reading = ui.source_details(source, reader_rss, args.nulls, kept)
    rejected = sum(c.rejected for c in report.collections.values())
    if args.dry_run:
        print(f"dry run: {ui.shown(args.export)} is valid; nothing written")
    else:
        print(f"imported {ui.shown(args.export)} into {ui.shown(args.db)}")
    if rejected:
        print(f"{ui.count(rejected)} rows refused, recorded in {ui.shown(args.reject_file)}")
    ui.write_report(args.report, report_document(args, report, reading))
    return ui.EXIT_OK


def _is_isar_file(path: Path) -> bool:
    from pychat_db.isar.source import is_isar_file

    return is_isar_file(path)


def _describe(exc: Exception, source: Path) -> str:
    """One line for a refusal before or outside the rows: the reader's own messages name the file already."""
    if isinstance(exc, (IsarFormatError, StorageError)):
        return f"{ui.shown(source)}: {exc}"
    if isinstance(exc, OSError):
        return ui.describe_os_error(exc, source)
    return str(exc)
