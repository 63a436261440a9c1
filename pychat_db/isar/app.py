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
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pychat_db.convert import MAX_MICROS, MIN_MICROS
from pychat_db.exchange import contract
from pychat_db.exchange.contract import MESSAGE_TYPES, Collection
from pychat_db.isar.format import DataType, IsarFile, IsarFormatError, ObjectReader, Property
from pychat_db.isar.storage import private_copy

Row = dict[str, Any]

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
KNOWN_LINKS = {("Message", "thread"), ("Message", "tags"), ("ModeOutput", "thread"), ("ModeOutput", "mode")}


def _fail(obj: ObjectReader, field: str, reason: str) -> IsarFormatError:
    return IsarFormatError(reason, collection=obj.collection, id=obj.id, field=field)


Getter = Callable[[ObjectReader], Any]


def _text_getter(field: str, prop: Property | None, nullable: bool) -> Getter:
    if prop is None:
        return _absent(field, nullable)
    string = ObjectReader.read_string

    def get(obj: ObjectReader) -> Any:
        value = string(obj, prop)
        if value is None and not nullable:
            raise _fail(obj, field, "required field is null")
        return value

    return get


def _absent(field: str, nullable: bool) -> Getter:
    """The property is not in the file's schema: null everywhere (refused when required)."""

    def get(obj: ObjectReader) -> Any:
        if not nullable:
            raise _fail(obj, field, "required field is null (the file's schema has no such property)")
        return None

    return get


def _timestamp_getter(field: str, prop: Property | None) -> Getter:
    if prop is None:
        return _absent(field, False)
    long = ObjectReader.read_long

    def get(obj: ObjectReader) -> Any:
        value = long(obj, prop)
        if value is None:
            raise _fail(obj, field, "required field is null")
        if not MIN_MICROS <= value <= MAX_MICROS:
            raise _fail(obj, field, f"{value} µs since the epoch is outside years 0001-9999")
        return value

    return get


def _bool_getter(field: str, prop: Property | None) -> Getter:
    if prop is None:
        return _absent(field, False)

    def get(obj: ObjectReader) -> Any:
        value = obj.read_bool(prop)
        if value is None:
            raise _fail(obj, field, "required field is null")
        return value

    return get


def _enum_getter(field: str, prop: Property | None) -> Getter:
    if prop is None:
        return _absent(field, False)
    names = ", ".join(MESSAGE_TYPES)
    if prop.type is DataType.String:

        def by_name(obj: ObjectReader) -> Any:
            value = obj.read_string(prop)
            if value is None:
                raise _fail(obj, field, "required field is null")
            if value not in MESSAGE_TYPES:
                raise _fail(obj, field, f"{value!r} is not one of {names}")
            return value

        return by_name
    read = ObjectReader.read_byte if prop.type is DataType.Byte else ObjectReader.read_int

    def by_ordinal(obj: ObjectReader) -> Any:
        value = read(obj, prop)
        if value is None:
            raise _fail(obj, field, "required field is null")
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


def _bytes_getter(field: str, prop: Property | None) -> Getter:
    if prop is None:
        return _absent(field, True)
    b64 = base64.b64encode

    if prop.type is DataType.ByteList:

        def from_bytes(obj: ObjectReader) -> Any:
            raw = obj.bytes_of(prop)
            return None if raw is None else b64(raw).decode("ascii")

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
        return b64(result).decode("ascii")

    return from_longs


class _LinkJoin:
    """Walks one link's (source, target) pairs alongside the source collection, both in id order."""

    def __init__(self, reader: AppReader, collection: str, link: str, target: str, field: str) -> None:
        self.collection = collection
        self.link = link
        self.field = field
        self.single = True
        self.targets = reader.ids_of(target)
        self.target = target
        schema = reader.isar.collections.get(collection)
        links = {lk.name: lk for lk in schema.links} if schema else {}
        self.pairs = reader.isar.links(collection, links[link]) if link in links else iter(())
        self.pending: tuple[int, int] | None = next(self.pairs, None)

    def _dangling(self, source: int) -> IsarFormatError:
        return IsarFormatError(
            "link from an object that does not exist", collection=self.collection, id=source, field=self.link
        )

    def take(self, source: int) -> list[int]:
        """Target ids linked from `source` (checked to exist); pairs of missing sources are refused."""
        out: list[int] = []
        while self.pending is not None and self.pending[0] <= source:
            src, dst = self.pending
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
            self.pending = next(self.pairs, None)
        return out

    def finish(self) -> None:
        if self.pending is not None:
            raise self._dangling(self.pending[0])


class AppReader:
    """The app's collections in an opened Isar 3 file, as contract rows. Checks the schema when created."""

    def __init__(self, isar: IsarFile) -> None:
        self.isar = isar
        self._ids: dict[str, frozenset[int]] = {}
        self._check_schema()

    def _check_schema(self) -> None:
        isar = self.isar
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

    def rows(self, collection: Collection) -> Iterator[Row]:
        """The contract rows of `collection`, in id order (message_tags: by messageId, tagId), streamed."""
        if collection.name == contract.MESSAGE_TAGS.name:
            return self._message_tags()
        return self._rows(BY_CONTRACT[collection.name])

    def _rows(self, cmap: CollectionMap) -> Iterator[Row]:
        isar = self.isar
        schema = isar.collections.get(cmap.isar)
        if schema is None:
            return
        by_prop = schema.by_name
        getters: list[tuple[str, Getter | None]] = []
        props = {p.field: p for p in cmap.properties}
        for f in cmap.contract.fields:
            if f.name == "id" or any(lm.field == f.name for lm in cmap.links):
                getters.append((f.name, None))
                continue
            pm = props[f.name]
            prop = by_prop.get(pm.prop)
            getters.append((f.name, _getter(f, prop)))
        unknown = [p for p in schema.named_properties if p.name not in {pm.prop for pm in cmap.properties}]
        joins = {lm.field: _LinkJoin(self, cmap.isar, lm.link, lm.target, lm.field) for lm in cmap.links}
        for seen, obj in enumerate(isar.readers(cmap.isar), 1):
            id_ = obj.id
            assert id_ is not None
            for p in unknown:
                if obj.value(p) is not None:
                    raise _fail(obj, p.name or "", "property not known to the app mapping; its value would be lost")
            row: Row = {}
            for name, get in getters:
                if get is not None:
                    row[name] = get(obj)
                elif name == "id":
                    row[name] = id_
                else:
                    targets = joins[name].take(id_)
                    if len(targets) > 1:
                        raise _fail(obj, joins[name].link, f"a single link holds {len(targets)} targets")
                    row[name] = targets[0] if targets else None
            if cmap.contract.single_object and seen > 1:
                raise _fail(obj, "id", f"a second {cmap.isar} object; the export holds one configuration")
            yield row
        for join in joins.values():
            join.finish()

    def _message_tags(self) -> Iterator[Row]:
        source, link, target = TAGS_LINK
        join = _LinkJoin(self, source, link, target, "tagId")
        for id_, _ in self.isar.raw_objects(source):
            for tag in join.take(id_):
                yield {"messageId": id_, "tagId": tag}
        join.finish()


def _getter(f: contract.Field, prop: Property | None) -> Getter:
    kind = f.kind
    if kind is contract.Kind.TEXT:
        return _text_getter(f.name, prop, f.nullable)
    if kind is contract.Kind.TIMESTAMP:
        return _timestamp_getter(f.name, prop)
    if kind is contract.Kind.BOOL:
        return _bool_getter(f.name, prop)
    if kind is contract.Kind.ENUM:
        return _enum_getter(f.name, prop)
    if kind is contract.Kind.BYTES:
        return _bytes_getter(f.name, prop)
    raise AssertionError(f"no getter for {kind}")


@dataclass
class OpenedFile:
    """An Isar file opened through a private copy: the generic view, the app view, and what happened."""

    isar: IsarFile
    page_size: int
    file_size: int
    recovered: bool

    @functools.cached_property
    def app(self) -> AppReader:
        """The app mapping over this file (checks the schema on first use)."""
        return AppReader(self.isar)


@contextlib.contextmanager
def open_isar(path: str | os.PathLike[str], *, tmp_dir: str | None = None) -> Iterator[OpenedFile]:
    """Open the Isar 3 file `path` through a private read-only copy (see `storage.private_copy`).

    The user's file is only read; the copy is deleted on exit.
    """
    with private_copy(path, tmp_dir=tmp_dir) as copy:
        isar = IsarFile(copy.store)
        yield OpenedFile(isar, copy.store.page_size, copy.store.file_size, copy.recovered)
