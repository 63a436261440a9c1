"""An export directory (the contract: ../shared/export-format.md) as a `Source`, streamed and validated.

`ExportDirectory` streams each file with constant memory: NDJSON by chunks of about `CHUNK_BYTES` (one
typed msgspec decode of the whole chunk when each line is one object, else line by line; `chunks()` hands
the loader a chunk's rows without an Item per row), a `NAME.json` array element by element
(`pychat_db.exchange.scanner`). It accepts a BOM, CRLF, blank lines, and configuration.json as an object,
`{}`, `null`, an empty file or no file. A structural fault that stops reading (no file of the format at
all, both `x.ndjson` and `x.json`, an array that is not one, an unreadable file, a bad manifest) raises
`ExportError`. `read_rows(path, collection)` yields the rows of one collection, raising `ExportError` on
the first bad one.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from pychat_db.exchange.codec import FieldError, NaiveTimezone, Row, RowCodec
from pychat_db.exchange.contract import (
    BY_NAME,
    COLLECTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    Collection,
)
from pychat_db.exchange.hashing import ByteCounter
from pychat_db.exchange.scanner import BOM, CHUNK_BYTES, MAX_ELEMENT_BYTES, ArrayScanner
from pychat_db.exchange.source import Chunk, ExportError, Item, Problem, ReadStats, SourceDefaults

REDACTED_TEXT = b"<configuration: text not recorded, it holds the API key>"
_NONWS = re.compile(rb"[^ \t\r\n]")


class _ManifestEntry(msgspec.Struct, forbid_unknown_fields=True):
    file: str
    rows: int
    sha256: str


class _Manifest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    format: str
    version: int
    collections: dict[str, _ManifestEntry]
    exported_at: str | None = None


def expected_files() -> str:
    """The files an export directory holds (../shared/export-format.md), for messages."""
    names = [MANIFEST_FILE] + [f"{c.name}.json" if c.single_object else f"{c.name}.ndjson" for c in COLLECTIONS]
    return f"{', '.join(names)} (a collection may be NAME.json, one JSON array, instead)"


class ExportDirectory(SourceDefaults):
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

    def _count_bytes(self, n: int) -> None:
        self._bytes_read += n

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
        counter = ByteCounter(
            self._count_bytes, hash_bytes=manifest is not None and collection.name in manifest.collections
        )
        codec = self.codecs[collection.name]
        try:
            with path.open("rb") as stream:
                if collection.single_object:
                    for item in self._single_object(stream, path.name, codec, counter, stats):
                        yield Chunk(path.name, item.line or 1, [], None, [item])
                elif path.suffix == ".json":
                    scanner = ArrayScanner(stream, path.name, counter, codec.try_decode)
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
        self, stream: IO[bytes], name: str, codec: RowCodec, counter: ByteCounter, stats: ReadStats
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
        self, stream: IO[bytes], name: str, codec: RowCodec, counter: ByteCounter, stats: ReadStats
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
