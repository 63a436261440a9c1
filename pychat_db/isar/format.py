"""Generic Isar 3 decoding: schemas (from `_info`) and objects; ids in `keys`, the file in `file`.

Nothing here knows the chat app. See docs/isar-format.md for the layout and
the Isar sources each rule was checked against. Summary:

* `_info` maps a collection name to its schema JSON (`"version": 2`); the
  property list is in *stored* order: fields sit in that order after a u16
  static size, removed properties (`"name": null`) keep their slot.
* A collection map has 8-byte integer keys: little-endian `id XOR 1<<63`, so
  key order is signed id order.
* Links live in `_l_<Collection>_<link>`: key = source id, duplicate values =
  target ids (same encoding), sorted.
"""

from __future__ import annotations

import enum
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pychat_db.errors import PychatDbError

SUPPORTED_VERSION = 2  # SchemaManager::ISAR_FILE_VERSION in Isar 3.x

NULL_BOOL, FALSE_BOOL, TRUE_BOOL = 0, 1, 2
NULL_INT = -(2**31)
NULL_LONG = -(2**63)


class IsarFormatError(PychatDbError):
    """The file cannot be read as Isar 3 data, or the data is refused.

    `collection`, `id` and `field` say where, when known; the message already
    contains them ("Message id 42: timestamp: ...").
    """

    def __init__(
        self, reason: str, *, collection: str | None = None, id: int | None = None, field: str | None = None
    ) -> None:
        parts = []
        if collection is not None:
            parts.append(collection if id is None else f"{collection} id {id}")
        if field is not None:
            parts.append(field)
        super().__init__(": ".join([*parts, reason]))
        self.reason = reason
        self.collection = collection
        self.id = id
        self.field = field


class DataType(enum.Enum):
    """Isar 3 property types (isar_core `object/data_type.rs`), with their inline size."""

    Bool = "Bool"
    Byte = "Byte"
    Int = "Int"
    Float = "Float"
    Long = "Long"
    Double = "Double"
    String = "String"
    Object = "Object"
    BoolList = "BoolList"
    ByteList = "ByteList"
    IntList = "IntList"
    FloatList = "FloatList"
    LongList = "LongList"
    DoubleList = "DoubleList"
    StringList = "StringList"
    ObjectList = "ObjectList"

    @property
    def static_size(self) -> int:
        return _STATIC_SIZE.get(self.value, 3)  # every dynamic type: a u24 offset

    @property
    def is_static(self) -> bool:
        return self.value in _STATIC_SIZE


_STATIC_SIZE = {"Bool": 1, "Byte": 1, "Int": 4, "Float": 4, "Long": 8, "Double": 8}
_ALIASES = {"DateTime": "Long", "DateTimeList": "LongList"}  # serde aliases in data_type.rs


@dataclass(frozen=True, slots=True)
class Property:
    name: str | None  # None: removed; its slot stays
    type: DataType
    offset: int  # from the start of the object (the u16 static size is at 0)
    target: str | None = None  # embedded collection of Object / ObjectList
    end: int = 0  # offset + inline size (set by CollectionSchema.from_json)


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    target: str

    def map_name(self, collection: str) -> str:
        return f"_l_{collection}_{self.name}"


@dataclass(frozen=True, slots=True)
class CollectionSchema:
    name: str
    embedded: bool
    version: int
    properties: tuple[Property, ...]  # stored order, removed ones included
    links: tuple[Link, ...]
    indexes: tuple[str, ...]
    by_name: dict[str, Property] = field(compare=False, repr=False)

    @property
    def static_size(self) -> int:
        """The static size of an object written with every property of this schema."""
        last = self.properties[-1] if self.properties else None
        return last.offset + last.type.static_size if last else 2

    @property
    def named_properties(self) -> tuple[Property, ...]:
        return tuple(p for p in self.properties if p.name is not None)

    @classmethod
    def from_json(cls, key: str, raw: bytes) -> CollectionSchema:
        """Parse one `_info` value; offsets follow the stored property order (never alphabetical)."""
        try:
            doc = json.loads(raw)
            name = doc["name"]
            version = int(doc.get("version", 0))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise IsarFormatError(f"the schema of {key!r} in _info is not valid JSON") from None
        if version == 3:
            raise IsarFormatError("Isar 4 files are not supported (schema version 3); this reader reads Isar 3")
        if version != SUPPORTED_VERSION:
            raise IsarFormatError(
                f"schema version {version} is not supported (Isar 3 writes version {SUPPORTED_VERSION}); "
                "open the file once with an Isar 3 app to upgrade it",
                collection=name if isinstance(name, str) else key,
            )
        try:
            props: list[Property] = []
            offset = 2
            for p in doc["properties"]:
                type_name = _ALIASES.get(p["type"], p["type"])
                dtype = DataType(type_name)
                props.append(Property(p.get("name"), dtype, offset, p.get("target"), offset + dtype.static_size))
                offset += dtype.static_size
            links = tuple(Link(link["name"], link["target"]) for link in doc.get("links") or ())
            indexes = tuple(str(i.get("name")) for i in doc.get("indexes") or ())
        except (KeyError, TypeError, ValueError) as exc:
            raise IsarFormatError(f"unreadable schema in _info ({exc})", collection=name) from None
        if offset > 0xFFFF:
            raise IsarFormatError("schema too large for a u16 static size", collection=name)
        return cls(
            name,
            bool(doc.get("embedded", False)),
            version,
            tuple(props),
            links,
            indexes,
            {p.name: p for p in props if p.name is not None},
        )


_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


class ObjectReader:
    """Reads the fields of one stored object (bytes) by property, with Isar 3's null rules.

    A field at or past the object's static size is null (the object was
    written before the property existed). Offsets and lengths are checked
    against the object's size: a bad one is a corrupt object, reported with
    collection, id and field.
    """

    __slots__ = ("collection", "data", "embedded_schemas", "id", "size", "static_size")

    def __init__(
        self,
        data: bytes,
        *,
        collection: str,
        id: int | None,
        embedded_schemas: dict[str, CollectionSchema] | None = None,
    ) -> None:
        self.data = data
        self.collection = collection
        self.id = id
        self.size = len(data)
        self.embedded_schemas = embedded_schemas or {}
        if self.size < 2:
            raise IsarFormatError("corrupt object: shorter than its 2-byte header", collection=collection, id=id)
        self.static_size = data[0] | data[1] << 8
        if not 2 <= self.static_size <= self.size:
            raise IsarFormatError(
                f"corrupt object: static size {self.static_size} outside its {self.size} bytes",
                collection=collection,
                id=id,
            )

    def corrupt(self, prop: Property, what: str) -> IsarFormatError:
        return IsarFormatError(f"corrupt object: {what}", collection=self.collection, id=self.id, field=prop.name)

    def present(self, prop: Property) -> bool:
        """False when the field lies past the static size (object older than the property)."""
        if prop.offset >= self.static_size:
            return False
        if prop.end > self.static_size:
            raise self.corrupt(prop, f"field at {prop.offset} crosses the static size {self.static_size}")
        return True

    def span(self, prop: Property, element_size: int) -> tuple[int, int] | None:
        """(start, element count) of a dynamic field's data, or None when null."""
        if not self.present(prop):
            return None
        data = self.data
        off = prop.offset
        pos = data[off] | data[off + 1] << 8 | data[off + 2] << 16
        if pos == 0:
            return None
        if pos < self.static_size or pos + 3 > self.size:
            raise self.corrupt(prop, f"data offset {pos} outside the object ({self.size} bytes)")
        count = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        start = pos + 3
        if start + count * element_size > self.size:
            raise self.corrupt(prop, f"{count} elements at {start} run past the object's {self.size} bytes")
        return start, count

    def bytes_of(self, prop: Property) -> bytes | None:
        """The raw bytes of a String / ByteList / Object field, or None."""
        sp = self.span(prop, 1)
        if sp is None:
            return None
        return self.data[sp[0] : sp[0] + sp[1]]

    def read_string(self, prop: Property) -> str | None:
        raw = self.bytes_of(prop)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.corrupt(prop, f"invalid UTF-8 at byte {exc.start}") from None

    def read_bool(self, prop: Property) -> bool | None:
        if not self.present(prop):
            return None
        return self._bool_byte(prop, self.data[prop.offset])

    def _bool_byte(self, prop: Property, value: int) -> bool | None:
        if value == NULL_BOOL:
            return None
        if value == TRUE_BOOL:
            return True
        if value == FALSE_BOOL:
            return False
        raise self.corrupt(prop, f"boolean byte {value} (expected 0 null, 1 false, 2 true)")

    def read_byte(self, prop: Property) -> int | None:
        # Byte has no null marker in Isar 3; only an object older than the property has none.
        return self.data[prop.offset] if self.present(prop) else None

    def read_int(self, prop: Property) -> int | None:
        if not self.present(prop):
            return None
        value: int = _I32.unpack_from(self.data, prop.offset)[0]
        return None if value == NULL_INT else value

    def read_long(self, prop: Property) -> int | None:
        if not self.present(prop):
            return None
        value: int = _I64.unpack_from(self.data, prop.offset)[0]
        return None if value == NULL_LONG else value

    def read_float(self, prop: Property) -> float | None:
        if not self.present(prop):
            return None
        value: float = _F32.unpack_from(self.data, prop.offset)[0]
        return None if math.isnan(value) else value

    def read_double(self, prop: Property) -> float | None:
        if not self.present(prop):
            return None
        value: float = _F64.unpack_from(self.data, prop.offset)[0]
        return None if math.isnan(value) else value

    def _fixed_list(self, prop: Property, fmt: str, size: int) -> list[Any] | None:
        sp = self.span(prop, size)
        if sp is None:
            return None
        start, count = sp
        return list(struct.unpack_from(f"<{count}{fmt}", self.data, start))

    def _dynamic_items(self, prop: Property) -> list[bytes | None] | None:
        """Items of a StringList / ObjectList: u24 count, u24 (size + 1 or 0 = null) each, then contents."""
        sp = self.span(prop, 3)
        if sp is None:
            return None
        start, count = sp
        data = self.data
        content = start + count * 3
        items: list[bytes | None] = []
        for i in range(count):
            p = start + i * 3
            size = data[p] | data[p + 1] << 8 | data[p + 2] << 16
            if size == 0:
                items.append(None)
                continue
            end = content + size - 1
            if end > self.size:
                raise self.corrupt(prop, f"list item {i} runs past the object's {self.size} bytes")
            items.append(data[content:end])
            content = end
        return items

    def _embedded(self, prop: Property, raw: bytes) -> dict[str, Any]:
        schema = self.embedded_schemas.get(prop.target or "")
        if schema is None:
            raise self.corrupt(prop, f"embedded object of unknown schema {prop.target!r}")
        return decode(
            ObjectReader(raw, collection=self.collection, id=self.id, embedded_schemas=self.embedded_schemas), schema
        )

    def value(self, prop: Property) -> Any:
        """The field decoded generically: None, bool, int, float, str, bytes, list or dict (embedded)."""
        t = prop.type
        reader = _SCALAR_READERS.get(t)
        if reader is not None:
            return reader(self, prop)
        if t is DataType.ByteList:
            return self.bytes_of(prop)
        if t is DataType.BoolList:
            raw = self.bytes_of(prop)
            return None if raw is None else [self._bool_byte(prop, b) for b in raw]
        if t in _LIST_FORMATS:
            fmt, size, null = _LIST_FORMATS[t]
            values = self._fixed_list(prop, fmt, size)
            if values is None:
                return None
            if fmt in "fd":
                return [None if math.isnan(v) else v for v in values]
            return [None if v == null else v for v in values]
        if t is DataType.Object:
            raw = self.bytes_of(prop)
            return None if raw is None else self._embedded(prop, raw)
        items = self._dynamic_items(prop)
        if items is None:
            return None
        if t is DataType.StringList:
            out: list[Any] = []
            for i, item in enumerate(items):
                try:
                    out.append(None if item is None else item.decode("utf-8"))
                except UnicodeDecodeError:
                    raise self.corrupt(prop, f"list item {i}: invalid UTF-8") from None
            return out
        return [None if item is None else self._embedded(prop, item) for item in items]


_SCALAR_READERS: dict[DataType, Callable[[ObjectReader, Property], Any]] = {
    DataType.Bool: ObjectReader.read_bool,
    DataType.Byte: ObjectReader.read_byte,
    DataType.Int: ObjectReader.read_int,
    DataType.Float: ObjectReader.read_float,
    DataType.Long: ObjectReader.read_long,
    DataType.Double: ObjectReader.read_double,
    DataType.String: ObjectReader.read_string,
}
_LIST_FORMATS: dict[DataType, tuple[str, int, int | None]] = {
    DataType.IntList: ("i", 4, NULL_INT),
    DataType.LongList: ("q", 8, NULL_LONG),
    DataType.FloatList: ("f", 4, None),
    DataType.DoubleList: ("d", 8, None),
}


def decode(obj: ObjectReader, schema: CollectionSchema) -> dict[str, Any]:
    """Every named property of `obj`, in stored order, decoded generically."""
    return {p.name: obj.value(p) for p in schema.properties if p.name is not None}
