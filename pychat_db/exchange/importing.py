"""What an import takes and gives: its options, its progress, the reject file, its report and its refusal.

`pychat_db.exchange.loader.import_source` reads them; the commands (`pychat_db.cli.import_`) build the options
and print the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Protocol

import msgspec

from pychat_db.errors import PychatDbError
from pychat_db.exchange.reader import Problem


class Progress(Protocol):
    """Receives the loader's progress; the command draws it (bar, plain lines or nothing)."""

    def begin(self, collection: str, total_bytes: int | None) -> None: ...

    def update(self, rows: int, nbytes: int) -> None: ...

    def end(self, collection: str, rows: int, seconds: float) -> None: ...

    def phase(self, text: str) -> None: ...


class NoProgress:
    """Progress that says nothing (`--quiet`, and the library's default)."""

    def begin(self, collection: str, total_bytes: int | None) -> None:
        pass

    def update(self, rows: int, nbytes: int) -> None:
        pass

    def end(self, collection: str, rows: int, seconds: float) -> None:
        pass

    def phase(self, text: str) -> None:
        pass


class _RejectRecord(msgspec.Struct, omit_defaults=True):
    collection: str | None
    location: str
    field: str | None
    reason: str
    text: str | None = None
    text_base64: bytes | None = msgspec.field(default=None, name="textBase64")


class RejectWriter:
    """Appends one NDJSON record per refused row: collection, location, field, reason, original text.

    The text is kept as a string when it is valid UTF-8, else as `textBase64`.
    The configuration's text is never recorded (it holds the API key).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0
        self._encoder = msgspec.json.Encoder()

    def write(self, problem: Problem) -> None:
        text: str | None = None
        raw: bytes | None = None
        if problem.text is not None:
            data = problem.text.rstrip(b"\r\n")
            try:
                text = data.decode("utf-8")
                text.encode("utf-8")
            except UnicodeError:
                text, raw = None, data
        record = _RejectRecord(problem.collection, problem.location, problem.field, problem.reason, text, raw)
        self.stream.write(self._encoder.encode(record) + b"\n")
        self.count += 1


@dataclass
class ImportOptions:
    """How to import. `max_errors`: problems listed before stopping (default 1; with a reject
    writer, None means no limit). `adopt_orphans`: messages and mode outputs whose thread link is
    empty or points nowhere go into a "Recovered messages" thread instead of being refused."""

    force: bool = False
    dry_run: bool = False
    max_errors: int | None = 1
    reject: RejectWriter | None = None
    adopt_orphans: bool = False
    progress: Progress = field(default_factory=NoProgress)


@dataclass
class CollectionReport:
    name: str
    read: int = 0
    imported: int = 0
    rejected: int = 0
    adopted: int = 0
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class ImportReport:
    source: str
    database: str
    dry_run: bool
    collections: dict[str, CollectionReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # why the import failed
    rejected_samples: list[Problem] = field(default_factory=list)  # the first rows sent to the reject file
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    recovery_thread_id: int | None = None
    ok: bool = False

    @property
    def rows_read(self) -> int:
        return sum(c.read for c in self.collections.values())


class ImportFailed(PychatDbError):
    """The import was refused or a check failed; the target is untouched. `report.problems` says why."""

    def __init__(self, report: ImportReport) -> None:
        first = str(report.problems[0]) if report.problems else "import failed"
        super().__init__(first)
        self.report = report
