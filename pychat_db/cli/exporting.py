"""What the commands that write an export share (`export`, `export-isar`, and `generate` for its files).

Their options (`--force`, `--exported-at`), writing every collection's file and then the
manifest with a line per file on stderr, the table of files and the report of an export
(`export_document`, in the one report schema of `pychat_db.cli.ui`), and `ExportRun`, one
run from its start to its exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pychat_db import convert
from pychat_db.cli import ui
from pychat_db.exchange.contract import COLLECTIONS, Collection
from pychat_db.exchange.writer import FileSummary, Row, write_collection, write_manifest


def exported_at(text: str) -> str:
    """`--exported-at`: an ISO-8601 timestamp with an offset → canonical UTC text."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an ISO-8601 timestamp with an offset") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset (Z or +HH:MM)")
    return convert.timestamp_to_db(parsed)


def add_export_output(parser: argparse.ArgumentParser) -> None:
    """`--force` and `--exported-at`: what an export into `--out DIR` also takes."""
    parser.add_argument("--force", action="store_true", help="replace an existing export in --out")
    parser.add_argument(
        "--exported-at",
        type=exported_at,
        metavar="TIMESTAMP",
        help="manifest exportedAt (ISO-8601 with offset; default: now, UTC)",
    )


def now_exported_at() -> str:
    return convert.timestamp_to_db(dt.datetime.now(dt.UTC))


def write_files(
    collections: Iterable[Collection], write: Callable[[Collection], FileSummary], *, verb: str, quiet: bool
) -> list[FileSummary]:
    """`write(collection)` for each collection in order; unless `quiet`, a line on stderr after each:
    `VERB FILE: N rows, X MB in S s (R rows/s)`. Returns the summaries."""
    summaries = []
    for collection in collections:
        started = time.perf_counter()
        summary = write(collection)
        summaries.append(summary)
        if not quiet:
            elapsed = time.perf_counter() - started
            print(
                f"{verb} {summary.file}: {ui.count(summary.rows)} rows, {ui.megabytes(summary.size)} "
                f"in {elapsed:.1f} s ({ui.rate(summary.rows, elapsed)} rows/s)",
                file=sys.stderr,
            )
    return summaries


def write_export(
    stage: Path, rows: Callable[[Collection], Iterable[Row]], exported_at: str, *, quiet: bool
) -> list[FileSummary]:
    """Write every collection's canonical file from `rows(collection)` into `stage`, then the manifest
    (`write_files`' line on stderr after each file unless `quiet`). Returns the files' summaries."""
    summaries = write_files(COLLECTIONS, lambda c: write_collection(stage, c, rows(c)), verb="exported", quiet=quiet)
    write_manifest(stage, summaries, exported_at)
    return summaries


def print_export_summary(summaries: Sequence[FileSummary]) -> int:
    """Print the table of files an export wrote (stdout); return the rows written."""
    ui.print_table(
        ["collection", "rows", "MB", "file"],
        ([s.collection, ui.count(s.rows), f"{s.size / 1e6:,.1f}", s.file] for s in summaries),
    )
    return sum(s.rows for s in summaries)


def export_collections(summaries: Sequence[FileSummary]) -> dict[str, dict[str, Any]]:
    """The report's `collections` of an export: rows and bytes per file."""
    return {s.collection: {"rows": s.rows, "bytes": s.size, "file": s.file} for s in summaries}


def export_document(
    command: str,
    *,
    seconds: float,
    summaries: Sequence[FileSummary],
    problem: str,
    details: dict[str, Any],
    source: Path | str | None = None,
    database: Path | str | None = None,
    output: Path | str | None = None,
) -> dict[str, Any]:
    """The report of an export (`export`, `export-isar`): its files, or the one problem that stopped it
    (`problem` empty: none; `details` are kept only then)."""
    return ui.report_document(
        command,
        ok=not problem,
        seconds=seconds,
        rows=sum(s.rows for s in summaries),
        collections=export_collections(summaries),
        source=source,
        database=database,
        output=output,
        problems=[problem] if problem else [],
        details={} if problem else details,
    )


@dataclass
class ExportRun:
    """One run of an export command (`export`, `export-isar`) into `out`, timed from its creation: the
    command sets `summaries` when the export succeeded, or `problem` (one line) when it was refused."""

    out: Path | None
    exported_at: str
    started: float = field(default_factory=time.perf_counter)
    summaries: list[FileSummary] = field(default_factory=list)
    problem: str = ""

    def interrupted(self) -> int:
        """Ctrl-C (or SIGTERM): the `Error:` line, and exit code 130."""
        return ui.interrupted(f"nothing written to {ui.shown(self.out)}" if self.out is not None else "")

    def finish(
        self,
        command: str,
        report: Path | None,
        *,
        details: dict[str, Any] | None = None,
        source: Path | None = None,
        database: Path | None = None,
        origin: str = "",
        lines: Iterable[str] = (),
    ) -> int:
        """Write the `--report` (`export_document`, `details` after `exported_at`); then the `Error:` line
        of the problem (exit 1), or the table of files, `lines` and `exported N rows{origin} to OUT …`."""
        elapsed = time.perf_counter() - self.started
        document = export_document(
            command,
            seconds=elapsed,
            summaries=self.summaries,
            problem=self.problem,
            details={"exported_at": self.exported_at} | (details or {}),
            source=source,
            database=database,
            output=self.out,
        )
        ui.write_report(report, document)
        if self.problem:
            return ui.error(self.problem)
        assert self.out is not None
        total = print_export_summary(self.summaries)
        for line in lines:
            print(line)
        print(
            f"exported {ui.count(total)} rows{origin} to {ui.shown(self.out)} in {elapsed:.1f} s "
            f"(exportedAt {self.exported_at})"
        )
        return ui.EXIT_OK
