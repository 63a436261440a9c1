"""The export contract (`pychat_db.exchange.contract`) and the schema (`schema/*.sql`) cannot drift apart.

The contract repeats, for the readers and writers of the export format, what the schema says of each
table: its columns in order, which may be NULL, their storage types and the links between tables. This
test reads the schema back from SQLite at head and compares every one of those facts.
"""

from __future__ import annotations

import apsw
import pytest

from pychat_db.exchange.contract import COLLECTIONS, MESSAGE_TYPES, Collection, Kind
from pychat_db.generated.enums import MessageType

STORAGE = {
    Kind.ID: "INTEGER",
    Kind.LINK: "INTEGER",
    Kind.TEXT: "TEXT",
    Kind.TIMESTAMP: "TEXT",
    Kind.ENUM: "TEXT",
    Kind.BYTES: "BLOB",
    Kind.BOOL: "INTEGER",
}


def test_every_table_is_a_collection(memory_db: apsw.Connection) -> None:
    tables = {name for (name,) in memory_db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert tables - {"schema_migrations"} == {c.table for c in COLLECTIONS}


@pytest.mark.parametrize("collection", COLLECTIONS, ids=lambda c: c.name)
def test_columns_types_and_nullability_agree(memory_db: apsw.Connection, collection: Collection) -> None:
    columns = memory_db.execute(f"PRAGMA table_xinfo({collection.table})").fetchall()
    assert tuple(c[1] for c in columns) == collection.columns
    for (_, name, declared, notnull, _, pk, _), field in zip(columns, collection.fields, strict=True):
        assert declared == STORAGE[field.kind], name
        required = bool(notnull or pk)
        assert required is not field.nullable, f"{collection.name}.{name}: NOT NULL {required}, contract {field}"


@pytest.mark.parametrize("collection", COLLECTIONS, ids=lambda c: c.name)
def test_links_are_the_foreign_keys(memory_db: apsw.Connection, collection: Collection) -> None:
    keys = {(row[3], row[2], row[4]) for row in memory_db.execute(f"PRAGMA foreign_key_list({collection.table})")}
    assert keys == {(f.column, f.target, "id") for f in collection.links}
    key_columns = [row[1] for row in memory_db.execute(f"PRAGMA table_xinfo({collection.table})") if row[5]]
    assert tuple(key_columns) == tuple(collection.field(name).column for name in collection.key)


def test_message_types_are_the_schema_check(memory_db: apsw.Connection) -> None:
    assert tuple(t.value for t in MessageType) == MESSAGE_TYPES  # the enum codegen reads from the CHECK
