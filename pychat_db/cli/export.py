"""`pychat-db export --db PATH --out DIR [--force] [--exported-at TS]` (also `python -m tools.export`): the
canonical export.

Writes the canonical form of the export contract (see `pychat_db.exchange.writer`)
from one read transaction, so a database in use exports a consistent snapshot.
Streams every table in primary-key order (no sort: ids are the rowid and
message_tags is a WITHOUT ROWID table keyed by (message_id, tag_id)), so memory
stays flat however large the database. The directory appears only when complete.

exportedAt: the time of the export by default, so re-exports differ only in that
line of manifest.json; `--exported-at` pins it (reproducible builds, tests), and
then export(import(export(D))) is byte-identical to export(D), manifest included.

The SELECTs are built from `pychat_db.exchange.contract` rather than kept in
`queries/`: the contract is the one list of columns and their order, and the
writer relies on exactly that order.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

import apsw

from pychat_db.cli import exporting, ui
from pychat_db.errors import MigrationError, SchemaMismatch
from pychat_db.exchange.contract import Collection, select_sql
from pychat_db.exchange.writer import ExportWriteError, FileSummary, Row, staged_directory
from pychat_db.schema_check import open_at_head

PROG = "pychat-db export"


def open_current(path: Path) -> apsw.Connection:
    """A read-only connection to a database at the code's schema version (ExportWriteError otherwise)."""
    try:
        conn = open_at_head(path)
    except FileNotFoundError:
        raise ExportWriteError(f"{path}: no such database") from None
    except (MigrationError, SchemaMismatch) as exc:
        raise ExportWriteError(str(exc)) from None
    # A sequential scan reuses no page: a small cache keeps memory flat (the app's 32 MiB is for lookups).
    conn.execute("PRAGMA cache_size = -4096").fetchall()
    return conn


def table_rows(conn: apsw.Connection, collection: Collection) -> Iterator[Row]:
    rows: Iterator[Row] = conn.execute(select_sql(collection))
    return rows


def export_database(
    db: Path, out: Path, *, exported_at: str, force: bool = False, quiet: bool = False
) -> list[FileSummary]:
    """Export `db` into the new directory `out` (see module doc); return what was written."""
    conn = open_current(db)
    summaries: list[FileSummary] = []
    try:
        conn.execute("BEGIN")
        with staged_directory(out, force=force) as stage:
            summaries = exporting.write_export(stage, lambda c: table_rows(conn, c), exported_at, quiet=quiet)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
        conn.close()
    return summaries


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = ui.new_parser(prog, "Write a database as the canonical export (the rollback path of the import).")
    parser.add_argument("--db", required=True, type=Path, metavar="PATH", help="database file to export")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to create (absent or empty)")
    exporting.add_export_output(parser)
    ui.add_report(parser)
    ui.add_quiet(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    run = exporting.ExportRun(args.out, args.exported_at or exporting.now_exported_at())
    try:
        run.summaries = export_database(
            args.db, args.out, exported_at=run.exported_at, force=args.force, quiet=args.quiet
        )
    except ExportWriteError as exc:
        run.problem = str(exc)
    except apsw.Error as exc:
        run.problem = ui.describe_database_error(exc, args.db)
    except OSError as exc:
        run.problem = ui.describe_os_error(exc, args.db)
    except KeyboardInterrupt:
        return run.interrupted()
    return run.finish("export", args.report, database=args.db)
