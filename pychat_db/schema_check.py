"""Refuse a database whose schema is not ours.

A database file can come from anywhere (a backup, a download, another app).
SQLite runs the triggers, views and CHECK expressions stored in the file, so a
crafted file could make our own writes do something else (a trigger copying
the API key into another table, a view shadowing a table's meaning). Before the
library uses a file, `check_schema` compares its `sqlite_schema` with what the
migration files create at the file's `user_version`: every table, index,
trigger and view, by type, name and SQL text (whitespace aside). Anything
added, missing or altered is refused with `SchemaMismatch` naming it.

The expected schema of each version is built by applying the migration files
up to that version to an in-memory database, once per version and process.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import cast

import apsw

from pychat_db.connection import connect
from pychat_db.errors import MigrationError, SchemaMismatch
from pychat_db.migrations import Migration, load_migrations, migrate, status, user_version

# Objects SQLite creates by itself on demand (ANALYZE, PRAGMA optimize); they run no code.
_SQLITE_INTERNAL = frozenset({"sqlite_stat1", "sqlite_stat4"})
_SPACE = re.compile(r"\s+")

SchemaObjects = dict[tuple[str, str], tuple[str, str | None]]
"""(type, name) -> (table it belongs to, normalised SQL; None for automatic indexes)."""


def _normalise(sql: str | None) -> str | None:
    return None if sql is None else _SPACE.sub(" ", sql).strip()


def schema_objects(conn: apsw.Connection, schema: str = "main") -> SchemaObjects:
    """The tables, indexes, triggers and views of `schema` (SQLite's internal statistics aside)."""
    rows = conn.execute(f"SELECT type, name, tbl_name, sql FROM {schema}.sqlite_schema").fetchall()
    objects: SchemaObjects = {}
    for row in rows:
        kind, name, table, sql = cast(tuple[str, str, str, str | None], row)
        if name in _SQLITE_INTERNAL:
            continue
        objects[(kind, name)] = (table, _normalise(sql))
    return objects


@cache
def _expected(version: int, migrations: tuple[Migration, ...]) -> SchemaObjects:
    conn = apsw.Connection(":memory:")
    try:
        migrate(conn, migrations, target=version)
        return schema_objects(conn)
    finally:
        conn.close()


def expected_schema(version: int, migrations: tuple[Migration, ...] | None = None) -> SchemaObjects:
    """What the migration files create up to `version` (cached per version and file set)."""
    return _expected(version, migrations if migrations is not None else load_migrations())


def schema_differences(conn: apsw.Connection, migrations: tuple[Migration, ...] | None = None) -> list[str]:
    """How the database's schema departs from its version's, one phrase per object (empty: it is ours).

    A database newer than the migration files is not judged here (the migration
    runner refuses it with its own message).
    """
    if migrations is None:
        migrations = load_migrations()
    version = user_version(conn)
    head = migrations[-1].version if migrations else 0
    if version > head or version < 0:
        return []
    expected = expected_schema(version, migrations)
    actual = schema_objects(conn)
    problems: list[str] = []
    for key in sorted(actual.keys() - expected.keys()):
        problems.append(f"unexpected {key[0]} {key[1]}")
    for key in sorted(expected.keys() - actual.keys()):
        problems.append(f"missing {key[0]} {key[1]}")
    for key in sorted(actual.keys() & expected.keys()):
        if actual[key] != expected[key]:
            problems.append(f"{key[0]} {key[1]} differs from its definition in the migration files")
    return problems


def check_schema(conn: apsw.Connection, migrations: tuple[Migration, ...] | None = None) -> None:
    """Raise SchemaMismatch unless the database's schema is exactly its version's; reads only."""
    try:
        problems = schema_differences(conn, migrations)
    except apsw.Error as exc:
        raise SchemaMismatch(f"{_where(conn)}: cannot read its schema: {exc}") from exc
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise SchemaMismatch(
            f"{_where(conn)}: not a pychat_db database at schema version {user_version(conn)} "
            f"({shown}); refusing to use it"
        )


def _where(conn: apsw.Connection) -> str:
    return conn.filename or ":memory:"


def open_at_head(path: str | os.PathLike[str]) -> apsw.Connection:
    """A read-only connection to an existing database at this code's schema version, whose schema is ours.

    For the tools that read a database whole (export, verify). Raises
    FileNotFoundError, MigrationError (not at head: say how to migrate) or
    SchemaMismatch, each naming the file; writes nothing.
    """
    conn = connect(path, readonly=True)
    try:
        state = status(conn)
        if state.pending:
            raise MigrationError(
                f"{os.fspath(path)}: schema version {state.current}, this code's is {state.head}; "
                f"run python -m pychat_db.migrate --db {os.fspath(path)} up first"
            )
        check_schema(conn)
    except apsw.Error as exc:
        conn.close()
        raise MigrationError(f"{os.fspath(path)}: {exc}") from None
    except MigrationError as exc:
        conn.close()
        if str(exc).startswith(os.fspath(path)):
            raise
        raise MigrationError(f"{os.fspath(path)}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn
