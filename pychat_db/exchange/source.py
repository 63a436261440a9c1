"""What every source of contract rows gives the loader and verify: rows, problems, and the `Source` protocol.

A *row* is a tuple of a collection's stored (SQLite) values in `Collection.fields` order (see
`pychat_db.exchange.contract`). Sources: `pychat_db.exchange.directory.ExportDirectory` (an export
directory), `pychat_db.exchange.mapping.MappingSource` (decoded objects) and
`pychat_db.isar.source.IsarSource` (the app's Isar file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from pychat_db.errors import PychatDbError
from pychat_db.exchange.codec import FieldError, Row
from pychat_db.exchange.contract import Collection


@dataclass(slots=True, eq=False, repr=False)
class Item:
    """One object read from a source: where it is, its original text, and its row or its error.

    Exactly one of `row` and `error` is set. `line` is None for sources without
    lines (then `where` names the object, e.g. "chat.isar: messages id=5").
    """

    where: str
    line: int | None
    text: bytes | None
    row: Row | None
    error: FieldError | None

    @property
    def location(self) -> str:
        """`FILE:LINE`, or the object's description when the source has no lines."""
        return self.where if self.line is None else f"{self.where}:{self.line}"

    def __repr__(self) -> str:  # never the text: it may hold the API key
        state = f"error={self.error}" if self.error else "row"
        return f"Item({self.location}, {state})"


@dataclass(slots=True, eq=False, repr=False)  # no repr: `lines` may hold the API key
class Chunk:
    """Consecutive objects of one file, as `ExportDirectory.chunks` reads them.

    Either every object was accepted: `rows[i]` is the row of `lines[i]`, found at
    line `first_line + i` of `where` (no Item per row: the loader inserts `rows` as
    they are); or `rows` is None and `items` holds them one by one, refused ones
    and blank lines included / skipped exactly as `items()` gives them.
    """

    where: str
    first_line: int
    lines: list[bytes]
    rows: list[Row] | None
    items: list[Item] | None

    def item(self, i: int) -> Item:
        """The Item of `rows[i]` (or `items[i]`)."""
        if self.rows is None:
            assert self.items is not None
            return self.items[i]
        return Item(self.where, self.first_line + i, self.lines[i], self.rows[i], None)

    def all_items(self) -> list[Item]:
        if self.rows is None:
            assert self.items is not None
            return self.items
        where, first, lines = self.where, self.first_line, self.lines
        return [Item(where, first + i, lines[i], row, None) for i, row in enumerate(self.rows)]

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.items or ())


@dataclass(frozen=True, slots=True)
class Problem:
    """A refused row or a failed check: `LOCATION: field: reason` (field omitted when None)."""

    collection: str | None
    location: str
    field: str | None
    reason: str
    text: bytes | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.field}: {self.reason}" if self.field else f"{self.location}: {self.reason}"

    @classmethod
    def of(cls, collection: str, item: Item, error: FieldError | None = None) -> Problem:
        err = error or item.error
        assert err is not None
        return cls(collection, item.location, err.field, err.reason, item.text)


class ExportError(PychatDbError):
    """The export cannot be read on: a structural fault (names the file, and the line when there is one)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(slots=True)
class ReadStats:
    """What one complete pass over a collection read (for the manifest and the report)."""

    file: str | None = None
    rows: int = 0
    bytes: int = 0
    sha256: str | None = None
    complete: bool = False


class Source(Protocol):
    """Any origin of contract rows: an export directory, an Isar file, ...

    `items(collection)` may be called more than once (the loader re-reads a
    collection to find the lines of rows whose links point nowhere).
    """

    @property
    def name(self) -> str:
        """What the user named (a directory, a file), for messages."""
        ...

    @property
    def bytes_read(self) -> int:
        """Bytes consumed so far over every pass (for progress)."""
        ...

    def size(self, collection: Collection) -> int | None:
        """Bytes `items(collection)` will read, when known (for progress)."""
        ...

    def items(self, collection: Collection) -> Iterator[Item]:
        """The collection's objects in source order; raises ExportError on a structural fault."""
        ...

    def final_checks(self) -> list[Problem]:
        """Checks possible only after every collection was read once (manifest counts, hashes)."""
        ...

    def stats(self, collection: Collection) -> ReadStats:
        """What the last complete pass over `collection` read."""
        ...

    # Optional capabilities, declared so that mypy checks every use: a source without one returns None
    # (`SourceDefaults` gives those defaults).

    def chunks(self, collection: Collection) -> Iterator[Chunk] | None:
        """The loader's read in chunks (accepted rows without an Item each), or None: read `items()`.

        A chunked read may leave a check to the loader's SQL (e.g. an Isar file's tag links)."""
        ...

    def checked_chunks(self, collection: Collection) -> Iterator[Chunk] | None:
        """Chunks with every check of `items()` made (verify's read), or None: `chunks()` makes them all."""
        ...

    @property
    def second_process(self) -> SecondProcess | None:
        """The process that reads this source beside the caller's (an Isar file's reader), or None."""
        ...


class SecondProcess(Protocol):
    """A process that reads a source while the caller loads or compares (`pychat_db.isar.worker.ReaderProcess`)."""

    @property
    def peak_rss_kb(self) -> int | None:
        """Its own peak resident memory at the end of the last collection it sent (None: not known)."""
        ...


class SourceDefaults:
    """The optional capabilities of `Source` for a source that has none of them."""

    def chunks(self, collection: Collection) -> Iterator[Chunk] | None:
        return None

    def checked_chunks(self, collection: Collection) -> Iterator[Chunk] | None:
        return None

    @property
    def second_process(self) -> SecondProcess | None:
        return None
