"""The app's schema history in a user's file: nulls read as the app reads them, removed properties kept.

A user who installed an early build of the app and upgraded has a `default.isar` whose
objects were written under several schemas (docs/isar-format.md, "The app's schema
history"). Isar 3 keeps a removed property in `_info` with `"name": null` (its bytes stay
in the objects written before) and appends new properties after the old ones, so:

* an object written before a property existed is shorter than the static size: the
  property reads as null; the app's generated deserializers then read many such nulls as a
  value (`readString` → `''`, a null DateTime → the epoch, `isEditable ?? true`, an unknown
  or null type name → `text`). `APP_READS_NULL` is that table; `Nulls.APP` (the default of
  the tools) reads a null the same way and counts each one (`ReadNotes`), `Nulls.REFUSE`
  refuses it as before;
* a removed property may still hold a value in old objects (the first build's message
  text is in the removed `content`). It is never dropped silently: the reading counts the
  values per position (`ReadNotes.removed`), `scan()` counts them for `--inspect`, and
  `write_removed()` writes them out (`--keep-removed FILE.ndjson`).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pychat_db.isar.file import IsarFile
from pychat_db.isar.format import CollectionSchema, ObjectReader, Property


class Nulls(enum.StrEnum):
    """How a null in a required field is read: as the app reads it (counted), or refused."""

    APP = "app"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class AppDefault:
    """What the app reads for a null: `value` as in a contract row, `shown` as the summaries show it."""

    value: Any
    shown: str


_EMPTY = AppDefault("", "''")
_EPOCH = AppDefault(0, "1970-01-01T00:00:00Z")  # µs since the epoch: isar's `nullDate`
_TRUE = AppDefault(True, "true")
_TEXT_TYPE = AppDefault("text", "'text'")

# (contract collection, contract field) → what the app's deserializer at a808d69 reads for a null
# (`lib/features/*/models/*.g.dart` with isar_community's IsarReaderImpl; docs/isar-format.md). A
# nullable field not listed reads as null, as the app reads it.
APP_READS_NULL: Mapping[tuple[str, str], AppDefault] = {
    ("configuration", "apiKey"): _EMPTY,  # readStringOrNull ?? ''
    ("configuration", "modelName"): _EMPTY,  # readString
    ("threads", "name"): _EMPTY,  # readStringOrNull ?? ''
    ("threads", "createdAt"): _EPOCH,  # readDateTime
    ("modes", "name"): _EMPTY,  # readString
    ("modes", "prompt"): _EMPTY,  # readString
    ("modes", "isEditable"): _TRUE,  # readBoolOrNull ?? true
    ("tags", "name"): _EMPTY,  # readString
    ("tags", "description"): _EMPTY,  # readString
    ("tags", "isEditable"): _TRUE,  # readBoolOrNull ?? true
    ("messages", "text"): _EMPTY,  # readStringOrNull ?? ''
    ("messages", "description"): _EMPTY,  # readStringOrNull ?? ''
    ("messages", "timestamp"): _EPOCH,  # readDateTime
    ("messages", "type"): _TEXT_TYPE,  # _MessagetypeValueEnumMap[readStringOrNull] ?? MessageType.text
    ("mode_outputs", "content"): _EMPTY,  # readString
    ("mode_outputs", "createdAt"): _EPOCH,  # readDateTime
}

KEEP_REMOVED_HINT = "keep them with --keep-removed FILE.ndjson"


@dataclass
class ReadNotes:
    """What one read of a collection met: nulls read as the app reads them (count per contract field)
    and values of removed properties (count per position in the stored property list)."""

    collection: str  # contract collection
    isar: str  # Isar collection
    defaults: dict[str, int] = field(default_factory=dict)
    removed: dict[int, tuple[str, int]] = field(default_factory=dict)  # position → (type, objects)

    def count_default(self, name: str) -> None:
        self.defaults[name] = self.defaults.get(name, 0) + 1

    def count_removed(self, position: int, type_name: str) -> None:
        self.removed[position] = (type_name, self.removed.get(position, (type_name, 0))[1] + 1)

    def to_wire(self) -> list[Any]:
        """As plain lists and dicts (the reader process sends it with the end of the collection)."""
        removed = [[p, t, n] for p, (t, n) in sorted(self.removed.items())]
        return [self.collection, self.isar, dict(self.defaults), removed]

    @classmethod
    def from_wire(cls, wire: list[Any]) -> ReadNotes:
        collection, isar, defaults, removed = wire
        return cls(collection, isar, dict(defaults), {int(p): (str(t), int(n)) for p, t, n in removed})

    def __bool__(self) -> bool:
        return bool(self.defaults or self.removed)


def default_lines(notes: Mapping[str, ReadNotes]) -> Iterator[str]:
    """`messages.text: 2 nulls read as '' (as the app reads them)`, per collection and field."""
    for n in notes.values():
        for name, count in n.defaults.items():
            default = APP_READS_NULL[(n.collection, name)]
            plural = "null" if count == 1 else "nulls"
            yield f"{n.collection}.{name}: {count} {plural} read as {default.shown} (as the app reads them)"


def _objects(count: int) -> str:
    return f"{count} object" if count == 1 else f"{count} objects"


def removed_lines(notes: Mapping[str, ReadNotes], kept: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """One line per collection whose removed properties hold values: `Message: removed properties hold
    values (position 0 String: 2 objects, ...); not carried over (keep them with --keep-removed FILE.ndjson)`."""
    where = f"written to {os.fspath(kept)}" if kept is not None else KEEP_REMOVED_HINT
    for n in notes.values():
        if n.removed:
            held = ", ".join(f"position {p} {t}: {_objects(c)}" for p, (t, c) in sorted(n.removed.items()))
            yield f"{n.isar}: removed properties hold values ({held}); not carried over ({where})"


def notes_json(notes: Mapping[str, ReadNotes], nulls: Nulls, kept: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The reading's part of a JSON report."""
    defaults = {
        f"{n.collection}.{name}": {"nulls": count, "read_as": APP_READS_NULL[(n.collection, name)].shown}
        for n in notes.values()
        for name, count in n.defaults.items()
    }
    removed = [
        {"collection": n.isar, "position": p, "type": t, "objects": c}
        for n in notes.values()
        for p, (t, c) in sorted(n.removed.items())
    ]
    return {
        "nulls": nulls.value,
        "defaults": defaults,
        "removed_values": removed,
        "keep_removed": os.fspath(kept) if kept is not None else None,
    }


def removed_properties(schema: CollectionSchema) -> list[tuple[int, Property]]:
    """(position in the stored list, property) of each removed property of `schema`."""
    return [(i, p) for i, p in enumerate(schema.properties) if p.name is None]


# -- the whole file: --inspect and --keep-removed ------------------------------------------------------


@dataclass
class CollectionHistory:
    """How the objects of one collection relate to its schema's history (`scan`)."""

    name: str
    objects: int = 0
    static_sizes: dict[int, int] = field(default_factory=dict)  # static size → objects
    removed: dict[int, int] = field(default_factory=dict)  # position → objects holding a value

    def predating(self, schema: CollectionSchema) -> list[tuple[list[str], int]]:
        """(labels of the properties the objects lack, objects) per shorter static size, oldest first. A
        label is the property's name, or `(removed, position N)`."""
        out = []
        for size, count in sorted(self.static_sizes.items()):
            missing = [
                p.name if p.name is not None else f"(removed, position {i})"
                for i, p in enumerate(schema.properties)
                if p.offset >= size
            ]
            if missing:
                out.append((missing, count))
        return out


def scan(isar: IsarFile) -> dict[str, CollectionHistory]:
    """Every object of every collection: its static size (which properties it predates) and which removed
    properties hold a value in it. Reads each object's header, and its removed fields if any."""
    found: dict[str, CollectionHistory] = {}
    for name, schema in isar.collections.items():
        history = CollectionHistory(name)
        found[name] = history
        removed = removed_properties(schema)
        sizes = history.static_sizes
        for id_, data in isar.raw_objects(name):
            history.objects += 1
            size = data[0] | data[1] << 8 if len(data) >= 2 else 0
            sizes[size] = sizes.get(size, 0) + 1
            if removed:
                obj = ObjectReader(data, collection=name, id=id_, embedded_schemas=isar.embedded)
                for position, prop in removed:
                    if obj.value(prop) is not None:
                        history.removed[position] = history.removed.get(position, 0) + 1
    return found


def history_lines(schema: CollectionSchema, history: CollectionHistory) -> Iterator[str]:
    """The --inspect lines of one collection's `scan()`: objects older than properties, removed values."""
    for missing, count in history.predating(schema):
        yield f"{count} of {history.objects} objects predate {', '.join(missing)} (those read as null there)"
    for position, count in sorted(history.removed.items()):
        type_name = schema.properties[position].type.value
        yield (
            f"removed property at position {position} ({type_name}) holds a value in {count} of "
            f"{history.objects} objects ({KEEP_REMOVED_HINT})"
        )


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def removed_values(isar: IsarFile) -> Iterator[dict[str, Any]]:
    """One record per value of a removed property, collection by collection in id order:
    `{"collection", "id", "position", "type", "value"}` (bytes as base64 text)."""
    for name, schema in isar.collections.items():
        removed = removed_properties(schema)
        if not removed:
            continue
        for id_, data in isar.raw_objects(name):
            obj = ObjectReader(data, collection=name, id=id_, embedded_schemas=isar.embedded)
            for position, prop in removed:
                value = obj.value(prop)
                if value is not None:
                    yield {
                        "collection": name,
                        "id": id_,
                        "position": position,
                        "type": prop.type.value,
                        "value": _json_value(value),
                    }


def write_removed(isar: IsarFile, path: str | os.PathLike[str]) -> int:
    """Write `removed_values(isar)` to `path` as NDJSON, created 0600 (a temporary file in the same
    directory, renamed into place when complete: never a partial file). Returns the values written."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")  # 0600
    written = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for record in removed_values(isar):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return written
