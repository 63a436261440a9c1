"""Validating one row of the export contract and converting it to stored values.

`RowCodec(collection)` turns one JSON object of a collection into a *row*: the
tuple of SQLite values in `Collection.fields` order (see `contract.py`). It
accepts the JSON text of the object (`decode`, the export files) or an already
decoded Python mapping with the same keys and JSON value types (`convert`, e.g.
the Isar reader's objects); both go through the same typed msgspec Struct, so a
value is refused for the same reason whatever its source. A refused value raises
`FieldError(field, reason)`; the caller adds the location (`FILE:LINE`).

`row_digest(row)` is the SHA-256 of a row's content, the same for a row read
from an export and for the row as stored (`SELECT` of `Collection.columns`).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec

from pychat_db import convert
from pychat_db.errors import PychatDbError
from pychat_db.exchange.contract import COLLECTIONS, MESSAGE_TYPES, Collection, Field, Kind

SqlValue = int | str | bytes | None
Row = tuple[SqlValue, ...]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Byte = Annotated[int, msgspec.Meta(ge=0, le=255)]
MessageType = Literal["text", "audio", "image"]
assert MessageType.__args__ == MESSAGE_TYPES  # type: ignore[attr-defined]

_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_QUOTED_NAME = re.compile(r"field `(?P<name>[^`]*)`")


class NaiveTimezone(enum.StrEnum):
    """What an ISO-8601 timestamp without an offset means (`--naive-timezone`)."""

    UTC = "UTC"
    LOCAL = "local"
    REJECT = "reject"


class FieldError(PychatDbError, ValueError):
    """One refused value: `field` is the contract (camelCase) name, or None for the whole row."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def timestamp_to_text(value: str | int, naive: NaiveTimezone = NaiveTimezone.REJECT) -> str:
    """A contract DateTime (ISO-8601 text or integer µs since the epoch, UTC) → canonical UTC text.

    Raises ValueError with the reason (bad text, out of range, no offset while `naive` is REJECT).
    """
    if isinstance(value, int):
        return convert.micros_to_timestamp_text(value)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {value!r} ({exc})") from None
    # Already canonical? fromisoformat checked the digits; the separators fix the layout.
    if (
        len(value) == 27
        and value[26] == "Z"
        and value[19] == "."
        and value[10] == "T"
        and value[4] == "-"
        and value[7] == "-"
        and value[13] == ":"
        and value[16] == ":"
    ):
        return value
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if naive is NaiveTimezone.REJECT:
            raise ValueError(
                f"{value!r} has no UTC offset, so the instant is ambiguous; "
                "add one (Z, +05:30) or pass --naive-timezone UTC|local"
            )
        parsed = parsed.replace(tzinfo=convert.UTC) if naive is NaiveTimezone.UTC else parsed.astimezone()
    try:
        return convert.timestamp_to_db(parsed)
    except OverflowError:
        raise ValueError(f"{value!r} is outside years 0001-9999 in UTC") from None


def _annotation(collection: Collection, f: Field) -> tuple[Any, Any]:
    """(type, default) of a contract field in the Struct; default NODEFAULT means required."""
    required: Any = msgspec.NODEFAULT
    if f.kind is Kind.LINK:
        if collection.key == ("id",):
            # A legacy link may be empty: `null` or absent. The loader refuses or adopts it.
            return Int64 | None, None
        return Int64, required
    base: Any = {
        Kind.ID: Int64,
        Kind.TEXT: str,
        Kind.TIMESTAMP: str | Int64,
        Kind.BYTES: bytes | list[Byte],
        Kind.ENUM: MessageType,
        Kind.BOOL: bool,
    }[f.kind]
    if f.nullable:
        return base | None, None
    return base, required


def _struct_for(collection: Collection, array_like: bool = False) -> type[msgspec.Struct]:
    """The typed Struct of a collection's objects; `array_like`: given as values in field order, all present."""
    fields: list[tuple[Any, ...]] = []
    for f in collection.fields:
        kind, default = _annotation(collection, f)
        if default is msgspec.NODEFAULT or array_like:
            fields.append((f.column, kind))
        else:
            fields.append((f.column, kind, default))
    # Required fields must precede optional ones in a Struct definition; `kw_only` lifts that.
    return msgspec.defstruct(
        f"{collection.name}_row",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        rename={f.column: f.name for f in collection.fields},
        array_like=array_like,
    )


def _split_msgspec_error(collection: Collection, message: str) -> FieldError:
    match = _MSGSPEC_PATH.match(message)
    assert match is not None
    reason, path = match.group("reason"), match.group("path")
    if path:
        return FieldError(path.lstrip("."), reason[0].lower() + reason[1:])
    named = _QUOTED_NAME.search(reason)
    if named and "unknown field" in reason:
        return FieldError(named.group("name"), f"unknown field in {collection.name} (it would be lost)")
    if named and "missing required field" in reason:
        return FieldError(named.group("name"), "missing required field")
    if reason.startswith("Expected `object`"):
        return FieldError(None, f"expected a JSON object, got {reason.rsplit('got ', 1)[-1].strip('`')}")
    return FieldError(None, reason)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _diagnose_undecodable(collection: Collection, data: bytes, exc: Exception) -> FieldError:
    """Explain a line msgspec could not decode: invalid UTF-8, lone surrogate or malformed JSON."""
    # Judged from the bytes, not from the exception: msgspec < 0.23 raised UnicodeDecodeError for invalid
    # UTF-8, 0.23 raises its own DecodeError ("Invalid UTF-8 encoded string").
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        invalid_utf8, exc = True, err
    else:
        invalid_utf8 = False
    try:
        # surrogateescape keeps invalid bytes visible as lone surrogates, like a JSON \ud800 escape.
        parsed = json.loads(data.decode("utf-8", "surrogateescape"))
    except json.JSONDecodeError as err:
        if invalid_utf8:
            return FieldError(None, f"invalid UTF-8 ({exc})")
        where = f"column {err.colno}" if err.lineno == 1 else f"line {err.lineno} of the object, column {err.colno}"
        return FieldError(None, f"malformed JSON: {err.msg} ({where})")
    except (ValueError, RecursionError) as err:
        return FieldError(None, f"malformed JSON: {err}")
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            if (isinstance(value, str) and _has_surrogate(value)) or _has_surrogate(str(key)):
                name = key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                if invalid_utf8:
                    return FieldError(name, "invalid UTF-8 in the string")
                return FieldError(name, "lone UTF-16 surrogate in the string (not valid Unicode text)")
    if invalid_utf8:
        return FieldError(None, f"invalid UTF-8 ({exc})")
    return FieldError(None, f"malformed JSON: {exc}")


class RowCodec:
    """Validates and converts the rows of one collection.

    `decode(json_bytes)` and `convert(mapping)` return a row (tuple in
    `collection.fields` order) or raise FieldError. Links of id-keyed
    collections may come back None (an empty legacy link): the loader decides.
    """

    def __init__(self, collection: Collection, naive: NaiveTimezone = NaiveTimezone.REJECT) -> None:
        self.collection = collection
        self.naive = naive
        self.struct = _struct_for(collection)
        self._decoder = msgspec.json.Decoder(self.struct)
        self._values_struct = _struct_for(collection, array_like=True)
        self._values_list: Any = list[self._values_struct]  # type: ignore[name-defined]
        self._names = tuple(f.name for f in collection.fields)
        self._timestamps = tuple(i for i, f in enumerate(collection.fields) if f.kind is Kind.TIMESTAMP)
        self._bytes = tuple(i for i, f in enumerate(collection.fields) if f.kind is Kind.BYTES)
        self._bools = tuple(i for i, f in enumerate(collection.fields) if f.kind is Kind.BOOL)
        self._texts = tuple(i for i, f in enumerate(collection.fields) if f.kind is Kind.TEXT)
        self._plain = not (self._timestamps or self._bytes or self._bools)
        self._finish_typed = _compile_finish_typed(collection)

    def decode(self, data: bytes) -> Row:
        """One JSON object (bytes, UTF-8) → row. Raises FieldError."""
        try:
            obj = self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise _split_msgspec_error(self.collection, str(exc)) from None
        except RecursionError:
            raise FieldError(None, "malformed JSON: nested too deeply") from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _diagnose_undecodable(self.collection, data, exc) from None
        return self._finish(msgspec.structs.astuple(obj))

    def try_decode(self, data: bytes) -> Row | None:
        """Like `decode`, but None instead of an explained error (for callers that retry another way)."""
        try:
            return self._finish(msgspec.structs.astuple(self._decoder.decode(data)))
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError, FieldError):
            return None

    def try_decode_lines(self, data: bytes | memoryview) -> list[Row] | None:
        """The rows of every JSON value in `data` (values separated by any whitespace), or None if one is refused.

        One msgspec call for a whole block of NDJSON. Values are not tied to lines
        here: a caller that needs one object per line checks that itself (or
        decodes line by line with `decode`, which explains a refusal).
        """
        try:
            objs = self._decoder.decode_lines(data)
            if self._plain:
                return list(map(msgspec.structs.astuple, objs))
            finish, astuple = self._finish, msgspec.structs.astuple
            return [finish(astuple(obj)) for obj in objs]
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError, FieldError):
            return None

    def convert(self, mapping: Mapping[str, Any]) -> Row:
        """One decoded object (camelCase keys, JSON value types, bytes allowed) → row. Raises FieldError."""
        try:
            obj = msgspec.convert(mapping, self.struct)
        except msgspec.ValidationError as exc:
            raise _split_msgspec_error(self.collection, str(exc)) from None
        values = msgspec.structs.astuple(obj)
        for i in self._texts:
            value = values[i]
            if isinstance(value, str) and _has_surrogate(value):
                raise FieldError(self.collection.fields[i].name, "lone UTF-16 surrogate in the string")
        return self._finish(values)

    def convert_values(self, values: Sequence[Any], *, strict_utf8: bool = False) -> Row:
        """Like `convert`, for one object given as its values in `collection.fields` order. Raises FieldError.

        The same typed Struct checks (as an array-like Struct: no per-row dict,
        no key lookups) and the same conversions. A refused object is handed to
        `convert` by name, so the FieldError is the one `convert` gives for it.
        `strict_utf8=True` says every str comes from strict UTF-8 decoding (the
        Isar reader's `bytes.decode()`), which never yields a lone surrogate:
        the surrogate check `convert` makes would be redundant and is skipped.
        """
        try:
            obj = msgspec.convert(values, self._values_struct)
        except msgspec.ValidationError:
            if len(values) != len(self._names):
                raise FieldError(None, f"expected {len(self._names)} values, got {len(values)}") from None
            self.convert(dict(zip(self._names, values, strict=True)))
            raise AssertionError("convert() accepted what convert_values() refused") from None
        out = msgspec.structs.astuple(obj)
        if not strict_utf8:
            for i in self._texts:
                value = out[i]
                if isinstance(value, str) and _has_surrogate(value):
                    raise FieldError(self.collection.fields[i].name, "lone UTF-16 surrogate in the string")
        return self._finish(out)

    def try_convert_values_many(self, rows: Sequence[Sequence[Any]]) -> list[Row] | None:
        """`convert_values(values, strict_utf8=True)` of every one of `rows` in one msgspec call, or None
        if one is refused (the caller then converts them one by one, which explains the refusal)."""
        try:
            objs = msgspec.convert(rows, self._values_list)
            if self._plain:
                return list(map(msgspec.structs.astuple, objs))
            finish, astuple = self._finish, msgspec.structs.astuple
            return [finish(astuple(obj)) for obj in objs]
        except (msgspec.ValidationError, FieldError):
            return None

    def finish_typed_many(self, rows: Sequence[Sequence[Any]]) -> list[Row]:
        """The rows `convert_values` returns for value rows that already have the typed Struct's types, with
        timestamps as int µs within years 0001-9999 and bytes as bytes: conversions only, no checks.

        Only for a reader that makes such values by construction (the Isar reader's generated decoder:
        `AppReader.typed_batches`); anything else goes through `convert_values`, which checks it.
        """
        return list(map(self._finish_typed, rows))

    def _finish(self, values: tuple[Any, ...]) -> Row:
        if self._plain:
            return values
        out = list(values)
        fields = self.collection.fields
        for i in self._timestamps:
            value = out[i]
            try:
                if type(value) is int:
                    out[i] = convert.micros_to_timestamp_text(value)
                else:
                    out[i] = timestamp_to_text(value, self.naive)
            except ValueError as exc:
                raise FieldError(fields[i].name, str(exc)) from None
        for i in self._bytes:
            if type(out[i]) is list:
                out[i] = bytes(out[i])
        for i in self._bools:
            out[i] = 1 if out[i] else 0
        return tuple(out)


def _compile_finish_typed(collection: Collection) -> Callable[[Sequence[Any]], Row]:
    """`RowCodec._finish` for typed values (see `finish_typed_many`), as one generated expression per row."""
    parts = []
    for i, f in enumerate(collection.fields):
        if f.kind is Kind.TIMESTAMP:
            parts.append(f"TS(v[{i}])")
        elif f.kind is Kind.BOOL:
            parts.append(f"1 if v[{i}] else 0")
        else:  # bytes are already bytes
            parts.append(f"v[{i}]")
    namespace: dict[str, Any] = {"TS": convert.micros_to_timestamp_text}
    code = f"def finish(v):\n    return ({', '.join(parts)},)"
    exec(compile(code, f"<finish typed {collection.name}>", "exec"), namespace)
    finish: Callable[[Sequence[Any]], Row] = namespace["finish"]
    return finish


def codecs(naive: NaiveTimezone = NaiveTimezone.REJECT) -> dict[str, RowCodec]:
    """A RowCodec for every collection of the contract, by collection name."""
    return {c.name: RowCodec(c, naive) for c in COLLECTIONS}


_digest_encoder = msgspec.msgpack.Encoder()


def row_digest(row: Row) -> str:
    """SHA-256 (hex) of a row's content: every field, type-tagged (None, int, str and bytes differ).

    `row` is in `Collection.fields` order with stored values: as `RowCodec`
    returns it, or as `SELECT <Collection.columns>` returns it (booleans as 0/1).
    """
    return hashlib.sha256(_digest_encoder.encode(row)).hexdigest()
