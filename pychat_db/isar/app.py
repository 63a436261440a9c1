"""The chat app's Isar 3 models → the export contract's rows.

`AppReader.rows(collection)` yields, for one contract collection
(`pychat_db.exchange.contract`), the rows exactly as the export contract's
JSON rows: dicts with the contract's camelCase keys in its field order; ids
and timestamps (µs since the epoch, UTC) as int, `fileData` as standard
base64 text or None, `isEditable` as bool, links (`threadId`, `modeId`) as
int or None, message_tags as {"messageId", "tagId"}. Everything downstream
(validation, loading, canonical export) is shared with the NDJSON path.

The mapping (Isar collection / property / link ← contract field) is the table
`mapping.MAPPING`, also in docs/isar-format.md. What the mapping does not know is
refused when it holds data (it would be lost), with collection, id and field.
A null in a required field is read as the app reads it (`AppReader.nulls`,
`pychat_db.isar.history`), counted in `AppReader.notes` with the values of
removed properties.

An object is decoded by the generated decoder of its collection (`decoders`) when
it is ordinary, else by the reference getters (`getters`); a single link is joined
as the objects are read (`links.LinkJoin`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pychat_db.exchange import contract
from pychat_db.exchange.contract import Collection
from pychat_db.isar.decoders import FastRow, compile_fast_row
from pychat_db.isar.file import IsarFile
from pychat_db.isar.format import CollectionSchema, IsarFormatError, ObjectReader
from pychat_db.isar.getters import Getter, NullReads, field_refusal, getter
from pychat_db.isar.history import Nulls, ReadNotes, removed_properties
from pychat_db.isar.links import LinkJoin
from pychat_db.isar.mapping import BY_CONTRACT, TAGS_LINK, CollectionMap, check_schema
from pychat_db.isar.storage import StorageError, private_copy

Row = dict[str, Any]
BATCH_ROWS = 1024  # rows per batch of `typed_batches` at most
BATCH_BYTES = 4 << 20  # and about this much read from the file (blobs) per batch
OBJECT_BATCH = 64  # objects read from the file per call (in C), their ids decoded in one call


class AppReader:
    """The app's collections in an opened Isar 3 file, as contract rows. Checks the schema when created."""

    def __init__(self, isar: IsarFile, nulls: Nulls = Nulls.APP) -> None:
        self.isar = isar
        self.nulls = nulls  # how a null in a required field is read (`pychat_db.isar.history`)
        # What the last read of each collection met (defaults, removed values), by contract collection.
        self.notes: dict[str, ReadNotes] = {}
        self._ids: dict[str, frozenset[int]] = {}
        check_schema(isar)

    def ids_of(self, isar_collection: str) -> frozenset[int]:
        """Ids of a (small) link-target collection: Thread, Mode or Tag. Kept in memory once read."""
        ids = self._ids.get(isar_collection)
        if ids is None:
            ids = frozenset(id_ for id_, _ in self.isar.raw_objects(isar_collection))
            self._ids[isar_collection] = ids
        return ids

    def count(self, collection: Collection) -> int:
        """Rows the collection will have (from the maps' entry counts; no object is read)."""
        if collection.name == contract.MESSAGE_TAGS.name:
            schema = self.isar.collections.get("Message")
            link = next((lk for lk in schema.links if lk.name == "tags"), None) if schema else None
            return self.isar.link_count("Message", link) if link else 0
        cmap = BY_CONTRACT[collection.name]
        return self.isar.count(cmap.isar) if cmap.isar in self.isar.collections else 0

    def rows(self, collection: Collection, *, raw_bytes: bool = False) -> Iterator[Row]:
        """The contract rows of `collection`, in id order (message_tags: by messageId, tagId), streamed.

        `raw_bytes=True` gives `fileData` as bytes instead of base64 text (the
        exchange codec accepts both; it saves an encode and a decode per blob).
        """
        if collection.name == contract.MESSAGE_TAGS.name:
            for pairs in self._message_tags(True):
                for src, tag in pairs:
                    yield {"messageId": src, "tagId": tag}
            return
        for batch, _ in self._rows(BY_CONTRACT[collection.name], raw_bytes, False, BATCH_ROWS, BATCH_BYTES):
            yield from batch

    def values(self, collection: Collection) -> Iterator[Sequence[Any]]:
        """Like `rows(collection, raw_bytes=True)`, each row as the list (tuple) of its values in the contract's
        field order: no dict per row (`RowCodec.convert_values`).

        Every str comes from strict UTF-8 decoding (`bytes.decode()`).
        """
        for batch in self.value_batches(collection):
            yield from batch

    def value_batches(self, collection: Collection) -> Iterator[list[Sequence[Any]]]:
        """The rows of `values(collection)` in the batches of `typed_batches(collection)`, without whether
        each is typed."""
        return (batch for batch, _ in self.typed_batches(collection))

    def typed_batches(
        self,
        collection: Collection,
        *,
        max_rows: int = BATCH_ROWS,
        max_bytes: int = BATCH_BYTES,
        check_tag_sources: bool = True,
    ) -> Iterator[tuple[list[Sequence[Any]], bool]]:
        """The rows of `values(collection)` in lists of up to `max_rows` rows or about `max_bytes` read
        (the import's hot path: no call per row between the reader and the codec), each with whether it is
        *typed*: every row made by the generated decoder (`compile_fast_row`), whose values have the exchange
        codec's types by construction (ints from i64 fields, str from strict UTF-8, bytes, bool; enum names,
        timestamps and nulls checked), so `RowCodec.finish_typed_many` can convert them without validating
        them again (`tests/test_isar_roundtrip.py` compares it with `convert_values` on the same objects).

        A refusal is raised after the rows before it were yielded, so a consumer sees the same rows
        before the same error as with `values()`.

        `check_tag_sources=False` (only for a consumer that proves it otherwise, as the loader's
        `foreign_key_check` does): message_tags pairs are not checked to come from an existing
        Message, which costs a lookup (reading the whole message) per distinct source. A pair
        to a missing Tag, or a corrupt pair, is still refused, with the same error as the checked
        read gives (it reruns the checked read to find the first refusal in link order).
        """
        if collection.name == contract.MESSAGE_TAGS.name:
            return ((pairs, False) for pairs in self._message_tags(check_tag_sources))  # LINK_BATCH pairs each
        return self._rows(BY_CONTRACT[collection.name], True, True, max_rows, max_bytes)

    def _rows(
        self, cmap: CollectionMap, raw_bytes: bool, as_values: bool, max_rows: int, max_bytes: int
    ) -> Iterator[tuple[list[Any], bool]]:  # lists of rows (dicts or value lists), typed (see typed_batches)
        """The rows of `cmap`, a batch of objects at a time.

        A batch of objects (read in C, ids decoded in one call: `IsarFile.object_batches`) is decoded by the
        generated decoder mapped over it, its links joined a batch at a time (`_Decoding.batch`). Anything
        unusual in it (an object the generated decoder leaves, an unusual link) goes object by object
        through the reference getters and `LinkJoin.take_one` (`_Decoding.one_by_one`), which give the value
        or the precise error, after the rows before it.
        """
        notes = ReadNotes(cmap.contract.name, cmap.isar)
        self.notes[cmap.contract.name] = notes  # this read's, from its start (a read again counts afresh)
        schema = self.isar.collections.get(cmap.isar)
        if schema is None:
            return
        decoding = _Decoding(self, cmap, schema, notes, raw_bytes, as_values)
        pending = _Pending()
        seen = 0  # objects read so far
        try:
            for ids, datas in self.isar.object_batches(cmap.isar, OBJECT_BATCH):
                if (decoding.single and seen + len(ids) > 1) or not decoding.batch(datas, ids, pending):
                    decoding.one_by_one(datas, ids, pending, seen)
                seen += len(ids)
                pending.nbytes += sum(map(len, datas)) + 64 * len(datas)
                yield from pending.full(max_rows, max_bytes)
            decoding.finish()
        except (IsarFormatError, StorageError) as exc:
            if pending.rows:  # the rows before the refusal first, as object by object
                yield pending.rows, pending.typed
            raise exc from None
        if pending.rows:
            yield pending.rows, pending.typed

    def _message_tags(self, check_sources: bool) -> Iterator[list[Any]]:  # (messageId, tagId) tuples
        """The pairs of the link Message.tags, a batch at a time: every target among the Tag ids (a set
        operation) and, with `check_sources`, every distinct source looked up once in Message (not every
        message read). The first faulty pair in link order is refused, source before target, as pair by pair."""
        source, link_name, target = TAGS_LINK
        schema = self.isar.collections.get(source)
        link = next((lk for lk in schema.links if lk.name == link_name), None) if schema else None
        if link is None:
            return
        targets = self.ids_of(target)
        if not check_sources:
            try:
                for sources, tag_ids in self.isar.link_batches(source, link):
                    if not targets.issuperset(tag_ids):
                        break
                    yield list(zip(sources, tag_ids, strict=True))
                else:
                    return
            except (IsarFormatError, StorageError) as exc:
                refused: IsarFormatError | StorageError | None = exc
            else:
                refused = None
            # A refusal: the checked read raises the first one in link order (maybe a missing source before it).
            for _ in self._message_tags(True):
                pass
            if refused is not None:
                raise refused
            raise AssertionError("the checked read of Message.tags accepted what the unchecked one refused")
        first_missing = self.isar.first_missing
        checked: int | None = None  # the last source looked up (it may continue in the next batch)
        for sources, tag_ids in self.isar.link_batches(source, link):
            bad = None if targets.issuperset(tag_ids) else next(i for i, t in enumerate(tag_ids) if t not in targets)
            distinct = list(dict.fromkeys(sources if bad is None else sources[: bad + 1]))
            if distinct[0] == checked:
                del distinct[0]
            missing = first_missing(source, distinct)
            if missing is not None:
                raise IsarFormatError(
                    "link from an object that does not exist", collection=source, id=distinct[missing], field=link_name
                )
            checked = sources[-1]
            if bad is not None:
                raise IsarFormatError(
                    f"link to {target} id {tag_ids[bad]}, which does not exist",
                    collection=source,
                    id=sources[bad],
                    field=link_name,
                )
            yield list(zip(sources, tag_ids, strict=True))


class _Pending:
    """The rows of the batch being made, whether every one came from the generated decoder (`typed`), and
    about how much of the file they were read from (`nbytes`)."""

    __slots__ = ("nbytes", "rows", "typed")

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.typed = True
        self.nbytes = 0

    def full(self, max_rows: int, max_bytes: int) -> Iterator[tuple[list[Any], bool]]:
        """The batches of `max_rows` rows, or of all the rows once `max_bytes` is passed, taken out."""
        while len(self.rows) >= max_rows:
            yield self.rows[:max_rows], self.typed
            del self.rows[:max_rows]
            self.nbytes = 0
            self.typed = self.typed or not self.rows  # the next batch starts typed, as after `max_bytes`
        if self.nbytes > max_bytes:
            yield self.rows, self.typed
            self.rows = []
            self.nbytes = 0
            self.typed = True


class _Decoding:
    """One read of one collection: its objects decoded into rows and their single links joined.

    An object is decoded by the generated decoder (`compile_fast_row`) or, when that leaves it, by the
    reference getters (`reference`), which give the value or the precise error.
    """

    def __init__(
        self,
        reader: AppReader,
        cmap: CollectionMap,
        schema: CollectionSchema,
        notes: ReadNotes,
        raw_bytes: bool,
        as_values: bool,
    ) -> None:
        self.name = cmap.isar
        self.single = cmap.contract.single_object  # a second object is refused
        self.notes = notes
        self.as_values = as_values
        self.embedded = reader.isar.embedded
        props = {p.field: p for p in cmap.properties}
        link_fields = {lm.field for lm in cmap.links}
        nulls = NullReads(notes, reader.nulls)
        # A getter per contract field in its order; None: the id and the link targets, set by the caller.
        self.getters: list[tuple[str, Getter | None]] = []
        for f in cmap.contract.fields:
            if f.name == "id" or f.name in link_fields:
                self.getters.append((f.name, None))
            else:
                prop = schema.by_name.get(props[f.name].prop)
                self.getters.append((f.name, getter(f, prop, nulls, raw_bytes)))
        known = {pm.prop for pm in cmap.properties}
        self.unknown = [p for p in schema.named_properties if p.name not in known]
        self.removed = removed_properties(schema)
        positions = {f.name: i for i, f in enumerate(cmap.contract.fields)}
        # Where a link's target goes in a row: its key (a dict) or position (a list of values).
        self.keys: list[Any] = [positions[lm.field] if as_values else lm.field for lm in cmap.links]
        self.joins = [
            LinkJoin(reader.isar, cmap.isar, lm.link, lm.target, reader.ids_of(lm.target)) for lm in cmap.links
        ]
        # No generated decoder when a property is unknown: every object is checked to leave it null.
        self.fast: FastRow | None = (
            None if self.unknown else compile_fast_row(cmap, schema, raw_bytes, as_values=as_values)
        )

    def reference(self, data: bytes, id_: int, links: Sequence[int | None]) -> Any:
        """One object by the reference getters (the value or the precise error), its links given."""
        obj = ObjectReader(data, collection=self.name, id=id_, embedded_schemas=self.embedded)
        for p in self.unknown:
            if obj.value(p) is not None:
                raise field_refusal(obj, p.name or "", "property not known to the app mapping; its value would be lost")
        for position, p in self.removed:  # counted, never dropped silently (`history.write_removed` keeps them)
            if obj.value(p) is not None:
                self.notes.count_removed(position, p.type.value)
        row: Any = {field: (id_ if field == "id" else None) if get is None else get(obj) for field, get in self.getters}
        if self.as_values:
            row = list(row.values())  # the getters are in the contract's field order
        for key, target in zip(self.keys, links, strict=True):
            row[key] = target
        return row

    def batch(self, datas: Sequence[bytes], ids: Sequence[int], out: _Pending) -> bool:
        """The objects of a batch decoded and joined a batch at a time, into `out`; False (nothing done) when
        a link is unusual. An object the generated decoder leaves goes through `reference`."""
        columns = []
        for join in self.joins:
            column = join.column(ids)
            if column is None:
                return False
            columns.append(column)
        for join, (_, end) in zip(self.joins, columns, strict=True):
            join.commit(end)
        targets = [column for column, _ in columns]
        fast = self.fast
        rows = list(map(fast, datas, ids, *targets)) if fast is not None else [None] * len(ids)
        if None in rows:
            out.typed = False
            for i, row in enumerate(rows):
                if row is None:
                    try:
                        rows[i] = self.reference(datas[i], ids[i], [column[i] for column in targets])
                    except (IsarFormatError, StorageError):
                        out.rows.extend(rows[:i])
                        raise
        out.rows.extend(rows)
        return True

    def one_by_one(self, datas: Sequence[bytes], ids: Sequence[int], out: _Pending, seen: int) -> None:
        """The objects of a batch in order, each decoded then joined, into `out`; raises at the first fault.
        `seen`: the objects read before them."""
        out.typed = False
        fast, keys, joins = self.fast, self.keys, self.joins
        for data, id_ in zip(datas, ids, strict=True):
            row = fast(data, id_) if fast is not None else None
            if row is None:
                row = self.reference(data, id_, [None] * len(joins))
            for key, join in zip(keys, joins, strict=True):
                row[key] = join.take_one(id_)
            seen += 1
            if self.single and seen > 1:
                second = f"a second {self.name} object; the export holds one configuration"
                raise IsarFormatError(second, collection=self.name, id=id_, field="id")
            out.rows.append(row)

    def finish(self) -> None:
        """Refuse the link pairs left after the last object (their source does not exist)."""
        for join in self.joins:
            join.finish()


@dataclass
class OpenedFile:
    """An Isar file opened through a private copy: the generic view, the app view, and what happened."""

    isar: IsarFile
    page_size: int
    file_size: int
    recovered: bool
    copy_path: Path | None = None  # the private copy read (None: a store opened some other way)

    @functools.cached_property
    def app(self) -> AppReader:
        """The app mapping over this file (checks the schema on first use)."""
        return AppReader(self.isar)


@contextlib.contextmanager
def open_isar(
    path: str | os.PathLike[str], *, tmp_dir: str | os.PathLike[str] | None = None, remap_bytes: int = 4 << 20
) -> Iterator[OpenedFile]:
    """Open the Isar 3 file `path` through a private read-only copy (see `storage.private_copy`).

    The user's file is only read; the copy is deleted on exit. `remap_bytes`:
    how much is read between two releases of the memory map (see `MdbxStore`).
    """
    with private_copy(path, tmp_dir=tmp_dir, remap_bytes=remap_bytes) as copy:
        isar = IsarFile(copy.store)
        yield OpenedFile(isar, copy.store.page_size, copy.store.file_size, copy.recovered, copy.path)
