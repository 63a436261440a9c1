"""Test-only writer of Isar 3 files, laid out as the real engine lays them out (not library code).

`IsarWriter` writes an MDBX environment with `clibmdbx` the way isar_core 3.x
does (`mdbx/env.rs`, `mdbx/db.rs`, `schema/schema_manager.rs`, `object/id.rs`,
`object/object_builder.rs`, `link.rs`): one file without subdirectory, geometry
1 MiB lower / 5 MiB growth / 20 MiB shrink, `_info` holding each collection's
schema JSON, collections as INTEGERKEY maps keyed by `id XOR 1<<63`, links in
`_l_<Collection>_<link>` and backlinks in `_b_<Collection>_<link>`
(INTEGERKEY | DUPSORT | INTEGERDUP | DUPFIXED), objects as a u16 static size,
inline fields, then u24-length-prefixed dynamic data.

`write_app_file()` builds a file of the chat app's models from contract-shaped
rows (timestamps as µs ints, fileData as bytes).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clibmdbx as mdbx

SIGN = 1 << 63
NULL_INT = -(2**31)
NULL_LONG = -(2**63)
STATIC = {"Bool": 1, "Byte": 1, "Int": 4, "Float": 4, "Long": 8, "Double": 8}
COLLECTION_FLAGS = mdbx.MDBX_INTEGERKEY
LINK_FLAGS = mdbx.MDBX_INTEGERKEY | mdbx.MDBX_DUPSORT | mdbx.MDBX_INTEGERDUP | mdbx.MDBX_DUPFIXED


def id_key(id_: int) -> bytes:
    return ((id_ % (1 << 64)) ^ SIGN).to_bytes(8, "little")


@dataclass
class Schema:
    name: str
    properties: list[tuple[str | None, str, str | None]]  # (name or None if removed, type, embedded target)
    links: list[tuple[str, str]] = field(default_factory=list)  # (name, target collection)
    embedded: bool = False
    version: int = 2
    # position → the name a removed property had: an object written before its removal gets its value
    # from `values[former name]` (the writer's own bookkeeping, not stored in the file)
    former: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        doc = {
            "name": self.name,
            "embedded": self.embedded,
            "properties": [{"name": n, "type": t, "target": tg} for n, t, tg in self.properties],
            "indexes": [],
            "links": [{"name": n, "target": t} for n, t in self.links],
            "version": self.version,
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ObjectBuilder:
    """Serialises one object like isar_core's ObjectBuilder / the Dart IsarWriter."""

    def __init__(self, static_size: int) -> None:
        self.buf = bytearray(static_size)
        self.buf[0:2] = static_size.to_bytes(2, "little")

    def u24(self, at: int, value: int) -> None:
        assert 0 <= value < 1 << 24, value
        self.buf[at : at + 3] = value.to_bytes(3, "little")

    def dynamic(self, at: int, count: int, payload: bytes) -> None:
        self.u24(at, len(self.buf))
        self.buf += count.to_bytes(3, "little") + payload


def encode(schema: Schema, values: Mapping[str, Any], embedded: Mapping[str, Schema], upto: int | None = None) -> bytes:
    """Object bytes for `values` under `schema`; `upto` = number of properties the writer knew (older objects).

    A removed property (`name` None) gets `values[schema.former[position]]` when `values` has that key (an
    object written before the removal); otherwise its slot stays zero-filled, as the app's writer
    (`IsarWriterImpl`, which zeroes the static part) leaves it in an object written after the removal.
    """
    props = schema.properties[: len(schema.properties) if upto is None else upto]
    offsets = []
    offset = 2
    for _, t, _ in props:
        offsets.append(offset)
        offset += STATIC.get(t, 3)
    b = ObjectBuilder(offset)
    for position, ((name, t, target), at) in enumerate(zip(props, offsets, strict=True)):
        if name is None:
            former = schema.former.get(position)
            if former is None or former not in values:
                continue  # zero-filled
            name = former
        v = values.get(name)
        if t == "Bool":
            b.buf[at] = 0 if v is None else (2 if v else 1)
        elif t == "Byte":
            b.buf[at] = 0 if v is None else v
        elif t == "Int":
            b.buf[at : at + 4] = struct.pack("<i", NULL_INT if v is None else v)
        elif t == "Long":
            b.buf[at : at + 8] = struct.pack("<q", NULL_LONG if v is None else v)
        elif t == "Float":
            b.buf[at : at + 4] = struct.pack("<f", math.nan if v is None else v)
        elif t == "Double":
            b.buf[at : at + 8] = struct.pack("<d", math.nan if v is None else v)
        elif v is None:
            b.u24(at, 0)
        elif t == "String":
            raw = v if isinstance(v, bytes) else v.encode("utf-8")
            b.dynamic(at, len(raw), raw)
        elif t == "ByteList":
            b.dynamic(at, len(v), bytes(v))
        elif t == "BoolList":
            b.dynamic(at, len(v), bytes(0 if x is None else (2 if x else 1) for x in v))
        elif t in ("IntList", "LongList", "FloatList", "DoubleList"):
            fmt, null = {"IntList": ("i", NULL_INT), "LongList": ("q", NULL_LONG)}.get(
                t, ("f" if t == "FloatList" else "d", math.nan)
            )
            b.dynamic(at, len(v), struct.pack(f"<{len(v)}{fmt}", *(null if x is None else x for x in v)))
        elif t == "Object":
            raw = encode(embedded[target or ""], v, embedded)
            b.dynamic(at, len(raw), raw)
        elif t in ("StringList", "ObjectList"):
            items = [
                None
                if x is None
                else (x.encode("utf-8") if t == "StringList" else encode(embedded[target or ""], x, embedded))
                for x in v
            ]
            sizes = b"".join((0 if x is None else len(x) + 1).to_bytes(3, "little") for x in items)
            b.dynamic(at, len(items), sizes + b"".join(x for x in items if x is not None))
        else:
            raise ValueError(t)
    return bytes(b.buf)


class IsarWriter:
    """Writes an Isar 3 file. Use as a context manager; `crash_copy` leaves an unfinished-commit copy."""

    def __init__(
        self, path: str | os.PathLike[str], *, page_size: int = 4096, batch: int = 20_000, unsynced: bool = False
    ) -> None:
        self.path = Path(path)
        flags = mdbx.MDBX_NOSUBDIR | (mdbx.MDBX_SAFE_NOSYNC if unsynced else 0)
        self.env = mdbx.Environment(
            os.fspath(path),
            subdir=False,
            flags=flags,
            max_dbs=128,
            geometry=[1 << 20, -1, 1 << 34, 5 << 20, 20 << 20, page_size],
        )
        self.schemas: dict[str, Schema] = {}
        self.batch = batch
        self.pending = 0
        self.txn: Any = self.env.write()
        self.dbs: dict[str, Any] = {}

    def _db(self, name: str, flags: int) -> Any:
        db = self.dbs.get(name)
        if db is None:
            db = self.txn.open_db(name.encode("utf-8"), flags=flags, create=True)
            self.dbs[name] = db
        return db

    def _tick(self) -> None:
        self.pending += 1
        if self.pending >= self.batch:
            self.txn.commit()
            self.txn = self.env.write()
            self.dbs = {}
            self.pending = 0

    def collection(self, schema: Schema) -> None:
        self.schemas[schema.name] = schema
        self.txn.put(schema.name.encode("utf-8"), schema.to_json(), db=self._db("_info", 0))
        if not schema.embedded:
            self._db(schema.name, COLLECTION_FLAGS)
            for link, _ in schema.links:
                self._db(f"_l_{schema.name}_{link}", LINK_FLAGS)
                self._db(f"_b_{schema.name}_{link}", LINK_FLAGS)

    def info_raw(self, key: bytes, value: bytes) -> None:
        self.txn.put(key, value, db=self._db("_info", 0))

    @property
    def embedded(self) -> dict[str, Schema]:
        return {n: s for n, s in self.schemas.items() if s.embedded}

    def put(self, collection: str, id_: int, values: Mapping[str, Any], *, upto: int | None = None) -> None:
        self.put_raw(collection, id_, encode(self.schemas[collection], values, self.embedded, upto))

    def put_raw(self, collection: str, id_: int, data: bytes) -> None:
        self.txn.put(id_key(id_), data, db=self._db(collection, COLLECTION_FLAGS))
        self._tick()

    def link(self, collection: str, link: str, source: int, target: int) -> None:
        self.txn.put(id_key(source), id_key(target), db=self._db(f"_l_{collection}_{link}", LINK_FLAGS))
        self.txn.put(id_key(target), id_key(source), db=self._db(f"_b_{collection}_{link}", LINK_FLAGS))
        self._tick()

    def close(self, *, crash_copy: str | os.PathLike[str] | None = None) -> None:
        """Commit and close. `crash_copy`: copy the file before closing (an `unsynced` writer's copy needs recovery)."""
        self.txn.commit()
        if crash_copy is not None:
            shutil.copyfile(self.path, crash_copy)
        self.env.close()
        lock = Path(f"{self.path}-lck")
        if lock.exists():
            lock.unlink()

    def __enter__(self) -> IsarWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.txn.abort()
            self.env.close()


# The app's models as Isar 3 Dart would store them: properties sorted by name.
def app_schemas(*, type_type: str = "String", file_data_type: str = "LongList") -> dict[str, Schema]:
    s = {
        "Configuration": Schema(
            "Configuration", [("apiKey", "String", None), ("baseUrl", "String", None), ("modelName", "String", None)]
        ),
        "Thread": Schema("Thread", [("createdAt", "Long", None), ("name", "String", None)]),
        "Mode": Schema("Mode", [("isEditable", "Bool", None), ("name", "String", None), ("prompt", "String", None)]),
        "Tag": Schema("Tag", [("description", "String", None), ("isEditable", "Bool", None), ("name", "String", None)]),
        "Message": Schema(
            "Message",
            [
                ("description", "String", None),
                ("fileData", file_data_type, None),
                ("fileName", "String", None),
                ("mimeType", "String", None),
                ("text", "String", None),
                ("timestamp", "Long", None),
                ("transcript", "String", None),
                ("type", type_type, None),
            ],
            [("tags", "Tag"), ("thread", "Thread")],
        ),
        "ModeOutput": Schema(
            "ModeOutput",
            [("content", "String", None), ("createdAt", "Long", None)],
            [("mode", "Mode"), ("thread", "Thread")],
        ),
    }
    return s


# The app's real schema history (itsparth/spec_genie; docs/isar-format.md, "The app's schema history").
# The first build (d1bdd8c, 2025-09-15) stored these properties, in the generator's (name) order:
FIRST_BUILD: dict[str, list[tuple[str, str]]] = {
    "Message": [("content", "String"), ("filePath", "String"), ("isAttachment", "Bool"), ("timestamp", "Long"),
                ("type", "String")],
    "Configuration": [("apiKey", "String"), ("baseUrl", "String"), ("effectiveBaseUrl", "String"),
                      ("hasValidApiKey", "Bool"), ("isCustomEndpoint", "Bool"), ("isValid", "Bool"),
                      ("modelName", "String"), ("transcribeAudioFirst", "Bool")],
    "Mode": [("isDefault", "Bool"), ("isEditable", "Bool"), ("name", "String"), ("prompt", "String")],
    "Thread": [("createdAt", "Long"), ("hasCustomName", "Bool"), ("messageCount", "Long"), ("name", "String")],
}  # fmt: skip


def upgraded_schemas() -> dict[str, Schema]:
    """The schemas Isar 3 stores after the last Isar build (a808d69) opened a file of the first build
    (`merge_properties`): the first build's properties where they were, a removed one with `"name": null`
    (its bytes stay in old objects), then the last build's new properties appended in its (name) order.
    Tag and ModeOutput are new collections."""
    last = app_schemas()
    out: dict[str, Schema] = {}
    for name, schema in last.items():
        first = FIRST_BUILD.get(name)
        if first is None:
            out[name] = schema
            continue
        kept = {(n, t) for n, t, _ in schema.properties}
        props: list[tuple[str | None, str, str | None]] = []
        former: dict[int, str] = {}
        for position, (prop, type_) in enumerate(first):
            if (prop, type_) in kept:
                props.append((prop, type_, None))
            else:
                props.append((None, type_, None))
                former[position] = prop
        props += [p for p in schema.properties if (p[0], p[1]) not in set(first)]
        out[name] = Schema(name, props, schema.links, former=former)
    return out


def write_upgraded_file(
    path: str | os.PathLike[str],
    data: Mapping[str, Sequence[Mapping[str, Any]]],
    old: Mapping[str, Sequence[Mapping[str, Any]]],
) -> Path:
    """A file of the first build upgraded by the last: `data` (contract-shaped rows, as `write_app_file`)
    written by the last build, and `old[Collection]` objects written by the first build before the upgrade
    (keys: "id" and the first build's property names; they lack every property appended since)."""
    schemas = upgraded_schemas()
    write_app_file(path, data, schemas=schemas)
    with IsarWriter(path) as w:
        w.schemas = schemas
        for collection, objects in old.items():
            for obj in objects:
                w.put(collection, obj["id"], obj, upto=len(FIRST_BUILD[collection]))
    return Path(path)


TYPES = ("text", "audio", "image")
CONTRACT_TO_ISAR = {
    "configuration": "Configuration",
    "threads": "Thread",
    "modes": "Mode",
    "tags": "Tag",
    "messages": "Message",
    "mode_outputs": "ModeOutput",
}


def write_app_file(
    path: str | os.PathLike[str],
    data: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    type_type: str = "String",
    file_data_type: str = "LongList",
    page_size: int = 4096,
    schemas: dict[str, Schema] | None = None,
    upto: Mapping[tuple[str, int], int] | None = None,
    extra: Iterable[tuple[str, int, dict[str, Any]]] = (),
) -> Path:
    """Write contract-shaped rows (keys as in the export contract) as the app's Isar 3 file.

    `data` maps contract collection names to rows (fileData as bytes or a list
    of ints). `type_type` "String" | "Byte" | "Int"; `file_data_type`
    "LongList" | "ByteList". `schemas` overrides the app schemas (e.g. with a
    removed or an appended property); `upto[(Collection, id)]` writes that
    object with only the first n properties (an object older than the rest).
    """
    schemas = schemas or app_schemas(type_type=type_type, file_data_type=file_data_type)
    upto = upto or {}
    with IsarWriter(path, page_size=page_size) as w:
        for schema in schemas.values():
            w.collection(schema)
        for cname, isar_name in CONTRACT_TO_ISAR.items():
            for row in data.get(cname, ()):
                values = {k: v for k, v in row.items() if k not in ("id", "threadId", "modeId")}
                if isar_name == "Message" and "type" in values and type_type != "String":
                    values["type"] = TYPES.index(values["type"]) if isinstance(values["type"], str) else values["type"]
                w.put(isar_name, row["id"], values, upto=upto.get((isar_name, row["id"])))
                if row.get("threadId") is not None:
                    w.link(isar_name, "thread", row["id"], row["threadId"])
                if row.get("modeId") is not None:
                    w.link(isar_name, "mode", row["id"], row["modeId"])
        for mt in data.get("message_tags", ()):
            w.link("Message", "tags", mt["messageId"], mt["tagId"])
        for collection, id_, values in extra:
            w.put(collection, id_, values)
    return Path(path)


def rows_from_export(export_dir: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """An export directory's rows as contract-shaped dicts for `write_app_file` (timestamps µs, bytes raw)."""
    from pychat_db import convert
    from pychat_db.exchange.contract import COLLECTIONS, Kind
    from pychat_db.exchange.reader import read_rows

    data: dict[str, list[dict[str, Any]]] = {}
    for c in COLLECTIONS:
        out = data.setdefault(c.name, [])
        for row in read_rows(export_dir, c):
            d: dict[str, Any] = {}
            for f, v in zip(c.fields, row, strict=True):
                if f.kind is Kind.TIMESTAMP:
                    v = convert.timestamp_text_to_micros(str(v))
                elif f.kind is Kind.BOOL:
                    v = bool(v)
                d[f.name] = v
            out.append(d)
    return data


def export_to_isar(
    export_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    type_type: str = "String",
    file_data_type: str = "ByteList",
    page_size: int = 4096,
) -> Path:
    """Stream an export directory into an app-shaped Isar 3 file (constant memory; for the benchmark)."""
    from pychat_db import convert
    from pychat_db.exchange.contract import COLLECTIONS, Kind
    from pychat_db.exchange.reader import read_rows

    schemas = app_schemas(type_type=type_type, file_data_type=file_data_type)
    with IsarWriter(path, page_size=page_size) as w:
        for schema in schemas.values():
            w.collection(schema)
        for c in COLLECTIONS:
            isar_name = CONTRACT_TO_ISAR.get(c.name)
            for row in read_rows(export_dir, c):
                d: dict[str, Any] = {}
                for f, v in zip(c.fields, row, strict=True):
                    if f.kind is Kind.TIMESTAMP:
                        v = convert.timestamp_text_to_micros(str(v))
                    elif f.kind is Kind.BOOL:
                        v = bool(v)
                    elif f.kind is Kind.ENUM and type_type != "String":
                        v = TYPES.index(v)
                    d[f.name] = v
                if isar_name is None:
                    w.link("Message", "tags", d["messageId"], d["tagId"])
                    continue
                w.put(isar_name, d["id"], d)
                if d.get("threadId") is not None:
                    w.link(isar_name, "thread", d["id"], d["threadId"])
                if d.get("modeId") is not None:
                    w.link(isar_name, "mode", d["id"], d["modeId"])
    return Path(path)
