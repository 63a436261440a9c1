"""Argument types shared by the command-line tools."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence

from pychat_db import convert
from pychat_db.exchange.contract import Collection
from pychat_db.exchange.writer import FileSummary


def exported_at(text: str) -> str:
    """`--exported-at`: an ISO-8601 timestamp with an offset → canonical UTC text."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an ISO-8601 timestamp with an offset") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset (Z or +HH:MM)")
    return convert.timestamp_to_db(parsed)


def add_isar_reader(parser: argparse.ArgumentParser, meanwhile: str, auto: str = "") -> None:
    """`--isar-reader auto|process|inline` (`pychat_db.isar.source.open_source`'s `reader`). `meanwhile`: what
    this process does while the reader process decodes; `auto`: a condition added to "a second CPU"."""
    parser.add_argument(
        "--isar-reader",
        choices=["auto", "process", "inline"],
        default="auto",
        help=f"an .isar file is decoded in a second process while this one {meanwhile} (process), or in this "
        f"one (inline); auto: process when there is a second CPU{auto}",
    )


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
            rate = summary.rows / elapsed if elapsed > 0 else 0.0
            print(
                f"{verb} {summary.file}: {summary.rows} rows, {summary.size / 1e6:.1f} MB "
                f"in {elapsed:.1f} s ({rate:,.0f} rows/s)",
                file=sys.stderr,
            )
    return summaries


def print_export_summary(summaries: Sequence[FileSummary]) -> int:
    """Print the table of files an export wrote (stdout); return the rows written."""
    print(f"{'collection':<14} {'rows':>10} {'MB':>9}  file")
    for s in summaries:
        print(f"{s.collection:<14} {s.rows:>10} {s.size / 1e6:>9.1f}  {s.file}")
    return sum(s.rows for s in summaries)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Let SIGTERM (`kill`, a service manager stopping the job) stop the command as Ctrl-C does: through
    its `finally` blocks, so nothing half-written or private is left (the temporary database, the private
    copy of an .isar file, the reader process). Without this Python ends at once and skips them."""
    signal.signal(signal.SIGTERM, _interrupt)
