"""The chat app's Isar 3 models → the export contract's rows.

`AppReader.rows(collection)` yields, for one contract collection
(`pychat_db.exchange.contract`), the rows exactly as the export contract's
JSON rows: dicts with the contract's camelCase keys in its field order; ids
and timestamps (µs since the epoch, UTC) as int, `fileData` as standard
base64 text or None, `isEditable` as bool, links (`threadId`, `modeId`) as
int or None, message_tags as {"messageId", "tagId"}. Everything downstream
(validation, loading, canonical export) is shared with the NDJSON path.

The mapping (Isar collection / property / link ← contract field) is the table
`MAPPING` below and in docs/isar-format.md. What the mapping does not know is
refused when it holds data (it would be lost), with collection, id and field.
A null in a required field is read as the app reads it (`AppReader.nulls`,
`pychat_db.isar.history`), counted in `AppReader.notes` with the values of
removed properties.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import functools
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pychat_db.convert import MAX_MICROS, MIN_MICROS
from pychat_db.exchange import contract
from pychat_db.exchange.contract import MESSAGE_TYPES, Collection
from pychat_db.isar.format import (
    _FIRST,
    _SECOND,
    NULL_INT,
    NULL_LONG,
    CollectionSchema,
    DataType,
    IsarFile,
    IsarFormatError,
    ObjectReader,
    Property,
    _decode_ids,
)
from pychat_db.isar.history import APP_READS_NULL, Nulls, ReadNotes, removed_properties
from pychat_db.isar.storage import StorageError, private_copy

Row = dict[str, Any]
_NEG = -(1 << 63)  # an id's key is the id XOR 1 << 63 (format.id_from_key)

TEXT = (DataType.String,)
TIMESTAMP = (DataType.Long,)  # DateTime: Long µs since the epoch, UTC
BOOL = (DataType.Bool,)
ENUM = (DataType.String, DataType.Byte, DataType.Int)  # by name, or by ordinal in older builds
BYTES = (DataType.LongList, DataType.ByteList)  # List<int> or List<byte>


@dataclass(frozen=True, slots=True)
class PropertyMap:
    field: str  # contract field (camelCase)
    prop: str  # Isar property name
    types: tuple[DataType, ...]  # stored types accepted


@dataclass(frozen=True, slots=True)
class LinkMap:
    field: str  # contract field holding the target id
    link: str  # Isar link name
    target: str  # Isar collection linked to


@dataclass(frozen=True, slots=True)
class CollectionMap:
    contract: Collection
    isar: str  # Isar collection name
    properties: tuple[PropertyMap, ...]
    links: tuple[LinkMap, ...] = ()


MAPPING: tuple[CollectionMap, ...] = (
    CollectionMap(
        contract.CONFIGURATION,
        "Configuration",
        (
            PropertyMap("apiKey", "apiKey", TEXT),
            PropertyMap("baseUrl", "baseUrl", TEXT),
            PropertyMap("modelName", "modelName", TEXT),
        ),
    ),
    CollectionMap(
        contract.THREADS,
        "Thread",
        (PropertyMap("name", "name", TEXT), PropertyMap("createdAt", "createdAt", TIMESTAMP)),
    ),
    CollectionMap(
        contract.MODES,
        "Mode",
        (
            PropertyMap("name", "name", TEXT),
            PropertyMap("prompt", "prompt", TEXT),
            PropertyMap("isEditable", "isEditable", BOOL),
        ),
    ),
    CollectionMap(
        contract.TAGS,
        "Tag",
        (
            PropertyMap("name", "name", TEXT),
            PropertyMap("description", "description", TEXT),
            PropertyMap("isEditable", "isEditable", BOOL),
        ),
    ),
    CollectionMap(
        contract.MESSAGES,
        "Message",
        (
            PropertyMap("text", "text", TEXT),
            PropertyMap("timestamp", "timestamp", TIMESTAMP),
            PropertyMap("type", "type", ENUM),
            PropertyMap("description", "description", TEXT),
            PropertyMap("fileData", "fileData", BYTES),
            PropertyMap("mimeType", "mimeType", TEXT),
            PropertyMap("transcript", "transcript", TEXT),
            PropertyMap("fileName", "fileName", TEXT),
        ),
        (LinkMap("threadId", "thread", "Thread"),),
    ),
    CollectionMap(
        contract.MODE_OUTPUTS,
        "ModeOutput",
        (PropertyMap("createdAt", "createdAt", TIMESTAMP), PropertyMap("content", "content", TEXT)),
        (LinkMap("threadId", "thread", "Thread"), LinkMap("modeId", "mode", "Mode")),
    ),
)
BY_CONTRACT = {m.contract.name: m for m in MAPPING}
BY_ISAR = {m.isar: m for m in MAPPING}
# message_tags: the many-to-many link Message.tags → Tag.
TAGS_LINK = ("Message", "tags", "Tag")
BATCH_ROWS = 1024  # rows per batch of `value_batches` at most
BATCH_BYTES = 4 << 20  # and about this much read from the file (blobs) per batch
OBJECT_BATCH = 64  # objects read from the file per call (in C), their ids decoded in one call
KNOWN_LINKS = {("Message", "thread"), ("Message", "tags"), ("ModeOutput", "thread"), ("ModeOutput", "mode")}


def _fail(obj: ObjectReader, field: str, reason: str) -> IsarFormatError:
    return IsarFormatError(reason, collection=obj.collection, id=obj.id, field=field)


Getter = Callable[[ObjectReader], Any]
FastRow = Callable[..., "Row | list[Any] | None"]  # (data, id, *link targets)


class _Nulls:
    """How the getters of one read treat a null in a required field: as the app reads it, counted in
    `notes` (`Nulls.APP`), or refused (`defaults` empty: `Nulls.REFUSE`)."""

    __slots__ = ("defaults", "notes")

    def __init__(self, notes: ReadNotes, nulls: Nulls) -> None:
        self.notes = notes
        self.defaults = (
            {f: d.value for (c, f), d in APP_READS_NULL.items() if c == notes.collection} if nulls is Nulls.APP else {}
        )

    def read(self, obj: ObjectReader, field: str, why: str = "required field is null") -> Any:
        """The value the app reads for a null in `field` (counted), or the refusal."""
        if field not in self.defaults:
            raise _fail(obj, field, why)
        self.notes.count_default(field)
        return self.defaults[field]


def _text_getter(field: str, prop: Property | None, nullable: bool, nulls: _Nulls) -> Getter:
    if prop is None:
        return _absent(field, nullable, nulls)
    string = ObjectReader.read_string

    def get(obj: ObjectReader) -> Any:
        value = string(obj, prop)
        if value is None and not nullable:
            return nulls.read(obj, field)
        return value

    return get


def _absent(field: str, nullable: bool, nulls: _Nulls) -> Getter:
    """The property is not in the file's schema: null everywhere (read as the app reads it, or refused,
    when required)."""

    def get(obj: ObjectReader) -> Any:
        if not nullable:
            return nulls.read(obj, field, "required field is null (the file's schema has no such property)")
        return None

    return get


def _timestamp_getter(field: str, prop: Property | None, nulls: _Nulls) -> Getter:
    if prop is None:
        return _absent(field, False, nulls)
    long = ObjectReader.read_long

    def get(obj: ObjectReader) -> Any:
        value = long(obj, prop)
        if value is None:
            return nulls.read(obj, field)
        if not MIN_MICROS <= value <= MAX_MICROS:
            raise _fail(obj, field, f"{value} µs since the epoch is outside years 0001-9999")
        return value

    return get


def _bool_getter(field: str, prop: Property | None, nulls: _Nulls) -> Getter:
    if prop is None:
        return _absent(field, False, nulls)

    def get(obj: ObjectReader) -> Any:
        value = obj.read_bool(prop)
        if value is None:
            return nulls.read(obj, field)
        return value

    return get


def _enum_getter(field: str, prop: Property | None, nulls: _Nulls) -> Getter:
    """A type by name: a name not in the list is passed on as it is, for the codec to refuse that row (as
    an NDJSON line's), which `--reject-file` records (`source.UNKNOWN_TYPE` says why). By ordinal: one
    out of range is refused here (no build of the app stored one; docs/isar-format.md)."""
    if prop is None:
        return _absent(field, False, nulls)
    names = ", ".join(MESSAGE_TYPES)
    if prop.type is DataType.String:

        def by_name(obj: ObjectReader) -> Any:
            value = obj.read_string(prop)
            if value is None:
                return nulls.read(obj, field)
            return value

        return by_name
    read = ObjectReader.read_byte if prop.type is DataType.Byte else ObjectReader.read_int

    def by_ordinal(obj: ObjectReader) -> Any:
        value = read(obj, prop)
        if value is None:
            return nulls.read(obj, field)
        if not 0 <= value < len(MESSAGE_TYPES):
            raise _fail(obj, field, f"ordinal {value} is outside 0-{len(MESSAGE_TYPES) - 1} ({names})")
        return MESSAGE_TYPES[value]

    return by_ordinal


def long_list_to_bytes(raw: bytes) -> bytes | int:
    """Little-endian i64 elements → bytes, or the index of the first element outside 0-255.

    Runs at C speed: every element is valid iff bytes 1-7 of each 8 are zero.
    """
    count = len(raw) // 8
    if all(raw[j::8].count(0) == count for j in range(1, 8)):
        return raw[0::8]
    for i in range(count):
        if any(raw[i * 8 + 1 : i * 8 + 8]):
            return i
    raise AssertionError("unreachable")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw(raw: bytes) -> bytes:
    return raw


def _bytes_getter(field: str, prop: Property | None, nulls: _Nulls, raw_bytes: bool = False) -> Getter:
    if prop is None:
        return _absent(field, True, nulls)
    finish: Callable[[bytes], Any] = _raw if raw_bytes else _b64

    if prop.type is DataType.ByteList:

        def from_bytes(obj: ObjectReader) -> Any:
            raw = obj.bytes_of(prop)
            return None if raw is None else finish(raw)

        return from_bytes

    def from_longs(obj: ObjectReader) -> Any:
        sp = obj.span(prop, 8)
        if sp is None:
            return None
        start, count = sp
        result = long_list_to_bytes(obj.data[start : start + count * 8])
        if isinstance(result, int):
            value = int.from_bytes(obj.data[start + result * 8 : start + result * 8 + 8], "little", signed=True)
            shown = "null" if value == -(2**63) else str(value)
            raise _fail(obj, field, f"element {result} is {shown}, outside 0-255")
        return finish(result)

    return from_longs


class _LinkJoin:
    """One link's (source, target) pairs, walked alongside the source collection, both in id order.

    The pairs come a batch at a time (`IsarFile.link_batches`, decoded in C) into a buffer: `column(ids)`
    joins a whole batch of objects at once (a dict, set checks), `take_one(id)` one object (the walk that
    names what is wrong). A read error of the link map is kept and raised by the walk that needs the pairs
    past it, so it comes after the objects before it, as with any refusal.
    """

    def __init__(self, reader: AppReader, collection: str, link: str, target: str, field: str) -> None:
        self.collection = collection
        self.link = link
        self.field = field
        self.targets = reader.ids_of(target)
        self.target = target
        schema = reader.isar.collections.get(collection)
        links = {lk.name: lk for lk in schema.links} if schema else {}
        self._batches = iter(reader.isar.link_batches(collection, links[link]) if link in links else ())
        self._src: tuple[int, ...] = ()  # unread pairs: (_src[i], _dst[i]) for i >= _pos
        self._dst: tuple[int, ...] = ()
        self._pos = 0
        self._error: IsarFormatError | StorageError | None = None
        self._done = False

    def _more(self) -> bool:
        """Append the next batch of pairs to the buffer; False at the end of the map or at a read error."""
        if self._done:
            return False
        try:
            following = next(self._batches, None)
        except (IsarFormatError, StorageError) as exc:
            following, self._error = None, exc
        if following is None:
            self._done = True
            return False
        self._src = self._src[self._pos :] + following[0]
        self._dst = self._dst[self._pos :] + following[1]
        self._pos = 0
        return True

    def _peek(self) -> tuple[int, int] | None:
        """The next unread pair, or None at the end (raises the read error where it was met)."""
        while self._pos >= len(self._src):
            if not self._more():
                if self._error is not None:
                    raise self._error
                return None
        return self._src[self._pos], self._dst[self._pos]

    def _dangling(self, source: int) -> IsarFormatError:
        return IsarFormatError(
            "link from an object that does not exist", collection=self.collection, id=source, field=self.link
        )

    def column(self, ids: Sequence[int]) -> tuple[list[int | None], int] | None:
        """The target of each of `ids` (ascending, not empty) by this single link (None: no target) and the
        buffer position past their pairs (`commit` it). None when anything is unusual (a source with several
        targets or not among `ids`, a missing target, a read error): `take_one`, object by object, says what."""
        last = ids[-1]
        end = bisect.bisect_right(self._src, last, self._pos)
        while end == len(self._src) and self._more():
            end = bisect.bisect_right(self._src, last, self._pos)
        if end == len(self._src) and self._error is not None:
            return None
        pos = self._pos
        if end == pos:
            return [None] * len(ids), end
        sources = self._src[pos:end]
        found = dict(zip(sources, self._dst[pos:end], strict=True))
        if len(found) != len(sources) or not self.targets.issuperset(found.values()) or not found.keys() <= set(ids):
            return None
        return list(map(found.get, ids)), end

    def commit(self, end: int) -> None:
        self._pos = end

    def take(self, source: int) -> list[int]:
        """Target ids linked from `source` (checked to exist); pairs of missing sources are refused."""
        out: list[int] = []
        while (pending := self._peek()) is not None and pending[0] <= source:
            src, dst = pending
            if src < source:
                raise self._dangling(src)
            if dst not in self.targets:
                raise IsarFormatError(
                    f"link to {self.target} id {dst}, which does not exist",
                    collection=self.collection,
                    id=src,
                    field=self.link,
                )
            out.append(dst)
            self._pos += 1
        return out

    def take_one(self, source: int) -> int | None:
        """The target linked from `source` by a single link, or None; like `take`, and refuses several."""
        targets = self.take(source)  # the precise error, or the targets
        if len(targets) > 1:
            raise IsarFormatError(
                f"a single link holds {len(targets)} targets", collection=self.collection, id=source, field=self.link
            )
        return targets[0] if targets else None

    def finish(self) -> None:
        pending = self._peek()
        if pending is not None:
            raise self._dangling(pending[0])


class AppReader:
    """The app's collections in an opened Isar 3 file, as contract rows. Checks the schema when created."""

    def __init__(self, isar: IsarFile, nulls: Nulls = Nulls.APP) -> None:
        self.isar = isar
        self.nulls = nulls  # how a null in a required field is read (`pychat_db.isar.history`)
        # What the last read of each collection met (defaults, removed values), by contract collection.
        self.notes: dict[str, ReadNotes] = {}
        self._ids: dict[str, frozenset[int]] = {}
        self._check_schema()

    def _check_schema(self) -> None:
        isar = self.isar
        for map_name, info in isar.map_info.items():
            if not map_name.startswith("_") and map_name not in isar.schemas and info.entries:
                raise IsarFormatError(
                    f"map {map_name} holds {info.entries} entries but has no schema in _info; they would be lost",
                    collection=map_name,
                )
        for name, schema in isar.collections.items():
            cmap = BY_ISAR.get(name)
            if cmap is None:
                first = next(isar.raw_objects(name), None)
                if first is not None:
                    raise IsarFormatError(
                        f"collection {name} is not known to the app mapping; its {isar.count(name)} objects "
                        "would be lost",
                        collection=name,
                        id=first[0],
                    )
                continue
            known = {p.prop: p for p in cmap.properties}
            for prop in schema.named_properties:
                pm = known.get(prop.name or "")
                if pm is not None and prop.type not in pm.types:
                    accepted = " or ".join(t.value for t in pm.types)
                    raise IsarFormatError(
                        f"stored as {prop.type.value}; the mapping reads {accepted}", collection=name, field=prop.name
                    )
            for link in schema.links:
                if (name, link.name) not in KNOWN_LINKS:
                    first_link = next(isar.links(name, link), None)
                    if first_link is not None:
                        raise IsarFormatError(
                            f"link {link.name} is not known to the app mapping; its {isar.link_count(name, link)} "
                            "entries would be lost",
                            collection=name,
                            id=first_link[0],
                            field=link.name,
                        )
                    continue
                expected = "Tag" if (name, link.name) == ("Message", "tags") else None
                for lm in cmap.links:
                    if lm.link == link.name:
                        expected = lm.target
                if link.target != expected:
                    raise IsarFormatError(
                        f"links to {link.target}; the mapping expects {expected}", collection=name, field=link.name
                    )

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

    def value_batches(
        self,
        collection: Collection,
        *,
        max_rows: int = BATCH_ROWS,
        max_bytes: int = BATCH_BYTES,
        check_tag_sources: bool = True,
    ) -> Iterator[list[Sequence[Any]]]:
        """The rows of `values(collection)` in lists of up to `max_rows` rows or about `max_bytes` read
        (the import's hot path: no call per row between the reader and the codec).

        A refusal is raised after the rows before it were yielded, so a consumer sees the same rows
        before the same error as with `values()`.

        `check_tag_sources=False` (only for a consumer that proves it otherwise, as the loader's
        `foreign_key_check` does): message_tags pairs are not checked to come from an existing
        Message, which costs a lookup (reading the whole message) per distinct source. A pair
        to a missing Tag, or a corrupt pair, is still refused, with the same error as the checked
        read gives (it reruns the checked read to find the first refusal in link order).
        """
        typed = self.typed_batches(
            collection, max_rows=max_rows, max_bytes=max_bytes, check_tag_sources=check_tag_sources
        )
        return (batch for batch, _ in typed)

    def typed_batches(
        self,
        collection: Collection,
        *,
        max_rows: int = BATCH_ROWS,
        max_bytes: int = BATCH_BYTES,
        check_tag_sources: bool = True,
    ) -> Iterator[tuple[list[Sequence[Any]], bool]]:
        """The batches of `value_batches(collection)`, each with whether it is *typed*: every row made by
        the generated decoder (`compile_fast_row`), whose values have the exchange codec's types by
        construction (ints from i64 fields, str from strict UTF-8, bytes, bool; enum names, timestamps
        and nulls checked), so `RowCodec.finish_typed_many` can convert them without validating them
        again (`tests/test_isar_roundtrip.py` compares it with `convert_values` on the same objects).
        """
        if collection.name == contract.MESSAGE_TAGS.name:
            return ((pairs, False) for pairs in self._message_tags(check_tag_sources))  # LINK_BATCH pairs each
        return self._rows(BY_CONTRACT[collection.name], True, True, max_rows, max_bytes)

    def _rows(
        self, cmap: CollectionMap, raw_bytes: bool, as_values: bool, max_rows: int, max_bytes: int
    ) -> Iterator[tuple[list[Any], bool]]:  # lists of rows (dicts or value lists), typed (see typed_batches)
        """The rows of `cmap`, a batch of objects at a time.

        A batch of objects (read in C, ids decoded in one call) is decoded by the generated decoder
        (`compile_fast_row`, mapped over the batch) with its links joined a batch at a time
        (`_LinkJoin.column`). Anything unusual in it (an object the generated decoder leaves, an
        unusual link) goes object by object through the reference decoder and `take_one`, which give
        the value or the precise error, after the rows before it.
        """
        isar = self.isar
        notes = ReadNotes(cmap.contract.name, cmap.isar)
        self.notes[cmap.contract.name] = notes  # this read's, from its start (a read again counts afresh)
        schema = isar.collections.get(cmap.isar)
        if schema is None:
            return
        by_prop = schema.by_name
        props = {p.field: p for p in cmap.properties}
        link_fields = {lm.field for lm in cmap.links}
        nulls = _Nulls(notes, self.nulls)
        getters: list[tuple[str, Getter | None]] = []
        for f in cmap.contract.fields:
            if f.name == "id" or f.name in link_fields:
                getters.append((f.name, None))
            else:
                getters.append((f.name, _getter(f, by_prop.get(props[f.name].prop), nulls, raw_bytes)))
        unknown = [p for p in schema.named_properties if p.name not in {pm.prop for pm in cmap.properties}]
        removed = removed_properties(schema)
        positions = {f.name: i for i, f in enumerate(cmap.contract.fields)}
        keys: list[Any] = [positions[lm.field] if as_values else lm.field for lm in cmap.links]
        joins = [_LinkJoin(self, cmap.isar, lm.link, lm.target, lm.field) for lm in cmap.links]
        fast = None if unknown else compile_fast_row(cmap, schema, raw_bytes, as_values=as_values)
        embedded = isar.embedded
        name = cmap.isar
        single = cmap.contract.single_object

        def reference(data: bytes, id_: int, links: Sequence[int | None]) -> Any:
            """One object by the reference getters (the value or the precise error), its links given."""
            obj = ObjectReader(data, collection=name, id=id_, embedded_schemas=embedded)
            for p in unknown:
                if obj.value(p) is not None:
                    raise _fail(obj, p.name or "", "property not known to the app mapping; its value would be lost")
            for position, p in removed:  # counted, never dropped silently (`history.write_removed` keeps them)
                if obj.value(p) is not None:
                    notes.count_removed(position, p.type.value)
            row: Any = {field: (id_ if field == "id" else None) if get is None else get(obj) for field, get in getters}
            if as_values:
                row = list(row.values())  # the getters are in the contract's field order
            for key, target in zip(keys, links, strict=True):
                row[key] = target
            return row

        typed = [True]  # every row of the batch being made came from `fast`

        def one_by_one(datas: Sequence[bytes], ids: Sequence[int], out: list[Any], seen: int) -> None:
            """The objects of a batch in order, each decoded then joined, into `out`; raises at the first fault."""
            typed[0] = False
            for data, id_ in zip(datas, ids, strict=True):
                row = fast(data, id_) if fast is not None else None
                if row is None:
                    row = reference(data, id_, [None] * len(joins))
                for key, join in zip(keys, joins, strict=True):
                    row[key] = join.take_one(id_)
                seen += 1
                if single and seen > 1:
                    second = f"a second {name} object; the export holds one configuration"
                    raise IsarFormatError(second, collection=name, id=id_, field="id")
                out.append(row)

        def by_batch(datas: Sequence[bytes], ids: Sequence[int], out: list[Any]) -> bool:
            """The objects of a batch decoded and joined a batch at a time, into `out`; False (nothing done)
            when a link is unusual. An object the generated decoder leaves goes through `reference`."""
            columns = []
            for join in joins:
                column = join.column(ids)
                if column is None:
                    return False
                columns.append(column)
            for join, (_, end) in zip(joins, columns, strict=True):
                join.commit(end)
            targets = [column for column, _ in columns]
            rows = list(map(fast, datas, ids, *targets)) if fast is not None else [None] * len(ids)
            if None in rows:
                typed[0] = False
                for i, row in enumerate(rows):
                    if row is None:
                        try:
                            rows[i] = reference(datas[i], ids[i], [column[i] for column in targets])
                        except (IsarFormatError, StorageError):
                            out.extend(rows[:i])
                            raise
            out.extend(rows)
            return True

        # Objects a batch at a time (read in C) and their ids decoded in C, as link pairs are.
        raw_batches = isar.store.batches(name, OBJECT_BATCH) if name in isar.map_info else iter(())
        from_bytes = int.from_bytes
        batch: list[Any] = []
        nbytes = 0
        seen = 0
        try:
            for raw in raw_batches:
                keys_read = list(map(_FIRST, raw))
                datas = list(map(_SECOND, raw))
                if set(map(len, keys_read)) == {8}:
                    ids: Sequence[int] = _decode_ids(keys_read)
                else:  # the objects before the corrupt key, then its refusal
                    bad = next(i for i, key in enumerate(keys_read) if len(key) != 8)
                    ids = [from_bytes(key, "little", signed=True) ^ _NEG for key in keys_read[:bad]]
                    datas = datas[:bad]
                if ids:
                    if (single and seen + len(ids) > 1) or not by_batch(datas, ids, batch):
                        one_by_one(datas, ids, batch, seen)
                    seen += len(ids)
                    nbytes += sum(map(len, datas)) + 64 * len(datas)
                    while len(batch) >= max_rows:
                        yield batch[:max_rows], typed[0]
                        del batch[:max_rows]
                        nbytes = 0
                        typed[0] = typed[0] or not batch  # the next batch starts typed, as after `max_bytes`
                    if nbytes > max_bytes:
                        yield batch, typed[0]
                        batch = []
                        nbytes = 0
                        typed[0] = True
                if len(ids) != len(raw):
                    key = raw[len(ids)][0]
                    raise IsarFormatError(f"corrupt key of {len(key)} bytes in map {name}", collection=name)
            for join in joins:
                join.finish()
        except (IsarFormatError, StorageError) as exc:
            if batch:  # the rows before the refusal first, as object by object
                yield batch, typed[0]
            raise exc from None
        if batch:
            yield batch, typed[0]

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


# ---------------------------------------------------------------------------------------------
# The fast path: one generated function per collection decodes a well-formed object written with
# the file's full schema. It handles only the ordinary case and returns None for anything else
# (an older object, a null required field, a value out of range, an offset out of bounds); the
# reference getters above then decode that object or raise the precise error. So the two can
# only differ in speed; tests run both on the same objects.

_STRUCT_CODES = {"Bool": "B", "Byte": "B", "Int": "i", "Float": "f", "Long": "q", "Double": "d"}


def _fast_field(lines: list[str], var: str, f: contract.Field, prop: Property, index: int, raw_bytes: bool) -> None:
    """Append the code decoding contract field `f` from `prop` (values start at v[index]) into `var`."""
    t = prop.type
    kind = f.kind
    if t.is_static:
        lines.append(f"    {var} = v[{index}]")
        if kind is contract.Kind.TIMESTAMP:
            lines.append(f"    if not {MIN_MICROS} <= {var} <= {MAX_MICROS}: return None")
        elif kind is contract.Kind.BOOL:
            lines.append(f"    if {var} == 2: {var} = True")
            lines.append(f"    elif {var} == 1: {var} = False")
            lines.append("    else: return None")
        elif kind is contract.Kind.ENUM:
            lines.append(f"    if not 0 <= {var} < {len(MESSAGE_TYPES)}: return None")
            lines.append(f"    {var} = TYPES[{var}]")
        else:
            raise AssertionError(f"no fast path for {kind} stored as {t}")
        return
    element = 8 if t is DataType.LongList else 1
    lines.append(f"    p = v[{index}] | v[{index + 1}] << 16")
    lines.append("    if p:")
    lines.append("        if p < SS: return None")
    lines.append("        s = p + 3")
    count = "(data[p] | data[p + 1] << 8 | data[p + 2] << 16)"
    lines.append(f"        e = s + {count}" if element == 1 else f"        e = s + 8 * {count}")
    lines.append("        if e > n: return None")
    if kind is contract.Kind.BYTES:
        if element == 8:
            lines.append(f"        {var} = L2B(data[s:e])")
            lines.append(f"        if {var}.__class__ is int: return None")
        else:
            lines.append(f"        {var} = data[s:e]")
        if not raw_bytes:
            lines.append(f"        {var} = B64({var}).decode('ascii')")
    else:
        lines.append(f"        {var} = data[s:e].decode()")
        if kind is contract.Kind.ENUM:
            lines.append(f"        if {var} not in TYPES: return None")
    lines.append("    else:")
    lines.append(f"        {var} = None" if f.nullable else "        return None")


def _removed_is_null(prop: Property, index: int) -> str:
    """The expression, over the unpacked values `v`, true when the removed `prop` (at v[index]) is null."""
    t = prop.type.value
    if t not in _STRUCT_CODES:
        return f"not (v[{index}] or v[{index + 1}])"  # a u24 offset of 0
    if t == "Bool":
        return f"v[{index}] == 0"
    if t in ("Float", "Double"):
        return f"v[{index}] != v[{index}]"  # NaN
    if t == "Int":
        return f"v[{index}] == {NULL_INT}"
    if t == "Long":
        return f"v[{index}] == {NULL_LONG}"
    return "False"  # Byte: no null marker, 0 is a value


def compile_fast_row(
    cmap: CollectionMap, schema: CollectionSchema, raw_bytes: bool, *, as_values: bool = False
) -> FastRow | None:
    """The generated decoder of `cmap`'s rows for objects written with all of `schema` (see above).

    It returns the row as a dict, or with `as_values` as the list of its values in field order.
    """
    fmt = ["<H"]  # the static size, then the properties
    index_of: dict[str, int] = {}
    removed_checks: list[str] = []  # a removed property holding a value: the reference path counts it
    i = 1
    for prop in schema.properties:
        code = _STRUCT_CODES.get(prop.type.value)
        if prop.name is None:
            removed_checks.append(_removed_is_null(prop, i))
            fmt.append("HB" if code is None else code)
            i += 2 if code is None else 1
            continue
        index_of[prop.name] = i
        if code is None:
            fmt.append("HB")  # a u24 offset as low 16 bits + high 8 bits
            i += 2
        else:
            fmt.append(code)
            i += 1
    layout = struct.Struct("".join(fmt))
    static_size = schema.static_size
    if layout.size != static_size:
        return None
    # unpack_from raises struct.error when the object is shorter than its static size.
    links = {lm.field: f"l{i}" for i, lm in enumerate(cmap.links)}  # link targets are arguments
    params = "".join(f", {arg}=None" for arg in links.values())
    lines = [f"def fast(data, id_{params}):", "    v = UNPACK(data)", "    if v[0] != SS: return None"]
    lines.extend(f"    if not ({check}): return None" for check in removed_checks)
    lines.append("    n = len(data)")
    props = {pm.field: pm for pm in cmap.properties}
    values: list[tuple[str, str]] = []  # (field, expression)
    for n, f in enumerate(cmap.contract.fields):
        if f.name == "id":
            values.append((f.name, "id_"))
            continue
        if f.name in links:
            values.append((f.name, links[f.name]))
            continue
        stored = schema.by_name.get(props[f.name].prop)
        if stored is None:
            if not f.nullable:
                return None  # every object would be refused: the reference path says why
            values.append((f.name, "None"))
            continue
        var = f"x{n}"
        _fast_field(lines, var, f, stored, index_of[stored.name or ""], raw_bytes)
        values.append((f.name, var))
    if as_values:
        lines.append("    return [" + ", ".join(expr for _, expr in values) + "]")
    else:
        lines.append("    return {" + ", ".join(f"{name!r}: {expr}" for name, expr in values) + "}")
    # Anything out of the ordinary (an object shorter than its static size: struct.error; an offset out of
    # bounds: IndexError; invalid UTF-8: ValueError) is None too, so the decoder can be mapped over a batch.
    body = [lines[0], "  try:", *(f"  {line}" for line in lines[1:])]
    body.append("  except (IndexError, ValueError, StructError): return None")
    namespace: dict[str, Any] = {
        "StructError": struct.error,
        "SS": static_size,
        "UNPACK": layout.unpack_from,
        "TYPES": MESSAGE_TYPES,
        "L2B": long_list_to_bytes,
        "B64": base64.b64encode,
    }
    exec(compile("\n".join(body), f"<isar fast row {cmap.isar}>", "exec"), namespace)
    fast: FastRow = namespace["fast"]
    return fast


def _getter(f: contract.Field, prop: Property | None, nulls: _Nulls, raw_bytes: bool = False) -> Getter:
    kind = f.kind
    if kind is contract.Kind.TEXT:
        return _text_getter(f.name, prop, f.nullable, nulls)
    if kind is contract.Kind.TIMESTAMP:
        return _timestamp_getter(f.name, prop, nulls)
    if kind is contract.Kind.BOOL:
        return _bool_getter(f.name, prop, nulls)
    if kind is contract.Kind.ENUM:
        return _enum_getter(f.name, prop, nulls)
    if kind is contract.Kind.BYTES:
        return _bytes_getter(f.name, prop, nulls, raw_bytes)
    raise AssertionError(f"no getter for {kind}")


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
