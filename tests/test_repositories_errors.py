"""`pychat_db.errors.translate`: each kind of APSW failure becomes the library's own exception."""

from __future__ import annotations

import apsw
import pytest

from pychat_db.errors import ConstraintViolation, DatabaseError, translate

TS = "2024-01-01T00:00:00.000000Z"


def failure(conn: apsw.Connection, sql: str, params: tuple[object, ...] = ()) -> apsw.Error:
    with pytest.raises(apsw.Error) as info:
        conn.execute(sql, params)
    return info.value


@pytest.mark.parametrize(
    ("sql", "params", "kind", "table", "column", "message"),
    [
        (
            "INSERT INTO messages (thread_id, text, timestamp, type) VALUES (1, 'x', ?, 'video')",
            (TS,),
            "CHECK",
            "messages",
            "type",
            "messages.type: CHECK constraint failed",
        ),
        (
            "INSERT INTO threads (name, created_at) VALUES ('x', '2024-02-30T00:00:00.000000Z')",
            (),
            "CHECK",
            "threads",
            "created_at",
            "threads.created_at: CHECK constraint failed",
        ),
        (
            "INSERT INTO tags (name, is_editable) VALUES ('x', 2)",
            (),
            "CHECK",
            "tags",
            "is_editable",
            "tags.is_editable: CHECK constraint failed",
        ),
        (
            "INSERT INTO messages (thread_id, text, timestamp) VALUES (1, NULL, ?)",
            (TS,),
            "NOT NULL",
            "messages",
            "text",
            "messages.text: NOT NULL constraint failed",
        ),
        (
            "INSERT INTO threads (id, name, created_at) VALUES (1, 'dup', ?)",
            (TS,),
            "PRIMARY KEY",
            "threads",
            "id",
            "threads.id: PRIMARY KEY constraint failed",
        ),
        (
            "INSERT INTO messages (thread_id, text, timestamp) VALUES (999, 'x', ?)",
            (TS,),
            "FOREIGN KEY",
            "messages",
            None,
            "messages: FOREIGN KEY constraint failed",
        ),
        (
            "INSERT INTO configuration (id, api_key, model_name) VALUES (2, 'sk-secret', 'm')",
            (),
            "UNIQUE",
            "configuration",
            None,
            "configuration (index configuration_singleton): UNIQUE constraint failed",
        ),
        (
            "INSERT INTO messages (thread_id, text, timestamp) VALUES ('one', 'x', ?)",
            (TS,),
            "DATATYPE",
            "messages",
            "thread_id",
            "messages.thread_id: TEXT value where INTEGER is required (DATATYPE constraint failed)",
        ),
        (
            "INSERT INTO threads (id, name, created_at) VALUES ('x', 'n', ?)",
            (TS,),
            "DATATYPE",
            "threads",
            "id",
            "threads.id: datatype mismatch (an id must be an integer)",
        ),
    ],
)
def test_constraint_failures(
    memory_db: apsw.Connection,
    sql: str,
    params: tuple[object, ...],
    kind: str,
    table: str,
    column: str | None,
    message: str,
) -> None:
    memory_db.execute("INSERT INTO threads (id, name, created_at) VALUES (1, 't', ?)", (TS,))
    memory_db.execute("INSERT INTO configuration (id, api_key, model_name) VALUES (1, 'sk-secret', 'm')")
    error = translate(failure(memory_db, sql, params), table=table)
    assert isinstance(error, ConstraintViolation)
    assert (error.kind, error.table, error.column) == (kind, table, column)
    assert str(error) == message
    assert "sk-secret" not in str(error)
    assert error.code is not None


def test_sqlite_names_the_table_even_when_the_caller_does_not(memory_db: apsw.Connection) -> None:
    error = translate(failure(memory_db, "INSERT INTO threads (name, created_at) VALUES (NULL, ?)", (TS,)))
    assert isinstance(error, ConstraintViolation)
    assert (error.table, error.column, str(error)) == ("threads", "name", "threads.name: NOT NULL constraint failed")


def test_other_failures_are_database_errors_with_their_code(memory_db: apsw.Connection) -> None:
    error = translate(failure(memory_db, "SELECT * FROM no_such_table"))
    assert isinstance(error, DatabaseError)
    assert error.name == "SQLITE_ERROR" and error.code == apsw.SQLITE_ERROR
    assert str(error) == "SQLITE_ERROR: no such table: no_such_table"
    busy = translate(apsw.BusyError("database is locked"))
    assert isinstance(busy, DatabaseError) and str(busy).endswith("database is locked")
