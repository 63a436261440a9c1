"""What differs between an exported row and a stored one, and how to show it (for `verify`).

Values are compared as SQLite stores them (a blob's holder does not matter, its storage
class does) and shown short: never a whole blob or string, and never the API key's value.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pychat_db.exchange.codec import Row
from pychat_db.exchange.contract import Collection

SECRET_FIELDS = frozenset({("configuration", "apiKey")})
SHORT_BYTES = 32  # a blob up to this long is shown whole; a longer one by length, SHA-256 and a prefix
SHORT_CHARS = 40  # a string is shown by a window of this many characters; a longer one also by its SHA-256
PREFIX_BYTES = 16


def key_positions(collection: Collection) -> tuple[int, ...]:
    """Where the collection's key fields stand in its rows."""
    return tuple(collection.field_names.index(name) for name in collection.key)


def describe_key(collection: Collection, key: tuple[Any, ...]) -> str:
    """`id 42` or `messageId 5, tagId 7`."""
    return ", ".join(f"{name} {value}" for name, value in zip(collection.key, key, strict=True))


def stored_value(value: object) -> object:
    """`value` as SQLite stores it: a blob as `bytes`, whatever object holds it.

    A row of an Isar file's reader process holds its blobs as `memoryview`s of the frame
    they came in (`pychat_db.isar.worker`); read inline they are `bytes`. Both are the
    same blob, bound and digested alike (`codec.row_digest`), so they are compared as one.
    """
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def owned_row(row: Row) -> Row:
    """`row` with its blobs as `bytes` (a memoryview would keep the whole frame it views alive)."""
    if any(isinstance(v, memoryview | bytearray) for v in row):
        return tuple(bytes(v) if isinstance(v, memoryview | bytearray) else v for v in row)
    return row


def same_value(a: object, b: object) -> bool:
    """Whether two field values are the same stored value (a blob's holder does not matter; the
    storage class does: 1, 1.0, '1' and b'1' are four values)."""
    a, b = stored_value(a), stored_value(b)
    return type(a) is type(b) and a == b


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")).hexdigest()


def _short(text: str, at: int) -> str:
    start = max(0, at - 10)
    piece = text[start : start + SHORT_CHARS]
    return ("…" if start else "") + repr(piece) + ("…" if start + SHORT_CHARS < len(text) else "")


def show_value(value: object, at: int = 0) -> str:
    """A field value for a message, never long: a blob past SHORT_BYTES (or a string past SHORT_CHARS) as its
    length, SHA-256 and a short piece (a string's around character `at`)."""
    value = stored_value(value)
    if value is None:
        return "null"
    if isinstance(value, bytes):
        if len(value) <= SHORT_BYTES:
            return f"{len(value):,} bytes {value!r}"
        return f"{len(value):,} bytes (sha256 {_sha256(value)}, starts {value[:PREFIX_BYTES]!r}…)"
    if isinstance(value, str):
        if len(value) <= SHORT_CHARS:
            return f"{_short(value, at)} ({len(value):,} chars)"
        return f"{_short(value, at)} ({len(value):,} chars, sha256 {_sha256(value)})"
    return repr(value)


def _first_difference(a: bytes | str, b: bytes | str) -> int:
    """Index of the first unequal element (the shorter's length when one is a prefix of the other)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + 4096] == b[i : i + 4096]:  # a blob of megabytes: block by block, then element-wise
        i += 4096
    for j in range(i, min(i + 4096, n)):
        if a[j] != b[j]:
            return j
    return n


def describe_difference(collection: Collection, name: str, exported: object, stored: object) -> str:
    """What differs between a field's exported and stored value, without the API key's value.

    Values are shown short (`show_value`): never a whole blob, and never the object holding one.
    """
    if (collection.name, name) in SECRET_FIELDS:
        return "differs (value redacted: it is the API key)"
    exported, stored = stored_value(exported), stored_value(stored)
    if isinstance(exported, bytes) and isinstance(stored, bytes):
        at, unit = _first_difference(exported, stored), "byte"
    elif isinstance(exported, str) and isinstance(stored, str):
        at, unit = _first_difference(exported, stored), "character"
    else:
        return f"export {show_value(exported)}, database {show_value(stored)}"
    return f"export {show_value(exported, at)}, database {show_value(stored, at)}, first difference at {unit} {at:,}"


def field_differences(collection: Collection, exported: Row, stored: Row) -> list[tuple[str, str]]:
    """(field name, description) for each field whose values differ (`same_value`: value and storage class)."""
    out = []
    for f, a, b in zip(collection.fields, exported, stored, strict=True):
        if not same_value(a, b):
            out.append((f.name, describe_difference(collection, f.name, a, b)))
    return out
