"""Streaming, validating reader of an export directory (the contract: ../shared/export-format.md).

The loader (and verify) read exports through the `Source` interface, so any
origin of contract rows plugs in the same way:

    source = ExportDirectory("migration_exports", naive=NaiveTimezone.REJECT)
    for collection in COLLECTIONS:
        for item in source.items(collection):
            if item.error:          # a FieldError: item.location, item.error.field, item.error.reason
                ...
            else:
                item.row            # tuple of SQLite values in collection.fields order
    problems = source.final_checks()   # manifest counts and SHA-256, after every collection was read

* `ExportDirectory` streams each file with constant memory: NDJSON by chunks of
  about `CHUNK_BYTES` (one typed msgspec decode of the whole chunk when each line
  is one object, else line by line; `chunks()` hands the loader a chunk's rows
  without an Item per row), a `NAME.json` array element by
  element (a scanner finds each element's end; one element is held at a time, at
  most `MAX_ELEMENT_BYTES`). It accepts a BOM, CRLF, blank lines, and
  configuration.json as an object, `{}`, `null`, an empty file or no file.
* `MappingSource` wraps already decoded objects (dicts exactly like a decoded JSON
  line, e.g. the Isar reader's), validated by the same `RowCodec.convert`.
* A structural fault that stops reading (no file of the format at all, both `x.ndjson` and `x.json`, an array
  that is not one, an unreadable file, a bad manifest) raises `ExportError`.
* `read_rows(path, collection)` yields the rows of one collection, raising
  `ExportError` on the first bad one: what verify needs.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import msgspec

from pychat_db.errors import PychatDbError
from pychat_db.exchange.codec import FieldError, NaiveTimezone, Row, RowCodec
from pychat_db.exchange.contract import (
    BY_NAME,
    COLLECTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    Collection,
)

BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 1 << 19  # 512 KiB: a chunk of NDJSON and its rows are held at a time
MAX_ELEMENT_BYTES = 256 << 20
REDACTED_TEXT = b"<configuration: text not recorded, it holds the API key>"

__all__ = [
    "Chunk",
    "ExportDirectory",
    "ExportError",
    "Item",
    "MappingSource",
    "Problem",
    "ReadStats",
    "Source",
    "read_rows",
]


class Item:
    """One object read from a source: where it is, its original text, and its row or its error.

    Exactly one of `row` and `error` is set. `line` is None for sources without
    lines (then `where` names the object, e.g. "chat.isar: messages id=5").
    """

    __slots__ = ("error", "line", "row", "text", "where")

    def __init__(self, where: str, line: int | None, text: bytes | None, row: Row | None, error: FieldError | None):
        self.where = where
        self.line = line
        self.text = text
        self.row = row
        self.error = error

    @property
    def location(self) -> str:
        """`FILE:LINE`, or the object's description when the source has no lines."""
        return self.where if self.line is None else f"{self.where}:{self.line}"

    def __repr__(self) -> str:  # never the text: it may hold the API key
        state = f"error={self.error}" if self.error else "row"
        return f"Item({self.location}, {state})"


class Chunk:
    """Consecutive objects of one file, as `ExportDirectory.chunks` reads them.

    Either every object was accepted: `rows[i]` is the row of `lines[i]`, found at
    line `first_line + i` of `where` (no Item per row: the loader inserts `rows` as
    they are); or `rows` is None and `items` holds them one by one, refused ones
    and blank lines included / skipped exactly as `items()` gives them.
    """

    __slots__ = ("first_line", "items", "lines", "rows", "where")

    def __init__(
        self, where: str, first_line: int, lines: list[bytes], rows: list[Row] | None, items: list[Item] | None
    ) -> None:
        self.where = where
        self.first_line = first_line
        self.lines = lines
        self.rows = rows
        self.items = items

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


# ---------------------------------------------------------------------------------------------
# Export directories


class _ManifestEntry(msgspec.Struct, forbid_unknown_fields=True):
    file: str
    rows: int
    sha256: str


class _Manifest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    format: str
    version: int
    collections: dict[str, _ManifestEntry]
    exported_at: str | None = None


_NONWS = re.compile(rb"[^ \t\r\n]")
_STRUCTURAL = re.compile(rb'[\[\]{}"]')
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
_BARE_SCALAR = re.compile(rb"[^ \t\r\n,\]]*")
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_HASH_QUEUE = 8
_FAST_ATTEMPTS = 4


class _Counter:
    """Counts the bytes of one pass over a file, feeds the source's progress and, when asked, hashes them.

    Hashing runs in a background thread (hashlib releases the GIL on large
    buffers), so checking a manifest's SHA-256 costs the reader no time on a
    second core; at most `_HASH_QUEUE` chunks wait, so memory stays bounded.
    """

    __slots__ = ("_queue", "_sha", "_thread", "nbytes", "owner")

    def __init__(self, owner: ExportDirectory, hash_bytes: bool) -> None:
        self.nbytes = 0
        self.owner = owner
        self._sha = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if hash_bytes:
            self._queue = queue.Queue(maxsize=_HASH_QUEUE)
            self._thread = threading.Thread(target=self._run, name="export-sha256", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._sha.update(chunk)

    def add(self, data: bytes) -> None:
        if self._queue is not None:
            self._queue.put(data)
        self.nbytes += len(data)
        self.owner._bytes_read += len(data)

    def hexdigest(self) -> str | None:
        """The SHA-256 of every byte added (None when not hashing); ends the thread."""
        if self._queue is None or self._thread is None:
            return None
        self.close()
        return self._sha.hexdigest()

    def close(self) -> None:
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class _ArrayScanner:
    """Finds the elements of one JSON array in a file, one at a time, with their first line.

    Holds one chunk plus the element in progress. Each element is found by a
    fast path (up to the next `}`, accepted when that is complete JSON: a JSON
    object cannot be a proper prefix of another) or else by tracking strings and
    brackets. Structural faults raise ExportError; an element's own content is
    validated later by its decoder.
    """

    def __init__(
        self, stream: IO[bytes], name: str, counter: _Counter, decode: Callable[[bytes], Row | None] | None = None
    ) -> None:
        self.stream = stream
        self.name = name
        self.counter = counter
        self.decode = decode
        self.row: Row | None = None  # the last element's row, when the fast path decoded it already
        self.buf = b""
        self.pos = 0
        self.line = 1
        self.counted = 0
        self.eof = False

    def _fail(self, line: int, reason: str) -> ExportError:
        return ExportError(Problem(None, f"{self.name}:{line}", None, reason))

    def _fill(self) -> bool:
        """Drop the buffer before `pos` and append a chunk; False at end of file."""
        if self.eof:
            return False
        chunk = self.stream.read(CHUNK_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.counter.add(chunk)
        self.line += self.buf.count(b"\n", self.counted, self.pos)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        self.counted = 0
        return True

    def _line_at(self, p: int) -> int:
        self.line += self.buf.count(b"\n", self.counted, p)
        self.counted = p
        return self.line

    def _next_char(self) -> int | None:
        """Move `pos` to the next non-whitespace byte and return it (None at end of file)."""
        while True:
            m = _NONWS.search(self.buf, self.pos)
            if m is not None:
                self.pos = m.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self._fill():
                return None

    def elements(self) -> Iterator[tuple[int, bytes]]:
        while len(self.buf) < len(BOM) and self._fill():
            pass
        if self.buf.startswith(BOM):
            self.pos = len(BOM)
        c = self._next_char()
        if c is None:
            raise self._fail(self._line_at(self.pos), "empty file: expected a JSON array of objects")
        if c != ord("["):
            raise self._fail(self._line_at(self.pos), "expected a JSON array of objects (`[`)")
        self.pos += 1
        c = self._next_char()
        if c == ord("]"):
            self.pos += 1
        else:
            while True:
                if c is None:
                    raise self._fail(self._line_at(self.pos), "unexpected end of file inside the array (truncated?)")
                line = self._line_at(self.pos)
                yield line, self._element(line)
                c = self._next_char()
                if c == ord(","):
                    self.pos += 1
                    c = self._next_char()
                    if c == ord("]"):
                        raise self._fail(self._line_at(self.pos), "malformed JSON: trailing comma before `]`")
                    continue
                if c == ord("]"):
                    self.pos += 1
                    break
                if c is None:
                    raise self._fail(self.line, "unexpected end of file inside the array (truncated?)")
                where = self._line_at(self.pos) if c is not None else self.line
                raise self._fail(where, f"malformed JSON: expected `,` or `]` after the element of line {line}")
        if self._next_char() is not None:
            raise self._fail(self._line_at(self.pos), "malformed JSON: content after the end of the array")

    def _element(self, line: int) -> bytes:
        buf, start = self.buf, self.pos
        self.row = None
        if buf[start] == ord("{"):
            # Fast path: the element ends at one of the next `}`. A candidate that decodes is complete
            # (a JSON object is never a proper prefix of another); a `}` inside a string moves on.
            end = buf.find(b"}", start)
            for attempt in range(_FAST_ATTEMPTS):
                if end < 0:
                    break
                candidate = buf[start : end + 1]
                if attempt == 0 and self.decode is not None:
                    self.row = self.decode(candidate)
                    if self.row is not None:
                        self.pos = end + 1
                        return candidate
                try:
                    _raw_decoder.decode(candidate)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                    end = buf.find(b"}", end + 1)
                else:
                    self.pos = end + 1
                    return candidate  # complete, but refused: the caller decodes it again for the reason
        return self._scan_element(line)

    def _more(self, line: int) -> None:
        if self.pos == 0 and len(self.buf) > MAX_ELEMENT_BYTES:
            raise ExportError(
                Problem(None, f"{self.name}:{line}", None, f"element larger than {MAX_ELEMENT_BYTES >> 20} MiB")
            )
        if not self._fill():
            raise self._fail(line, "unexpected end of file inside this element (truncated?)")

    def _scan_element(self, line: int) -> bytes:
        # Offsets are relative to self.pos (the element's start), which _fill() moves to 0.
        first = self.buf[self.pos]
        if first not in b'{["':
            while True:
                m = _BARE_SCALAR.match(self.buf, self.pos)
                assert m is not None
                if m.end() < len(self.buf) or self.eof:
                    break
                self._more(line)
            self.pos, text = m.end(), self.buf[self.pos : m.end()]
            return text or b","
        depth = 0
        in_string = False
        k = 0
        while True:
            p = self.pos + k
            if in_string:
                m = _STRING_REST.match(self.buf, p)
                assert m is not None
                e = m.end()
                if e >= len(self.buf) - 1 and (e == len(self.buf) or self.buf[e] == ord("\\")):
                    k = e - self.pos
                    self._more(line)
                    continue
                in_string = False
                k = e + 1 - self.pos
                if depth == 0:
                    break
                continue
            found = _STRUCTURAL.search(self.buf, p)
            if found is None:
                k = len(self.buf) - self.pos
                self._more(line)
                continue
            k = found.end() - self.pos
            ch = self.buf[found.start()]
            if ch == ord('"'):
                in_string = True
            elif ch in b"{[":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    break
        text = self.buf[self.pos : self.pos + k]
        self.pos += k
        return text


def expected_files() -> str:
    """The files an export directory holds (../shared/export-format.md), for messages."""
    names = [MANIFEST_FILE] + [f"{c.name}.json" if c.single_object else f"{c.name}.ndjson" for c in COLLECTIONS]
    return f"{', '.join(names)} (a collection may be NAME.json, one JSON array, instead)"


class ExportDirectory:
    """An export directory as a Source. Reads nothing until asked, except manifest.json."""

    def __init__(self, path: str | os.PathLike[str], naive: NaiveTimezone = NaiveTimezone.REJECT) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            if self.path.is_file():
                why = "a file, but neither an export directory nor an Isar database"
            elif not self.path.exists():
                why = "no such file or directory"
            else:
                why = "not a directory"
            raise ExportError(Problem(None, str(self.path), None, why))
        self.naive = naive
        self.codecs = {c.name: RowCodec(c, naive) for c in COLLECTIONS}
        self._bytes_read = 0
        self._stats: dict[str, ReadStats] = {c.name: ReadStats() for c in COLLECTIONS}
        self.files: dict[str, Path | None] = {c.name: self._find(c) for c in COLLECTIONS}
        if all(p is None for p in self.files.values()) and not (self.path / MANIFEST_FILE).exists():
            self._refuse_no_export_file()
        self.manifest = self._read_manifest()

    def _refuse_no_export_file(self) -> None:
        """A directory holding none of the format's files is no export (an empty or a mistyped directory):
        read as zero rows it would import, and verify, as a success."""
        try:
            empty = not any(self.path.iterdir())
        except OSError as exc:
            raise ExportError(Problem(None, str(self.path), None, exc.strerror or str(exc))) from None
        why = (
            "an empty directory, not an export: expected the export format's files"
            if empty
            else "not an export directory: it holds none of the export format's files"
        )
        raise ExportError(Problem(None, str(self.path), None, f"{why}: {expected_files()}"))

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    def unexpected_files(self) -> list[str]:
        """Files in the directory that are no collection of the contract (ignored; worth a warning)."""
        known = {MANIFEST_FILE} | {p.name for p in self.files.values() if p is not None}
        return sorted(p.name for p in self.path.iterdir() if p.suffix in {".json", ".ndjson"} and p.name not in known)

    def _find(self, collection: Collection) -> Path | None:
        candidates = [self.path / f"{collection.name}.json"]
        if not collection.single_object:
            candidates.insert(0, self.path / f"{collection.name}.ndjson")
        present = [p for p in candidates if p.exists()]
        if len(present) > 1:
            raise ExportError(
                Problem(
                    collection.name,
                    str(present[1].name),
                    None,
                    f"both {present[0].name} and {present[1].name} exist; keep one of them",
                )
            )
        return present[0] if present else None

    def _read_manifest(self) -> _Manifest | None:
        path = self.path / MANIFEST_FILE
        if not path.exists():
            return None
        try:
            manifest = msgspec.json.decode(path.read_bytes().removeprefix(BOM), type=_Manifest)
        except msgspec.ValidationError as exc:
            raise ExportError(Problem(None, MANIFEST_FILE, None, f"invalid manifest: {exc}")) from None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ExportError(Problem(None, MANIFEST_FILE, None, f"malformed JSON: {exc}")) from None
        if manifest.format != FORMAT_NAME or manifest.version != FORMAT_VERSION:
            raise ExportError(
                Problem(
                    None,
                    MANIFEST_FILE,
                    "format",
                    f"{manifest.format!r} version {manifest.version}; this importer reads "
                    f"{FORMAT_NAME!r} version {FORMAT_VERSION}",
                )
            )
        for name in manifest.collections:
            if name not in BY_NAME:
                raise ExportError(
                    Problem(None, MANIFEST_FILE, f"collections.{name}", "not a collection of the contract")
                )
        return manifest

    def size(self, collection: Collection) -> int | None:
        path = self.files[collection.name]
        return path.stat().st_size if path is not None else 0

    def stats(self, collection: Collection) -> ReadStats:
        return self._stats[collection.name]

    def items(self, collection: Collection) -> Iterator[Item]:
        for chunk in self.chunks(collection):
            if chunk.rows is None:
                assert chunk.items is not None
                yield from chunk.items
            else:
                where, lineno, lines = chunk.where, chunk.first_line, chunk.lines
                for i, row in enumerate(chunk.rows):
                    yield Item(where, lineno + i, lines[i], row, None)

    def chunks(self, collection: Collection) -> Iterator[Chunk]:
        """The collection's objects in source order, in chunks (see `Chunk`); raises ExportError on a fault.

        An NDJSON file comes in chunks of the lines of about `CHUNK_BYTES`, each
        decoded in one tight loop: a chunk whose every line was accepted carries
        its rows without an Item per row. Other files come one object a chunk.
        """
        path = self.files[collection.name]
        stats = ReadStats(file=path.name if path else None)
        self._stats[collection.name] = stats
        if path is None:
            stats.complete = True
            return
        manifest = self.manifest
        counter = _Counter(self, hash_bytes=manifest is not None and collection.name in manifest.collections)
        codec = self.codecs[collection.name]
        try:
            with path.open("rb") as stream:
                if collection.single_object:
                    for item in self._single_object(stream, path.name, codec, counter, stats):
                        yield Chunk(path.name, item.line or 1, [], None, [item])
                elif path.suffix == ".json":
                    scanner = _ArrayScanner(stream, path.name, counter, codec.try_decode)
                    for line, text in scanner.elements():
                        stats.rows += 1
                        row = scanner.row
                        item = (
                            _item(codec, path.name, line, text)
                            if row is None
                            else Item(path.name, line, text, row, None)
                        )
                        yield Chunk(path.name, line, [text], None, [item])
                else:
                    yield from self._ndjson(stream, path.name, codec, counter, stats)
        except OSError as exc:
            raise ExportError(Problem(collection.name, path.name, None, f"cannot read: {exc.strerror}")) from None
        finally:
            counter.close()
        stats.bytes = counter.nbytes
        stats.sha256 = counter.hexdigest()
        stats.complete = True

    def _ndjson(
        self, stream: IO[bytes], name: str, codec: RowCodec, counter: _Counter, stats: ReadStats
    ) -> Iterator[Chunk]:
        decode, try_lines = codec.decode, codec.try_decode_lines
        lineno = 0  # lines before this chunk
        pending: list[bytes] = []
        pending_size = 0
        at_start = True
        while True:
            chunk = stream.read(CHUNK_BYTES)
            if chunk:
                counter.add(chunk)
                if chunk.find(b"\n") < 0:
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size > MAX_ELEMENT_BYTES:
                        raise ExportError(
                            Problem(
                                None, f"{name}:{lineno + 1}", None, f"line longer than {MAX_ELEMENT_BYTES >> 20} MiB"
                            )
                        )
                    continue
                data = b"".join(pending) + chunk if pending else chunk
                lines = data.split(b"\n")
                tail = lines.pop()
                pending, pending_size = [tail], len(tail)
                end = len(data) - len(tail) - 1  # data[:end] is `lines` joined by newlines
            else:
                data = b"".join(pending)
                lines = [data]
                pending = []
                end = len(data)
            if at_start and lines:
                lines[0] = lines[0].removeprefix(BOM)
                at_start = False
            rows: list[Row] = []
            failed: FieldError | None = None
            # The whole block in one msgspec call when each line is one object: every line starts
            # with `{` and ends with `}` (so no value spans a newline: `}` then `{` is never inside
            # a value, and a string holds no raw newline) and there are as many values as lines.
            # Anything else (a refused value, blank lines, CRLF, a BOM) goes line by line.
            n = len(lines)
            block = None
            if (
                end > 0
                and all(map(bytes.startswith, lines, itertools.repeat(b"{")))
                and all(map(bytes.endswith, lines, itertools.repeat(b"}")))
            ):
                block = try_lines(memoryview(data)[:end])
            if block is not None and len(block) == n:
                rows = block
            else:
                append = rows.append
                try:
                    for line in lines:
                        append(decode(line))
                except FieldError as exc:
                    failed = exc
            if failed is None:
                stats.rows += len(rows)
                yield Chunk(name, lineno + 1, lines, rows, None)
            else:
                # Row by row from the first line refused (or blank): the accepted ones before it as they are.
                done = len(rows)
                items = [Item(name, lineno + 1 + i, lines[i], row, None) for i, row in enumerate(rows)]
                for k in range(done, len(lines)):
                    line = lines[k]
                    if not line or line.isspace():
                        continue
                    if k == done:
                        items.append(Item(name, lineno + 1 + k, line, None, failed))
                        continue
                    try:
                        items.append(Item(name, lineno + 1 + k, line, decode(line), None))
                    except FieldError as exc:
                        items.append(Item(name, lineno + 1 + k, line, None, exc))
                if items:
                    stats.rows += len(items)
                    yield Chunk(name, lineno + 1, lines, None, items)
            lineno += len(lines)
            if not chunk:
                break

    def _single_object(
        self, stream: IO[bytes], name: str, codec: RowCodec, counter: _Counter, stats: ReadStats
    ) -> Iterator[Item]:
        data = stream.read(MAX_ELEMENT_BYTES + 1)
        counter.add(data)
        if len(data) > MAX_ELEMENT_BYTES:
            raise ExportError(Problem(codec.collection.name, name, None, "larger than one object can be"))
        text = data.removeprefix(BOM)
        start = _NONWS.search(text)
        if start is None:
            return  # an empty file: no configuration
        line = 1 + text.count(b"\n", 0, start.start())
        try:
            value = msgspec.json.decode(text)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass  # the codec explains what is wrong
        else:
            if value is None or value == {}:
                return  # `null` or `{}`: no configuration
        stats.rows += 1
        item = _item(codec, name, line, text)
        if codec.collection.single_object:
            item.text = REDACTED_TEXT
        yield item

    def final_checks(self) -> list[Problem]:
        """Manifest checks (when there is a manifest): file names, row counts and SHA-256 per collection."""
        if self.manifest is None:
            return []
        problems: list[Problem] = []
        entries = self.manifest.collections
        for collection in COLLECTIONS:
            stats = self._stats[collection.name]
            if not stats.complete:
                continue
            entry = entries.get(collection.name)
            where = f"{MANIFEST_FILE}"
            key = f"collections.{collection.name}"
            if entry is None:
                if stats.file is not None:
                    problems.append(
                        Problem(collection.name, where, key, f"missing, but {stats.file} exists ({stats.rows} rows)")
                    )
                continue
            if stats.file != entry.file:
                found = stats.file or "no file"
                problems.append(Problem(collection.name, where, f"{key}.file", f"{entry.file!r}, found {found}"))
                continue
            if stats.rows != entry.rows:
                problems.append(
                    Problem(
                        collection.name,
                        where,
                        f"{key}.rows",
                        f"manifest says {entry.rows}, {stats.file} has {stats.rows}",
                    )
                )
            if stats.sha256 != entry.sha256.lower():
                problems.append(
                    Problem(
                        collection.name,
                        where,
                        f"{key}.sha256",
                        f"manifest says {entry.sha256}, {stats.file} has {stats.sha256} (the file changed)",
                    )
                )
        return problems


def _item(codec: RowCodec, name: str, line: int, text: bytes) -> Item:
    try:
        return Item(name, line, text, codec.decode(text), None)
    except FieldError as exc:
        return Item(name, line, text, None, exc)


# ---------------------------------------------------------------------------------------------
# Decoded objects (e.g. the Isar reader)


ObjectsFactory = Callable[[], Iterable[tuple[str, Mapping[str, Any]]]]


@dataclass
class MappingSource:
    """A Source over already decoded objects: per collection, a callable returning (where, object) pairs.

    `where` describes the object for messages (e.g. "chat.isar: messages id=5");
    each object is a dict like a decoded JSON line (camelCase keys, timestamps as
    int µs or ISO text, fileData as base64 text, a list of ints, bytes or None).
    Each call of the factory must iterate the objects afresh.
    """

    source_name: str
    objects: Mapping[str, ObjectsFactory]
    naive: NaiveTimezone = NaiveTimezone.REJECT
    _stats: dict[str, ReadStats] = field(default_factory=dict)
    _codecs: dict[str, RowCodec] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source_name

    @property
    def bytes_read(self) -> int:
        return 0

    def size(self, collection: Collection) -> int | None:
        return None

    def stats(self, collection: Collection) -> ReadStats:
        return self._stats.setdefault(collection.name, ReadStats())

    def items(self, collection: Collection) -> Iterator[Item]:
        factory = self.objects.get(collection.name)
        stats = ReadStats(file=None)
        self._stats[collection.name] = stats
        if factory is None:
            stats.complete = True
            return
        codec = self._codecs.get(collection.name) or RowCodec(collection, self.naive)
        self._codecs[collection.name] = codec
        for where, obj in factory():
            stats.rows += 1
            try:
                yield Item(where, None, None, codec.convert(obj), None)
            except FieldError as exc:
                yield Item(where, None, None, None, exc)
        stats.complete = True

    def final_checks(self) -> list[Problem]:
        return []


def read_rows(
    path: str | os.PathLike[str], collection: Collection, naive: NaiveTimezone = NaiveTimezone.REJECT
) -> Iterator[Row]:
    """The rows of one collection of an export directory; raises ExportError at the first bad one."""
    source = ExportDirectory(path, naive)
    for item in source.items(collection):
        if item.error is not None:
            raise ExportError(Problem.of(collection.name, item))
        assert item.row is not None
        yield item.row
