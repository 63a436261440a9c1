"""An opened Isar file as an exchange `Source`: the loader, verify and export read it like an export directory.

Rows come from `AppReader.values()` and go through the same `RowCodec` checks
and conversions as NDJSON lines, so validation and conversion are shared: the
codec's `convert_values` entry point, the array-like twin of `convert` that
`MappingSource` uses, with the same refusals and messages (it saves building and
reading a dict per row). A refusal of the Isar reader (corrupt object, unknown
property, dangling link, ...) stops reading: it is raised as the exchange's
`ExportError`, naming collection, id and field.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from pychat_db.exchange.codec import FieldError, NaiveTimezone, Row, RowCodec
from pychat_db.exchange.contract import COLLECTIONS, MESSAGE_TAGS, MESSAGE_TYPES, THREADS, Collection, Kind
from pychat_db.exchange.reader import Chunk, ExportError, Item, MappingSource, Problem, ReadStats
from pychat_db.isar.app import BATCH_BYTES, OpenedFile, open_isar
from pychat_db.isar.format import IsarFormatError
from pychat_db.isar.history import Nulls, ReadNotes
from pychat_db.isar.storage import StorageError, looks_like_mdbx
from pychat_db.isar.worker import ReaderProcess, should_use

RECOVERED_NOTE = (
    "note: {name}: the file was left mid-write (the app crashed or is still running); "
    "read a repaired private copy, the file itself is untouched"
)


UNKNOWN_TYPE = (
    "{value!r} is not one of {names}: the app would show it as text and its value would be lost, so the "
    "message is refused (--reject-file FILE records it and imports the rest)"
)


def _explained(collection: Collection, values: Sequence[Any], exc: FieldError) -> FieldError:
    """The codec's refusal of a row, said for an Isar file: a type name not in the list (which the app would
    read as `text`) names what would be lost and the way past it."""
    for f, value in zip(collection.fields, values, strict=False):
        if f.name == exc.field and f.kind is Kind.ENUM and isinstance(value, str) and value not in MESSAGE_TYPES:
            return FieldError(f.name, UNKNOWN_TYPE.format(value=value, names=", ".join(MESSAGE_TYPES)))
    return exc


_JSON = msgspec.json.Encoder()


def _original(collection: Collection, values: Sequence[Any]) -> bytes | None:
    """A refused object as a JSON line of the export format (bytes as base64, timestamps as µs), so that
    `--reject-file` keeps all of it, as it keeps an NDJSON line; never the configuration (the API key)."""
    if collection.single_object:
        return None
    return _JSON.encode(dict(zip(collection.field_names, values, strict=True)))


def refusal(name: str, exc: IsarFormatError | StorageError, collection: str | None = None) -> ExportError:
    """The reader's error as the exchange's ExportError (`NAME: Collection id N: field: reason`)."""
    return ExportError(Problem(collection, name, None, str(exc)))


def _objects(opened: OpenedFile, name: str, collection: Collection) -> Iterable[tuple[str, Mapping[str, Any]]]:
    isar_name = collection.name if collection.name == "message_tags" else None

    def generate() -> Iterator[tuple[str, Mapping[str, Any]]]:
        try:
            for row in opened.app.rows(collection, raw_bytes=True):
                if isar_name is None:
                    where = f"{name}: {collection.name} id={row['id']}"
                else:
                    where = f"{name}: {collection.name} messageId={row['messageId']} tagId={row['tagId']}"
                yield where, row
        except (IsarFormatError, StorageError) as exc:
            raise refusal(name, exc, collection.name) from None

    return generate()


class _ObjectsChunk(Chunk):
    """Accepted rows of consecutive objects: without lines, an Item names its object (`where_of(row)`)."""

    __slots__ = ("_where_of",)

    def __init__(self, rows: list[Row], where_of: Callable[[Sequence[Any]], str]) -> None:
        super().__init__("", 0, [], rows, None)
        self._where_of = where_of

    def item(self, i: int) -> Item:
        assert self.rows is not None
        row = self.rows[i]
        return Item(self._where_of(row), None, None, row, None)

    def all_items(self) -> list[Item]:
        assert self.rows is not None
        where_of = self._where_of
        return [Item(where_of(row), None, None, row, None) for row in self.rows]


@dataclass
class IsarSource(MappingSource):
    """The app's collections of an opened Isar file. `objects` gives them as mappings (base64-free: fileData
    as bytes), as any `MappingSource`; `items` reads them as value lists through `RowCodec.convert_values`."""

    opened: OpenedFile | None = None
    reader: ReaderProcess | None = None  # makes the loader's (or verify's) chunks in a second process
    chunk_bytes: int = BATCH_BYTES  # a chunk of `chunks()` holds about this much of the file at most
    nulls: Nulls = Nulls.APP  # how a null in a required field is read (`pychat_db.isar.history`)
    # What the last complete read of each collection met: nulls read as the app reads them, values of
    # removed properties (by contract collection; the same from the reader process or inline).
    notes: dict[str, ReadNotes] = field(default_factory=dict)
    # verify's `--orphans adopt`: the database's recovery thread row (`adopt_orphans`)
    recovery: Row | None = None

    def adopt_orphans(self, recovery: Row) -> None:
        """Read the file as an import with `--orphans adopt` stored it: `recovery` (the database's
        "Recovered messages" thread, a threads row) comes after the file's threads, and a message or mode
        output without a thread link points to it. (A link to a missing thread is refused by this reader,
        so an empty link is the only orphan an Isar file has.)"""
        self.recovery = recovery

    @property
    def second_process(self) -> ReaderProcess | None:
        """The reader process, while there is one."""
        return self.reader

    def close(self) -> None:
        """Stop the reader process, if any (the source reads on in this process)."""
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def items(self, collection: Collection) -> Iterator[Item]:
        for chunk in self.checked_chunks(collection):
            yield from chunk.all_items()

    def checked_chunks(self, collection: Collection) -> Iterator[Chunk]:
        """The chunks of `items()`, every check the reader makes included (for verify)."""
        return self.chunks(collection, loader_checks_links=False)

    def chunks(self, collection: Collection, *, loader_checks_links: bool = True) -> Iterator[Chunk]:
        """`_chunks`, with the orphans adopted when `adopt_orphans` was called (verify)."""
        chunks = self._chunks(collection, loader_checks_links=loader_checks_links)
        recovery = self.recovery
        if recovery is None:
            return chunks
        if collection.name == THREADS.name:
            where = f"{self.source_name}: {collection.name} id=" + str(recovery[0])
            return itertools.chain(chunks, [_ObjectsChunk([recovery], lambda row: where)])
        if any(f.name == "threadId" for f in collection.fields):
            return _adopted(chunks, [f.name for f in collection.fields].index("threadId"), recovery[0])
        return chunks

    def _chunks(self, collection: Collection, *, loader_checks_links: bool = True) -> Iterator[Chunk]:
        """The objects of `items(collection)` in chunks, for the loader's bulk insert: a chunk of accepted
        rows (a batch of the reader's, up to 1024 rows or about 4 MiB read) has no Item per row; a refused
        row comes alone, as its Item. The same rows, checks and refusals as `items`.

        `loader_checks_links` (the loader's call): the message_tags pairs are not looked up in Message
        by the reader (`AppReader.typed_batches(check_tag_sources=False)`): the loader's
        `foreign_key_check` finds a pair from a missing message, and then re-reads the collection with
        `items()`, whose checked read refuses it as the reader always did (collection, id, field).
        """
        assert self.opened is not None
        stats = ReadStats(file=None)
        self._stats[collection.name] = stats
        codec = self._codecs.get(collection.name) or RowCodec(collection, self.naive)
        self._codecs[collection.name] = codec
        convert = codec.convert_values
        convert_many = codec.try_convert_values_many
        prefix = f"{self.source_name}: {collection.name} "

        def where_of(row: Sequence[Any]) -> str:
            if collection.name == MESSAGE_TAGS.name:
                return f"{prefix}messageId={row[0]} tagId={row[1]}"
            return f"{prefix}id={row[0]}"

        reader = self.reader
        if reader is not None and reader.checked == (not loader_checks_links) and reader.next_is(collection):
            # The same chunks, made in the reader process.
            for made in reader.read(collection):
                if isinstance(made, list):
                    stats.rows += len(made)
                    yield _ObjectsChunk(made, where_of)
                else:
                    stats.rows += 1
                    yield Chunk(made.where, 0, [], None, [made])
            self._noted(collection, reader.last_notes)
            stats.complete = True
            return
        batches = self.opened.app.typed_batches(
            collection, max_bytes=self.chunk_bytes, check_tag_sources=not loader_checks_links
        )
        finish_typed = codec.finish_typed_many
        try:
            for batch, typed in batches:
                # The reader decodes every string with strict `bytes.decode()`: no lone surrogate. A typed
                # batch has the codec's types by construction (`AppReader.typed_batches`): converted only.
                converted = finish_typed(batch) if typed else convert_many(batch)
                if converted is not None:
                    stats.rows += len(batch)
                    yield _ObjectsChunk(converted, where_of)
                    continue
                rows: list[Row] = []  # a row is refused: one by one, to name it
                for values in batch:
                    try:
                        rows.append(convert(values, strict_utf8=True))
                    except FieldError as exc:
                        if rows:
                            stats.rows += len(rows)
                            yield _ObjectsChunk(rows, where_of)
                            rows = []
                        stats.rows += 1
                        where = where_of(values)
                        error = _explained(collection, values, exc)
                        text = _original(collection, values)
                        yield Chunk(where, 0, [], None, [Item(where, None, text, None, error)])
                if rows:
                    stats.rows += len(rows)
                    yield _ObjectsChunk(rows, where_of)
        except (IsarFormatError, StorageError) as exc:
            raise refusal(self.source_name, exc, collection.name) from None
        self._noted(collection, self.opened.app.notes.get(collection.name))
        stats.complete = True

    def _noted(self, collection: Collection, notes: ReadNotes | None) -> None:
        """Keep what the complete read of `collection` met."""
        if notes is not None:
            self.notes[collection.name] = notes
        else:
            self.notes.pop(collection.name, None)


def _adopted(chunks: Iterator[Chunk], at: int, thread: Any) -> Iterator[Chunk]:
    """The chunks with every accepted row's empty thread link (value `at`) set to `thread`."""
    for chunk in chunks:
        rows = chunk.rows
        if rows is not None:
            for i, row in enumerate(rows):
                if row[at] is None:
                    rows[i] = (*row[:at], thread, *row[at + 1 :])
        yield chunk


def isar_source(
    opened: OpenedFile,
    name: str | os.PathLike[str],
    naive: NaiveTimezone = NaiveTimezone.REJECT,
    *,
    reader: ReaderProcess | None = None,
    checked: bool = False,
    nulls: Nulls = Nulls.APP,
) -> IsarSource:
    """A `MappingSource` over the app's collections in `opened` (an `IsarSource`; see module doc).

    Checks the file's schema against the app mapping first (raises ExportError).
    `reader` (a started `pychat_db.isar.worker.ReaderProcess`): the loader's chunks are made in that
    second process while this one inserts; the source owns it then (`close()` the source to stop it).
    `checked`: that process makes the chunks of `checked_chunks` instead (verify's read), once per collection.
    `nulls`: how a null in a required field is read (`pychat_db.isar.history.Nulls`), in both processes.
    """
    label = os.fspath(name)
    try:
        opened.app.nulls = nulls
    except (IsarFormatError, StorageError) as exc:
        raise refusal(label, exc) from None
    factories = {c.name: (lambda c=c: _objects(opened, label, c)) for c in COLLECTIONS}
    if reader is not None:
        if opened.copy_path is None:
            reader.close()
            reader = None
        else:
            # the order both read in
            reader.begin(opened.copy_path, label, naive, COLLECTIONS, checked=checked, nulls=nulls)
    return IsarSource(label, factories, naive, opened=opened, reader=reader, nulls=nulls)


def is_isar_file(path: str | os.PathLike[str]) -> bool:
    """Whether the tools read `path` as an Isar file: a file named `*.isar`, or any file that starts as an MDBX
    file does (a copy saved as `default.isar.bak`, say). Anything else is taken for an export directory."""
    p = Path(path)
    return p.is_file() and (p.suffix == ".isar" or looks_like_mdbx(p))


@contextlib.contextmanager
def open_source(
    path: str | os.PathLike[str],
    label: str,
    naive: NaiveTimezone = NaiveTimezone.REJECT,
    *,
    reader: str = "auto",
    checked: bool = False,
    notes: IO[str] | None = None,
    nulls: Nulls = Nulls.APP,
) -> Iterator[IsarSource]:
    """The Isar file at `path` (read through a private copy, `open_isar`) as an `IsarSource` named `label`,
    for import (`checked` False) or verify (`checked` True); everything is closed and deleted on exit.

    `reader`: "process" decodes the file in a reader process while this one inserts or compares,
    "inline" in this one, "auto" in a reader process when there is a second CPU (`pychat_db.isar.worker.should_use`).
    The reader process starts before the copy is made, so its start-up overlaps the copy. `notes`:
    where to say that the file needed recovery (`RECOVERED_NOTE`), before any refusal of its schema. `nulls`:
    how a null in a required field is read (`pychat_db.isar.history.Nulls`; the app's reading by default).
    """
    use_process = reader == "process" or (reader == "auto" and should_use())
    process = ReaderProcess() if use_process else None
    try:
        with open_isar(path) as opened:
            if opened.recovered and notes is not None:
                print(RECOVERED_NOTE.format(name=os.fspath(path)), file=notes)
            source = isar_source(opened, label, naive, reader=process, checked=checked, nulls=nulls)  # owns `process`
            try:
                yield source
            finally:
                source.close()
    finally:
        if process is not None:
            process.close()
