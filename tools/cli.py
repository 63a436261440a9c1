"""Argument types shared by the command-line tools."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
from collections.abc import Sequence

from pychat_db import convert
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
