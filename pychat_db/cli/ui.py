"""How every command talks to the user, written once.

- Exit codes: 0 success, 1 data refused or a check failed, 2 usage (argparse), 130 interrupted.
- Errors: one `Error: …` line on stderr, naming the file as the user gave it; never a traceback for a
  refusal, never the API key (`describe_error`).
- Results on stdout (summary tables drawn by rich: plain text when stdout is not a terminal); progress on
  stderr (a rich bar with rate and ETA on a terminal, plain lines otherwise, nothing with `--quiet`).
- Reports: `--report FILE.json`, created 0600, one schema for every data command (`report_document`):
  snake_case keys, seconds as floats, sizes in bytes, rates in rows per second.
- Numbers: `count()` (thousands separators), `rate()` and `duration()` everywhere.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from pychat_db.exchange.codec import NaiveTimezone
from pychat_db.exchange.importing import NoProgress
from pychat_db.exchange.source import Source

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

REPORT_SCHEMA = 1  # bump when a key of report_document changes meaning
PLAIN_EVERY_SECONDS = 2.0


# -- numbers --------------------------------------------------------------------------------------------------------


def count(n: int) -> str:
    """`5,307`: every count in every tool."""
    return f"{n:,}"


def rate(rows: int, seconds: float) -> str:
    """`146,188` rows per second, or `-` when nothing was timed."""
    return f"{rows / seconds:,.0f}" if rows and seconds > 0 else "-"


def duration(seconds: float) -> str:
    """`0.04 s`."""
    return f"{seconds:.2f} s"


def megabytes(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.1f} MB"


def shown(path: Path | str) -> str:
    """A path as the user gave it (never resolved or shortened), the same in every tool."""
    return os.fspath(path)


# -- parsing --------------------------------------------------------------------------------------------------------


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative ones: never `(default: None)` or `(default: False)`."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help or ""
        if action.help and "(default" in action.help:
            return action.help
        return super()._get_help_string(action) or ""


def new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


def add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE.json",
        help="write the outcome as JSON here (created 0600; the same schema for every command)",
    )


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_naive_timezone(parser: argparse.ArgumentParser, help: str) -> None:
    """`--naive-timezone reject|UTC|local` (`NaiveTimezone`): what a timestamp without an offset means."""
    parser.add_argument(
        "--naive-timezone", choices=[z.value for z in NaiveTimezone], default=NaiveTimezone.REJECT.value, help=help
    )


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


# -- Isar files: the app's schema history (`pychat_db.isar.history`) ---------------------------------------------------


def add_nulls(parser: argparse.ArgumentParser) -> None:
    """`--nulls app|refuse`: how a null in a required field of an .isar file is read."""
    parser.add_argument(
        "--nulls",
        choices=["app", "refuse"],
        default="app",
        help="a null in a required field of an .isar file (an object written before the field existed, or a "
        "stored null): read it as the app reads it ('', 1970-01-01, true, text; each counted in the summary), "
        "or refuse it",
    )


def add_keep_removed(parser: argparse.ArgumentParser) -> None:
    """`--keep-removed FILE.ndjson`: where the values of an .isar file's removed properties are written."""
    parser.add_argument(
        "--keep-removed",
        type=Path,
        metavar="FILE.ndjson",
        help="write the values still held by properties the app removed (an .isar file), one JSON line each "
        "(collection, id, position, type, value; bytes as base64), to FILE (created 0600)",
    )


def peak_rss_kb(source: Source | None) -> int | None:
    """The peak RSS of the process that reads `source` beside this one (an .isar file's reader process),
    or None. Ask before the source is closed: closing it ends that process."""
    reader = source.second_process if source is not None else None
    return reader.peak_rss_kb if reader is not None else None


def source_details(source: object, reader_rss_kb: int | None, nulls: str, kept: Path | None) -> dict[str, Any]:
    """The report's `details` on how the source was read: `reader_process`, the own peak of the process
    that read an .isar file (`reader_rss_kb`, from `peak_rss_kb`); `isar_reading`, what reading an .isar
    file met, also printed (stdout): each null read as the app reads it, per collection and field, and
    the values of removed properties. Empty (and nothing printed) for any other source."""
    from pychat_db.isar.history import Nulls, default_lines, notes_json, removed_lines
    from pychat_db.isar.source import IsarSource

    details: dict[str, Any] = {}
    if reader_rss_kb is not None:
        details["reader_process"] = {"peak_rss_kb": reader_rss_kb}
    if isinstance(source, IsarSource):
        for line in default_lines(source.notes):
            print(line)
        for line in removed_lines(source.notes, shown(kept) if kept is not None else None):
            print(line)
        details["isar_reading"] = notes_json(source.notes, Nulls(nulls), shown(kept) if kept is not None else None)
    return details


# -- errors ---------------------------------------------------------------------------------------------------------


def error(message: str) -> int:
    """Print the one `Error:` line and return exit code 1."""
    print(f"Error: {message}", file=sys.stderr)
    return EXIT_REFUSED


def interrupted(outcome: str = "") -> int:
    """Ctrl-C (or SIGTERM): `Error: interrupted; OUTCOME` (what was left as it was) and exit code 130."""
    print(f"Error: interrupted; {outcome}" if outcome else "Error: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def describe_os_error(exc: OSError, fallback: Path | str | None = None) -> str:
    """`examples/exprt: no such file or directory` — the file, then what is wrong with it."""
    if exc.filename is None and exc.strerror is None:  # raised by our own code: its message names the file
        return str(exc)
    name = exc.filename if exc.filename is not None else fallback
    reason = (exc.strerror or str(exc)).rstrip(".")
    reason = reason[0].lower() + reason[1:] if reason else "cannot be read"
    return f"{shown(name)}: {reason}" if name is not None else reason


def describe_database_error(exc: Exception, db: Path | str) -> str:
    """A driver error opening or reading `db` as one line: `chat.db: file is not a database`."""
    text = str(exc)
    prefix = f"{type(exc).__name__}: "
    if text.startswith(prefix):  # APSW puts the class name in front of the message
        text = text[len(prefix) :]
    return f"{shown(db)}: {text}"


# -- reports --------------------------------------------------------------------------------------------------------


def report_document(
    command: str,
    *,
    ok: bool,
    seconds: float,
    rows: int,
    collections: dict[str, dict[str, Any]],
    source: Path | str | None = None,
    database: Path | str | None = None,
    output: Path | str | None = None,
    problems: Sequence[str] = (),
    notes: Sequence[str] = (),
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one report schema of `import`, `verify`, `export` and `export-isar`.

    `collections` maps a collection to its counts (`read`, `imported`, `rows`, … as ints) and may add
    `seconds`; `rows_per_second` is added here. `details` holds what only one command has.
    """
    shaped = {}
    for name, entry in collections.items():
        entry = dict(entry)
        if "seconds" in entry:
            entry["seconds"] = round(float(entry["seconds"]), 4)
            counted = int(entry.get("read", entry.get("rows", 0)))
            entry["rows_per_second"] = round(counted / entry["seconds"]) if entry["seconds"] > 0 else None
        shaped[name] = entry
    return {
        "schema": REPORT_SCHEMA,
        "command": command,
        "ok": ok,
        "source": shown(source) if source is not None else None,
        "database": shown(database) if database is not None else None,
        "output": shown(output) if output is not None else None,
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_second": round(rows / seconds) if seconds > 0 and rows else None,
        "collections": shaped,
        "problems": list(problems),
        "notes": list(notes),
        "details": details or {},
    }


def refused_document(
    command: str, problem: str | None, *, source: Path | str | None = None, database: Path | str | None = None
) -> dict[str, Any]:
    """The report of a command that stopped before it had results: `ok` false and the one problem."""
    return report_document(
        command,
        ok=False,
        seconds=0.0,
        rows=0,
        collections={},
        source=source,
        database=database,
        problems=[problem] if problem else [],
    )


def create_private(path: Path) -> IO[bytes]:
    """Open `path` for writing, created (or truncated) 0600: reports, reject files, kept values."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")


def write_report(path: Path | None, document: dict[str, Any]) -> None:
    """Write `document` as JSON to `path` (nothing when None), created 0600 like the database."""
    if path is None:
        return
    data = json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"
    with create_private(path) as out:
        out.write(data)


# -- tables ---------------------------------------------------------------------------------------------------------


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]], footer: Sequence[str] | None = None) -> None:
    """A summary table on stdout (rich; the first column left-aligned, the others right-aligned). Without a
    terminal it is plain text with no colour and no trailing spaces."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, show_footer=footer is not None)
    for i, name in enumerate(columns):
        table.add_column(
            name, justify="left" if i == 0 else "right", footer=footer[i] if footer is not None else "", no_wrap=True
        )
    for row in rows:
        table.add_row(*row)
    if sys.stdout.isatty():
        Console(highlight=False).print(table)
        return
    console = Console(
        width=250, color_system=None, highlight=False, force_terminal=False, record=True, file=io.StringIO()
    )
    console.print(table)
    for line in console.export_text().splitlines():
        if line.strip():
            print(line.rstrip())


# -- progress -------------------------------------------------------------------------------------------------------


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
        size = f" ({megabytes(total_bytes)})" if total_bytes else ""
        self._say(f"{collection}: reading{size}")

    def update(self, rows: int, nbytes: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        speed = nbytes / 1e6 / max(now - self.started, 1e-9)
        share = f" of {self.total / 1e6:,.1f}" if self.total else ""
        self._say(f"{self.name}: {count(rows)} rows, {nbytes / 1e6:,.1f}{share} MB, {speed:,.1f} MB/s")

    def end(self, collection: str, rows: int, seconds: float) -> None:
        self._say(f"{collection}: {count(rows)} rows read in {seconds:.1f} s ({rate(rows, seconds)} rows/s)")

    def phase(self, text: str) -> None:
        self._say(text)


class TerminalProgress:
    """A rich progress bar per collection on a terminal: bytes read of the file, rows, rate and ETA."""

    def __init__(self, stream: IO[str], *, width: int | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description:<13}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]:>11} rows"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream, force_terminal=True, width=width),
            transient=False,
        )
        self._task: Any = None
        self._console = self._bar.console

    def begin(self, collection: str, total_bytes: int | None) -> None:
        if self._task is None:
            self._bar.start()
        self._task = self._bar.add_task(collection, total=total_bytes or None, rows=count(0))

    def update(self, rows: int, nbytes: int) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=nbytes, rows=count(rows))

    def end(self, collection: str, rows: int, seconds: float) -> None:
        if self._task is not None:
            total = self._bar.tasks[-1].total
            self._bar.update(self._task, completed=total or 0, total=total or 1, rows=count(rows))

    def phase(self, text: str) -> None:
        self._console.print(text, highlight=False)

    def close(self) -> None:
        self._bar.stop()


def make_progress(quiet: bool, stream: IO[str] | None = None) -> NoProgress | PlainProgress | TerminalProgress:
    """The progress for `--quiet`, a terminal, or plain lines."""
    stream = stream or sys.stderr
    if quiet:
        return NoProgress()
    return TerminalProgress(stream) if stream.isatty() else PlainProgress(stream)


def close_progress(progress: object) -> None:
    if isinstance(progress, TerminalProgress):
        progress.close()


# -- running --------------------------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Let SIGTERM (`kill`, a service manager stopping the job) stop the command as Ctrl-C does: through
    its `finally` blocks, so nothing half-written or private is left (the temporary database, the private
    copy of an .isar file, the reader process). Without this Python ends at once and skips them."""
    signal.signal(signal.SIGTERM, _interrupt)


def run_as_program(main: Callable[[], int]) -> int:
    """Run a command as its own process (`pychat-db X`, `python -m tools.X`): SIGTERM stops it like Ctrl-C.
    Only the program's own process does this, never a caller of `main()`."""
    interrupt_on_sigterm()
    return main()
