"""Hostile `.isar` input: the importer fuzzed on damaged objects inside a valid Isar 3 file.

A valid app file is written (`tests.support.isar_writer`), then one Message
object is replaced by a damaged copy of a real one: flipped bytes, a dynamic
field's offset or its element count pointing outside the object, a wrong
static size, a truncation. The MDBX structure itself stays valid: object
contents are what the reader decodes by hand. Every input must end in exit 0
(and `tools.verify` then agrees with the database) or exit 1 with an
`Error: ...` line, no database and no temporary file; never a traceback.
The default run tries 100 cases; `PYCHAT_FUZZ_EXAMPLES` raises it (`make fuzz`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.faulty_vfs import import_leftovers
from tests.support.isar_writer import STATIC, IsarWriter, app_schemas, encode, write_app_file
from tests.test_fuzz_import import tool_main
from tests.test_isar_roundtrip import sample

EXAMPLES = max(20, int(os.environ.get("PYCHAT_FUZZ_EXAMPLES", "300")) // 3)
MESSAGE = app_schemas()["Message"]
TALLY: dict[str, int] = {}


def dynamic_slots() -> list[int]:
    """Offsets in a Message object of the u24 slots that point at dynamic data (strings, lists)."""
    slots, offset = [], 2
    for _, kind, _ in MESSAGE.properties:
        if kind not in STATIC:
            slots.append(offset)
        offset += STATIC.get(kind, 3)
    return slots


@st.composite
def damaged(draw: st.DrawFn, raw: bytes) -> tuple[str, bytes]:
    data = bytearray(raw)
    kind = draw(st.sampled_from(["flip", "offset outside", "count outside", "static size", "truncate"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "offset outside":
        slot = draw(st.sampled_from(dynamic_slots()))
        value = draw(st.one_of(st.integers(len(data) - 3, len(data) + 10), st.integers(0, (1 << 24) - 1)))
        data[slot : slot + 3] = value.to_bytes(3, "little")
    elif kind == "count outside":
        slot = draw(st.sampled_from(dynamic_slots()))
        at = int.from_bytes(data[slot : slot + 3], "little")
        if 0 < at <= len(data) - 3:
            data[at : at + 3] = draw(st.integers(0, (1 << 24) - 1)).to_bytes(3, "little")
    elif kind == "static size":
        data[0:2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "little")
    else:
        del data[draw(st.integers(0, len(data) - 1)) :]
    return kind, bytes(data)


@pytest.fixture(scope="module")
def app_data() -> dict[str, list[dict[str, Any]]]:
    """The Isar round-trip test's edge-case data, without its deliberate orphans (they need --orphans adopt)."""
    data = sample(b"\x00\x01binary\xff")
    threads = {t["id"] for t in data["threads"]}
    data["messages"] = [m for m in data["messages"] if m.get("threadId") in threads]
    data["mode_outputs"] = [o for o in data["mode_outputs"] if o.get("threadId") in threads]
    kept = {m["id"] for m in data["messages"]}
    data["message_tags"] = [mt for mt in data["message_tags"] if mt["messageId"] in kept]
    return data


def check_one(data: dict[str, list[dict[str, Any]]], message_id: int, raw: bytes, label: str) -> str:
    with tempfile.TemporaryDirectory(prefix="pychat-fuzz-isar-") as tmp:
        base = Path(tmp)
        isar = write_app_file(base / "default.isar", data)
        with IsarWriter(isar) as writer:
            writer.schemas = app_schemas()
            writer.put_raw("Message", message_id, raw)
        target = base / "chat.db"
        code, stderr = tool_main("import", [str(isar), "--db", str(target), "--quiet"])
        assert "Traceback" not in stderr, f"{label}: {stderr}"
        assert import_leftovers(base) == [], f"{label}: temporary files left"
        if code == 0:
            vcode, vstderr = tool_main("verify", [str(isar), "--db", str(target), "--quiet"])
            assert vcode == 0, f"{label}: imported, but verify says: {vstderr}"
            return "imported and verified"
        assert code == 1, f"{label}: exit {code}: {stderr}"
        assert any(line.startswith("Error: ") for line in stderr.splitlines()), f"{label}: {stderr!r}"
        assert not target.exists(), f"{label}: refused but a database was written"
        return "refused"


def test_fuzz_isar_objects(app_data: dict[str, list[dict[str, Any]]]) -> None:
    messages = app_data["messages"]
    encoded = [(m["id"], encode(MESSAGE, m, {})) for m in messages]
    assert check_one(app_data, encoded[0][0], encoded[0][1], "undamaged") == "imported and verified"

    @settings(max_examples=EXAMPLES, deadline=30_000, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data(), which=st.integers(0, len(encoded) - 1))
    def one_case(data: st.DataObject, which: int) -> None:
        message_id, raw = encoded[which]
        kind, bad = data.draw(damaged(raw))
        outcome = check_one(app_data, message_id, bad, f"{kind} in Message id {message_id}")
        TALLY[outcome] = TALLY.get(outcome, 0) + 1

    one_case()
    print(f"isar fuzz: {sum(TALLY.values())} cases: {TALLY}")
    assert TALLY.get("refused", 0) > 0
