"""Generic Isar 3 decoding: every type with its null markers, embedded objects, stored order, ids."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest

from pychat_db.isar import DataType, IsarFormatError
from pychat_db.isar.file import IsarFile
from pychat_db.isar.format import CollectionSchema, ObjectReader, decode
from pychat_db.isar.getters import long_list_to_bytes
from pychat_db.isar.keys import id_from_key, key_from_id
from pychat_db.isar.storage import MdbxStore
from tests.support.commands import run_module
from tests.support.isar_writer import IsarWriter, Schema, encode

ALL_TYPES = [
    ("aBool", "Bool"),
    ("aByte", "Byte"),
    ("anInt", "Int"),
    ("aFloat", "Float"),
    ("aLong", "Long"),
    ("aDouble", "Double"),
    ("aString", "String"),
    ("anObject", "Object"),
    ("boolList", "BoolList"),
    ("byteList", "ByteList"),
    ("intList", "IntList"),
    ("floatList", "FloatList"),
    ("longList", "LongList"),
    ("doubleList", "DoubleList"),
    ("stringList", "StringList"),
    ("objectList", "ObjectList"),
]
POINT = Schema("Point", [("label", "String", None), ("x", "Long", None)], embedded=True)
EVERYTHING = Schema("Everything", [(n, t, "Point" if t.startswith("Object") else None) for n, t in ALL_TYPES])
VALUES: dict[str, Any] = {
    "aBool": False,
    "aByte": 255,
    "anInt": -(2**31) + 1,
    "aFloat": 1.5,
    "aLong": 2**63 - 1,
    "aDouble": -0.25,
    "aString": "€ \u0000 😀",
    "anObject": {"label": "p", "x": -1},
    "boolList": [True, None, False],
    "byteList": b"\x00\x01\xff",
    "intList": [1, None, -(2**31) + 1],
    "floatList": [0.5, None],
    "longList": [-(2**63) + 1, None, 0],
    "doubleList": [None, 1e300],
    "stringList": ["", None, "x😀"],
    "objectList": [{"label": None, "x": 3}, None],
}
NULLS: dict[str, Any] = {n: None for n, _ in ALL_TYPES} | {"aByte": 0}  # Byte has no null marker


def schema_of(s: Schema) -> CollectionSchema:
    return CollectionSchema.from_json(s.name, s.to_json())


def read(values: dict[str, Any], upto: int | None = None) -> dict[str, Any]:
    raw = encode(EVERYTHING, values, {"Point": POINT}, upto)
    obj = ObjectReader(raw, collection="Everything", id=1, embedded_schemas={"Point": schema_of(POINT)})
    return decode(obj, schema_of(EVERYTHING))


def test_offsets_follow_stored_order_not_alphabetical() -> None:
    schema = schema_of(
        Schema("C", [("zeta", "Long", None), (None, "Int", None), ("alpha", "Bool", None), ("s", "String", None)])
    )
    assert [(p.name, p.offset) for p in schema.properties] == [("zeta", 2), (None, 10), ("alpha", 14), ("s", 15)]
    assert schema.static_size == 18
    assert list(schema.by_name) == ["zeta", "alpha", "s"]


def test_every_type_round_trips() -> None:
    assert read(VALUES) == VALUES


def test_every_type_null() -> None:
    assert read(NULLS) == NULLS


def test_fields_past_the_static_size_are_null() -> None:
    got = read(VALUES, upto=3)  # written when only aBool, aByte, anInt existed
    assert [got[n] for n in ("aBool", "aByte", "anInt")] == [False, 255, -(2**31) + 1]
    assert all(got[n] is None for n, _ in ALL_TYPES[3:])
    assert read(VALUES, upto=0) == {n: None for n, _ in ALL_TYPES}


def test_null_markers_are_isar_constants() -> None:
    raw = encode(EVERYTHING, NULLS, {"Point": POINT})
    schema = schema_of(EVERYTHING)
    p = schema.by_name
    assert raw[p["aBool"].offset] == 0
    assert struct.unpack_from("<i", raw, p["anInt"].offset)[0] == -(2**31)
    assert struct.unpack_from("<q", raw, p["aLong"].offset)[0] == -(2**63)
    assert math.isnan(struct.unpack_from("<f", raw, p["aFloat"].offset)[0])
    assert raw[p["aString"].offset : p["aString"].offset + 3] == b"\x00\x00\x00"


def test_boolean_byte_outside_0_1_2_is_corrupt() -> None:
    raw = bytearray(encode(EVERYTHING, VALUES, {"Point": POINT}))
    raw[2] = 7
    obj = ObjectReader(bytes(raw), collection="Everything", id=5, embedded_schemas={"Point": schema_of(POINT)})
    with pytest.raises(IsarFormatError, match=r"^Everything id 5: aBool: corrupt object: boolean byte 7"):
        decode(obj, schema_of(EVERYTHING))


def test_dynamic_offset_inside_the_static_part_is_corrupt() -> None:
    raw = bytearray(encode(EVERYTHING, VALUES, {"Point": POINT}))
    at = schema_of(EVERYTHING).by_name["aString"].offset
    raw[at : at + 3] = (3).to_bytes(3, "little")
    obj = ObjectReader(bytes(raw), collection="Everything", id=5)
    with pytest.raises(IsarFormatError, match="aString: corrupt object: data offset 3 outside"):
        obj.value(schema_of(EVERYTHING).by_name["aString"])


def test_ids_and_keys() -> None:
    for id_ in (-(2**63), -(2**63) + 1, -1, 0, 1, 2**53 + 1, 2**63 - 1):
        assert id_from_key(key_from_id(id_)) == id_
    assert key_from_id(-(2**63)) == bytes(8)
    assert key_from_id(2**63 - 1) == b"\xff" * 8
    keys = sorted(key_from_id(i) for i in (5, -5, 0, 2**62, -(2**62)))
    assert sorted(keys, key=lambda k: int.from_bytes(k, "little")) == [
        key_from_id(i) for i in (-(2**62), -5, 0, 5, 2**62)
    ]


def test_long_list_to_bytes() -> None:
    assert long_list_to_bytes(struct.pack("<3q", 0, 255, 7)) == b"\x00\xff\x07"
    assert long_list_to_bytes(b"") == b""
    assert long_list_to_bytes(struct.pack("<3q", 1, 256, 2)) == 1
    assert long_list_to_bytes(struct.pack("<2q", 1, -1)) == 1


def test_datetime_alias_reads_as_long() -> None:
    doc = b'{"name":"T","embedded":false,"properties":[{"name":"at","type":"DateTime"}],"version":2}'
    schema = CollectionSchema.from_json("T", doc)
    assert schema.properties[0].type is DataType.Long


def test_generic_file_with_every_type_and_inspect(tmp_path: Path) -> None:
    path = tmp_path / "everything.isar"
    with IsarWriter(path, page_size=16384) as w:
        w.collection(POINT)
        w.collection(Schema(EVERYTHING.name, EVERYTHING.properties, [("friends", "Everything")]))
        w.put("Everything", -3, VALUES)
        w.put("Everything", 4, NULLS)
        w.link("Everything", "friends", -3, 4)
        w.link("Everything", "friends", -3, -3)
    copy = tmp_path / "copy.isar"
    copy.write_bytes(path.read_bytes())
    with MdbxStore(copy) as store:
        isar = IsarFile(store)
        assert list(isar.embedded) == ["Point"]
        assert list(isar.objects("Everything")) == [(-3, VALUES), (4, NULLS)]
        link = isar.collections["Everything"].links[0]
        assert list(isar.links("Everything", link)) == [(-3, -3), (-3, 4)]
    result = run_module("tools.export_isar", path, "--inspect")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MDBX page size 16384" in out
    assert "collection Everything: 2 objects" in out
    assert "embedded object Point" in out
    assert "link     friends" in out and "2 entries" in out
    for name, type_ in ALL_TYPES:
        assert any(line.split()[1:3] == [name, type_] for line in out.splitlines() if "property" in line), name
