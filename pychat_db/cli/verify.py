"""`pychat-db verify SOURCE --db PATH [--samples N] [--report FILE.json]` (also `python -m tools.verify`).

Proves that a database holds exactly an export or an Isar file (see `pychat_db.exchange.verify`):
row counts per collection, a content digest of every row compared row by row,
every link present, the manifest, and `--samples N` random messages compared
field by field with their tags. Exit 0 when everything matches; 1 on any
mismatch (each printed as `collection key: field: what differs`, the API key
never shown) or when the source or database cannot be read; 2 usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import apsw

from pychat_db.cli import ui
from pychat_db.exchange.codec import NaiveTimezone
from pychat_db.exchange.loader import RECOVERY_THREAD_NAME
from pychat_db.exchange.reader import ExportError, Source
from pychat_db.exchange.verify import VerifyError, VerifyReport, open_database, verify
from pychat_db.isar.format import IsarFormatError
from pychat_db.isar.history import Nulls
from pychat_db.isar.source import IsarSource, is_isar_file, open_source
from pychat_db.isar.storage import StorageError

PROG = "pychat-db verify"
MAX_PRINTED = 50


def print_summary(report: VerifyReport) -> None:
    ui.print_table(
        ["collection", "export", "database", "matching", "result"],
        (
            [c.collection, ui.count(c.export_rows), ui.count(c.db_rows), ui.count(c.matching), _verdict(c.ok)]
            for c in report.collections
        ),
    )
    if report.samples_requested:
        print(
            f"samples: {ui.count(report.samples_checked)} messages compared field by field, "
            f"{ui.count(report.sample_mismatches)} differ"
        )
    verdict = "database matches the export" if report.ok else "database DOES NOT match the export"
    print(
        f"{verdict}: {ui.count(report.rows)} rows in {report.seconds:.1f} s "
        f"({ui.rate(report.rows, report.seconds)} rows/s)"
    )


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISMATCH"


def report_document(args: argparse.Namespace, report: VerifyReport, reading: dict[str, Any]) -> dict[str, Any]:
    """The `--report` document (`ui.report_document`'s schema); `reading`: `ui.source_details`."""
    details: dict[str, Any] = {
        "samples": {
            "requested": report.samples_requested,
            "checked": report.samples_checked,
            "mismatches": report.sample_mismatches,
        },
        "manifest_problems": report.manifest_problems,
        "mismatches": [asdict(m) | {"message": str(m)} for m in report.mismatches],
    } | reading
    collections = {
        c.collection: {k: v for k, v in asdict(c).items() if k != "collection"} | {"ok": c.ok}
        for c in report.collections
    }
    problems = [str(m) for m in report.mismatches] + report.manifest_problems
    return ui.report_document(
        "verify",
        ok=report.ok,
        seconds=report.seconds,
        rows=report.rows,
        collections=collections,
        source=args.export,
        database=args.db,
        problems=problems,
        details=details,
    )


@contextlib.contextmanager
def _open_source(
    path: Path, naive: NaiveTimezone, isar_reader: str = "auto", nulls: str = "app"
) -> Iterator[Source | None]:
    """The Isar file's source when `path` is an .isar file (read through a private copy), else None.

    The file is decoded by a reader process (`pychat_db.isar.worker`, the import's) unless `isar_reader`
    is "inline", or "auto" without a second CPU. `nulls`: the import's reading of a null (`--nulls`).
    """
    if is_isar_file(path):
        with open_source(
            path, os.fspath(path), naive, reader=isar_reader, checked=True, notes=sys.stderr, nulls=Nulls(nulls)
        ) as source:
            yield source
        return
    yield None


def _adopt_orphans(source: IsarSource, db: Path) -> None:
    """Expect the file's orphans in the database's recovery thread, as `import --orphans adopt` put them: the
    thread named "Recovered messages" that is not one of the file's (none: nothing was adopted)."""
    assert source.opened is not None
    ids = source.opened.app.ids_of("Thread")
    conn = open_database(db)
    try:
        found = conn.execute(
            "SELECT id, name, created_at FROM threads WHERE name = ? ORDER BY id", (RECOVERY_THREAD_NAME,)
        ).fetchall()
    finally:
        conn.close()
    recovery = [(i, str(name), str(created)) for i, name, created in found if isinstance(i, int) and i not in ids]
    if recovery:
        source.adopt_orphans(recovery[-1])


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = ui.new_parser(prog, "Prove that a database holds exactly an export directory or an Isar file.")
    parser.add_argument("export", type=Path, metavar="SOURCE", help="export directory, or an .isar file")
    parser.add_argument("--db", required=True, type=Path, metavar="PATH", help="database file")
    parser.add_argument("--samples", type=int, default=0, help="random messages to compare field by field with tags")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample choice")
    ui.add_report(parser)
    ui.add_naive_timezone(parser, "what a timestamp without offset means (use the import's setting)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="processes: 2 uses a second one (for an .isar file, the reader process of --isar-reader; "
        "else it reads the database), 1 does all in one",
    )
    ui.add_isar_reader(parser, "reads the database and compares", " and --jobs is not 1")
    ui.add_nulls(parser)
    parser.add_argument(
        "--orphans",
        choices=["refuse", "adopt"],
        default="refuse",
        help="use the import's setting: with adopt, an .isar file's messages and mode outputs without a thread "
        'are expected in the database\'s "Recovered messages" thread',
    )
    ui.add_quiet(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.samples < 0:
        parser.error("--samples must be >= 0")
    if args.orphans == "adopt" and not is_isar_file(args.export):
        parser.error("--orphans adopt applies to an .isar file")
    reader_rss: int | None = None
    try:
        isar_reader = "inline" if args.jobs <= 1 and args.isar_reader == "auto" else args.isar_reader
        with _open_source(args.export, NaiveTimezone(args.naive_timezone), isar_reader, args.nulls) as source:
            if args.orphans == "adopt" and isinstance(source, IsarSource):
                _adopt_orphans(source, args.db)
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
            reader_rss = ui.peak_rss_kb(source)
    except (VerifyError, ExportError) as exc:
        message = str(exc)
    except (IsarFormatError, StorageError) as exc:
        message = f"{ui.shown(args.export)}: {exc}"
    except apsw.Error as exc:  # the database file is not one SQLite can read
        message = ui.describe_database_error(exc, args.db)
    except OSError as exc:
        message = ui.describe_os_error(exc, args.export)
    except KeyboardInterrupt:
        return ui.interrupted("the verification did not finish")
    else:
        message = ""
    if message:
        ui.write_report(args.report, ui.refused_document("verify", message, source=args.export, database=args.db))
        return ui.error(message)
    for mismatch in report.mismatches[:MAX_PRINTED]:
        print(f"mismatch: {mismatch}", file=sys.stderr)
    if len(report.mismatches) > MAX_PRINTED:
        print(f"... and {len(report.mismatches) - MAX_PRINTED} more (see --report)", file=sys.stderr)
    for problem in report.manifest_problems:
        print(f"mismatch: {problem}", file=sys.stderr)
    reading = ui.source_details(source, reader_rss, args.nulls, None)
    print_summary(report)
    ui.write_report(args.report, report_document(args, report, reading))
    if not report.ok:
        problems = [str(m) for m in report.mismatches] + report.manifest_problems
        first = problems[0] if problems else "the counts differ"
        return ui.error(f"{len(problems)} mismatch(es); first: {first}")
    return ui.EXIT_OK
