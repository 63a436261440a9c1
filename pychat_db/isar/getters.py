"""The reference decoder of the app's objects: one getter per contract field.

A getter reads one field of one object (`format.ObjectReader`) as the export contract
holds it, or raises the precise refusal (collection, id, field and why). It handles
every object the app may have written: an older object without the property, a null in
a required field (read as the app reads it and counted, `NullReads`), a value out of
range. The generated decoders (`pychat_db.isar.decoders`) are the fast path for the
ordinary object; the reference getters decode every other one, so the two differ only
in speed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from pychat_db.convert import MAX_MICROS, MIN_MICROS
from pychat_db.exchange import contract
from pychat_db.exchange.contract import MESSAGE_TYPES
from pychat_db.isar.format import DataType, IsarFormatError, ObjectReader, Property
from pychat_db.isar.history import APP_READS_NULL, Nulls, ReadNotes


def field_refusal(obj: ObjectReader, field: str, reason: str) -> IsarFormatError:
    """The error refusing `field` of `obj` (collection, id and field named)."""
    return IsarFormatError(reason, collection=obj.collection, id=obj.id, field=field)


Getter = Callable[[ObjectReader], Any]


class NullReads:
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
            raise field_refusal(obj, field, why)
        self.notes.count_default(field)
        return self.defaults[field]


def _required(field: str, prop: Property, read: Callable[[ObjectReader, Property], Any], nulls: NullReads) -> Getter:
    """`read(obj, prop)`, a null read as the app reads it (counted) or refused (`nulls`)."""

    def get(obj: ObjectReader) -> Any:
        value = read(obj, prop)
        if value is None:
            return nulls.read(obj, field)
        return value

    return get


def _text_getter(field: str, prop: Property | None, nullable: bool, nulls: NullReads) -> Getter:
    if prop is None:
        return _absent(field, nullable, nulls)
    if not nullable:
        return _required(field, prop, ObjectReader.read_string, nulls)
    string = ObjectReader.read_string

    def get(obj: ObjectReader) -> Any:
        return string(obj, prop)

    return get


def _absent(field: str, nullable: bool, nulls: NullReads) -> Getter:
    """The property is not in the file's schema: null everywhere (read as the app reads it, or refused,
    when required)."""

    def get(obj: ObjectReader) -> Any:
        if not nullable:
            return nulls.read(obj, field, "required field is null (the file's schema has no such property)")
        return None

    return get


def _timestamp_getter(field: str, prop: Property | None, nulls: NullReads) -> Getter:
    if prop is None:
        return _absent(field, False, nulls)
    long = ObjectReader.read_long

    def get(obj: ObjectReader) -> Any:
        value = long(obj, prop)
        if value is None:
            return nulls.read(obj, field)
        if not MIN_MICROS <= value <= MAX_MICROS:
            raise field_refusal(obj, field, f"{value} µs since the epoch is outside years 0001-9999")
        return value

    return get


def _bool_getter(field: str, prop: Property | None, nulls: NullReads) -> Getter:
    if prop is None:
        return _absent(field, False, nulls)
    return _required(field, prop, ObjectReader.read_bool, nulls)


def _enum_getter(field: str, prop: Property | None, nulls: NullReads) -> Getter:
    """A type by name: a name not in the list is passed on as it is, for the codec to refuse that row (as
    an NDJSON line's), which `--reject-file` records (`source.UNKNOWN_TYPE` says why). By ordinal: one
    out of range is refused here (no build of the app stored one; docs/isar-format.md)."""
    if prop is None:
        return _absent(field, False, nulls)
    names = ", ".join(MESSAGE_TYPES)
    if prop.type is DataType.String:
        return _required(field, prop, ObjectReader.read_string, nulls)
    read = ObjectReader.read_byte if prop.type is DataType.Byte else ObjectReader.read_int

    def by_ordinal(obj: ObjectReader) -> Any:
        value = read(obj, prop)
        if value is None:
            return nulls.read(obj, field)
        if not 0 <= value < len(MESSAGE_TYPES):
            raise field_refusal(obj, field, f"ordinal {value} is outside 0-{len(MESSAGE_TYPES) - 1} ({names})")
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


def _bytes_getter(field: str, prop: Property | None, nulls: NullReads, raw_bytes: bool = False) -> Getter:
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
            raise field_refusal(obj, field, f"element {result} is {shown}, outside 0-255")
        return finish(result)

    return from_longs


def getter(f: contract.Field, prop: Property | None, nulls: NullReads, raw_bytes: bool = False) -> Getter:
    """The reference decoder of contract field `f` from `prop` (None: not in the file's schema)."""
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
