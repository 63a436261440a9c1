"""The head schema: tables, foreign keys and cascades, CHECKs, STRICT types, 64-bit ids."""

from __future__ import annotations

import re
from collections.abc import Iterator

import apsw
import pytest

from pychat_db.connection import connect
from pychat_db.migrations import migrate

TABLES = {"configuration", "threads", "modes", "messages", "mode_outputs", "tags", "message_tags"}
T0 = "2024-02-29T23:59:59.999999Z"
OUTPUT = "INSERT INTO mode_outputs (thread_id, mode_id, created_at, content)"


@pytest.fixture
def db() -> Iterator[apsw.Connection]:
    """A head-schema database holding one thread, message, mode, output, tag and link (all id 1)."""
    conn = connect(":memory:")
    migrate(conn)
    with conn:
        conn.execute(f"""
            INSERT INTO threads (id, name, created_at) VALUES (1, 't', '{T0}');
            INSERT INTO messages (id, thread_id, text, timestamp) VALUES (1, 1, 'hello', '{T0}');
            INSERT INTO modes (id, name, prompt) VALUES (1, 'm', 'p');
            INSERT INTO mode_outputs (id, thread_id, mode_id, created_at, content) VALUES (1, 1, 1, '{T0}', 'out');
            INSERT INTO tags (id, name) VALUES (1, 'tag');
            INSERT INTO message_tags (message_id, tag_id) VALUES (1, 1);
        """)
    yield conn
    conn.close()


def count(conn: apsw.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_every_table_is_created_strict(memory_db: apsw.Connection) -> None:
    rows = memory_db.execute("SELECT name, strict FROM pragma_table_list WHERE schema = 'main'").fetchall()
    tables = {name: strict for name, strict in rows if not name.startswith("sqlite_")}
    assert set(tables) == TABLES | {"schema_migrations"}
    assert all(tables[name] == 1 for name in TABLES)


def test_indexes_for_the_listing_queries(memory_db: apsw.Connection) -> None:
    indexes = {
        (table, name): [c for (c,) in memory_db.execute(f"SELECT name FROM pragma_index_info('{name}')")]
        for table, name in memory_db.execute(
            "SELECT tbl_name, name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    assert indexes[("messages", "messages_thread_id_timestamp")] == ["thread_id", "timestamp"]
    assert indexes[("mode_outputs", "mode_outputs_thread_id_created_at")] == ["thread_id", "created_at"]
    assert indexes[("mode_outputs", "mode_outputs_mode_id_created_at")] == ["mode_id", "created_at"]
    assert indexes[("message_tags", "message_tags_tag_id")] == ["tag_id"]
    assert indexes[("threads", "threads_created_at")] == ["created_at"]


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (f"INSERT INTO messages (thread_id, text, timestamp) VALUES (99, 'x', '{T0}')", "FOREIGN KEY"),
        (f"{OUTPUT} VALUES (1, 9, '{T0}', '')", "FOREIGN KEY"),
        (f"{OUTPUT} VALUES (9, 1, '{T0}', '')", "FOREIGN KEY"),
        ("INSERT INTO message_tags (message_id, tag_id) VALUES (1, 99)", "FOREIGN KEY"),
        ("INSERT INTO message_tags (message_id, tag_id) VALUES (99, 1)", "FOREIGN KEY"),
        ("UPDATE messages SET thread_id = 99 WHERE id = 1", "FOREIGN KEY"),
        ("INSERT INTO message_tags (message_id, tag_id) VALUES (1, 1)", "UNIQUE"),
    ],
)  # fmt: skip
def test_foreign_keys_and_link_key_are_enforced(db: apsw.Connection, sql: str, constraint: str) -> None:
    with pytest.raises(apsw.ConstraintError, match=f"{constraint} constraint failed"):
        db.execute(sql)


def test_deleting_a_thread_cascades_to_its_messages_outputs_and_links_only(db: apsw.Connection) -> None:
    with db:
        db.execute(f"INSERT INTO threads (id, name, created_at) VALUES (2, 'other', '{T0}')")
        db.execute(f"INSERT INTO messages (id, thread_id, text, timestamp) VALUES (2, 2, 'kept', '{T0}')")
        db.execute("INSERT INTO message_tags (message_id, tag_id) VALUES (2, 1)")
        db.execute("DELETE FROM threads WHERE id = 1")
    assert db.execute("SELECT id FROM messages").fetchall() == [(2,)]
    assert count(db, "mode_outputs") == 0
    assert db.execute("SELECT message_id, tag_id FROM message_tags").fetchall() == [(2, 1)]
    assert (count(db, "tags"), count(db, "modes"), count(db, "threads")) == (1, 1, 1)


def test_deleting_a_mode_a_tag_or_a_message_cascades(db: apsw.Connection) -> None:
    with db:
        db.execute("DELETE FROM modes WHERE id = 1")
    assert count(db, "mode_outputs") == 0
    with db:
        db.execute("DELETE FROM tags WHERE id = 1")
    assert count(db, "message_tags") == 0
    with db:
        db.execute("INSERT INTO tags (id, name) VALUES (2, 'again')")
        db.execute("INSERT INTO message_tags (message_id, tag_id) VALUES (1, 2)")
        db.execute("DELETE FROM messages WHERE id = 1")
    assert count(db, "message_tags") == 0
    assert count(db, "tags") == 1


GOOD_TIMES = ["0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z", "2024-02-29T12:00:00.000001Z"]
BAD_TIMES = [
    "2024-01-01 00:00:00.000000Z",  # space, not T
    "2024-01-01T00:00:00Z",  # no microseconds
    "2024-01-01T00:00:00.000Z",  # milliseconds
    "2024-01-01T00:00:00.000000",  # no Z
    "2024-01-01T00:00:00.000000+00:00",  # offset instead of Z
    "24-01-01T00:00:00.000000Z",  # short year
    "2023-02-29T00:00:00.000000Z",  # not a leap year
    "2024-04-31T00:00:00.000000Z",  # April has 30 days
    "2024-13-01T00:00:00.000000Z",  # month 13
    "2024-00-10T00:00:00.000000Z",  # month 0
    "2024-01-01T24:00:00.000000Z",  # hour 24
    "2024-01-01T23:60:00.000000Z",  # minute 60
    "2024-01-01T23:59:60.000000Z",  # leap second
    "",
]
TIMESTAMP_COLUMNS = {
    "threads.created_at": "INSERT INTO threads (name, created_at) VALUES ('t', ?)",
    "messages.timestamp": "INSERT INTO messages (thread_id, text, timestamp) VALUES (1, 'x', ?)",
    "mode_outputs.created_at": f"{OUTPUT} VALUES (1, 1, ?, 'c')",
}


@pytest.mark.parametrize("column", sorted(TIMESTAMP_COLUMNS))
@pytest.mark.parametrize("value", BAD_TIMES)
def test_timestamp_check_rejects_bad_shapes_and_impossible_dates(db: apsw.Connection, column: str, value: str) -> None:
    with pytest.raises(apsw.ConstraintError, match=f"CHECK constraint failed: {re.escape(column)}$"):
        db.execute(TIMESTAMP_COLUMNS[column], (value,))


@pytest.mark.parametrize("column", sorted(TIMESTAMP_COLUMNS))
@pytest.mark.parametrize("value", GOOD_TIMES)
def test_timestamp_check_accepts_canonical_times(db: apsw.Connection, column: str, value: str) -> None:
    db.execute(TIMESTAMP_COLUMNS[column], (value,))


@pytest.mark.parametrize("value", ["video", "TEXT", "Text", "", "text "])
def test_message_type_check_rejects_values_outside_the_enum(db: apsw.Connection, value: str) -> None:
    with pytest.raises(apsw.ConstraintError, match=r"CHECK constraint failed: messages\.type"):
        db.execute("INSERT INTO messages (thread_id, text, timestamp, type) VALUES (1, 'x', ?, ?)", (T0, value))


@pytest.mark.parametrize("value", ["text", "audio", "image"])
def test_message_type_accepts_the_enum(db: apsw.Connection, value: str) -> None:
    db.execute("INSERT INTO messages (thread_id, text, timestamp, type) VALUES (1, 'x', ?, ?)", (T0, value))


@pytest.mark.parametrize("table", ["modes", "tags"])
@pytest.mark.parametrize("value", [2, -1])
def test_boolean_checks_reject_other_integers(db: apsw.Connection, table: str, value: int) -> None:
    extra = ", prompt" if table == "modes" else ""
    with pytest.raises(apsw.ConstraintError, match=rf"CHECK constraint failed: {table}\.is_editable"):
        db.execute(f"INSERT INTO {table} (name{extra}, is_editable) VALUES ('n'{', 1' if extra else ''}, ?)", (value,))


MESSAGE = "INSERT INTO messages (thread_id, text, timestamp, file_data) VALUES (?, ?, ?, ?)"


@pytest.mark.parametrize(
    ("params", "stored_as"),
    [
        (("one", "x", T0, None), "INTEGER"),  # text in an INTEGER column
        ((1.5, "x", T0, None), "INTEGER"),  # a real that is not an integer
        ((1, b"bytes", T0, None), "TEXT"),  # a blob in a TEXT column
        ((1, "x", T0, "text"), "BLOB"),  # text in a BLOB column
        ((1, "x", T0, 7), "BLOB"),
    ],
)
def test_strict_columns_reject_values_of_the_wrong_type(
    db: apsw.Connection, params: tuple[object, ...], stored_as: str
) -> None:
    with pytest.raises(apsw.ConstraintError, match=f"cannot store .* value in {stored_as} column"):
        db.execute(MESSAGE, params)


def test_strict_rowid_rejects_a_non_integer(db: apsw.Connection) -> None:
    with pytest.raises(apsw.MismatchError):
        db.execute("INSERT INTO threads (id, name, created_at) VALUES (1.5, 't', ?)", (T0,))


def test_strict_columns_keep_lossless_conversions_as_the_declared_type(db: apsw.Connection) -> None:
    """SQLite converts only what converts exactly: '12' and 12.0 become the integer 12."""
    db.execute("INSERT INTO threads (id, name, created_at) VALUES ('12', 't', ?)", (T0,))
    db.execute("INSERT INTO modes (id, name, prompt, is_editable) VALUES (12, 'm', 'p', 1.0)")
    assert db.execute("SELECT typeof(id) FROM threads WHERE id = 12").fetchone() == ("integer",)
    assert db.execute("SELECT typeof(is_editable) FROM modes WHERE id = 12").fetchone() == ("integer",)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO threads (name, created_at) VALUES (NULL, '" + T0 + "')",
        "INSERT INTO messages (thread_id, text, timestamp) VALUES (1, NULL, '" + T0 + "')",
        "INSERT INTO modes (name, prompt) VALUES ('m', NULL)",
        "INSERT INTO configuration (api_key, model_name) VALUES (NULL, 'm')",
    ],
)
def test_not_null_columns(db: apsw.Connection, sql: str) -> None:
    with pytest.raises(apsw.ConstraintError, match="NOT NULL constraint failed"):
        db.execute(sql)


def test_defaults(db: apsw.Connection) -> None:
    db.execute(f"INSERT INTO messages (id, thread_id, text, timestamp) VALUES (5, 1, 'x', '{T0}')")
    row = db.execute("SELECT type, description, file_data, mime_type FROM messages WHERE id = 5").fetchone()
    assert row == ("text", "", None, None)
    db.execute("INSERT INTO modes (id, name, prompt) VALUES (5, 'm', 'p')")
    db.execute("INSERT INTO tags (id, name) VALUES (5, 't')")
    assert db.execute("SELECT is_editable FROM modes WHERE id = 5").fetchone() == (1,)
    assert db.execute("SELECT is_editable, description FROM tags WHERE id = 5").fetchone() == (1, "")


def test_empty_blob_is_kept_apart_from_null(db: apsw.Connection) -> None:
    db.execute(f"INSERT INTO messages (id, thread_id, text, timestamp, file_data) VALUES (5, 1, 'x', '{T0}', x'')")
    assert db.execute("SELECT file_data, typeof(file_data) FROM messages WHERE id = 5").fetchone() == (b"", "blob")


@pytest.mark.parametrize("key", [-(2**63), -(2**63) + 1, -1, 0, 2**53 + 1, 2**63 - 1])
def test_64_bit_ids_including_negatives_are_kept(db: apsw.Connection, key: int) -> None:
    with db:
        db.execute("INSERT INTO threads (id, name, created_at) VALUES (?, 'big', ?)", (key, T0))
        db.execute("INSERT INTO messages (id, thread_id, text, timestamp) VALUES (?, ?, 'm', ?)", (key, key, T0))
        db.execute("INSERT INTO tags (id, name) VALUES (?, 'tag')", (key,))
        db.execute("INSERT INTO modes (id, name, prompt) VALUES (?, 'mode', 'p')", (key,))
        db.execute(
            "INSERT INTO mode_outputs (id, thread_id, mode_id, created_at, content) VALUES (?, ?, ?, ?, 'c')",
            (key, key, key, T0),
        )
        db.execute("INSERT INTO message_tags (message_id, tag_id) VALUES (?, ?)", (key, key))
    for table in ("threads", "messages", "tags", "modes", "mode_outputs"):
        assert db.execute(f"SELECT id FROM {table} WHERE id = ?", (key,)).fetchone() == (key,), table
    assert db.execute("SELECT message_id, tag_id FROM message_tags WHERE tag_id = ?", (key,)).fetchone() == (key, key)
    with db:
        db.execute("DELETE FROM threads WHERE id = ?", (key,))
    assert db.execute("SELECT count(*) FROM messages WHERE id = ?", (key,)).fetchone() == (0,)


def test_configuration_is_a_singleton_whatever_its_id(db: apsw.Connection) -> None:
    db.execute("INSERT INTO configuration (id, api_key, model_name) VALUES (-7, 'k', 'm')")
    with pytest.raises(apsw.ConstraintError, match="UNIQUE constraint failed"):
        db.execute("INSERT INTO configuration (id, api_key, model_name) VALUES (8, 'k2', 'm2')")


def test_tag_and_mode_names_may_repeat(db: apsw.Connection) -> None:
    db.execute("INSERT INTO tags (name) VALUES ('tag'), ('tag')")
    db.execute("INSERT INTO modes (name, prompt) VALUES ('m', 'a'), ('m', 'b')")
    assert (count(db, "tags"), count(db, "modes")) == (3, 3)
