"""Stage 1: build the schema in memory and introspect it.

The migrations in `schema/` are applied (with the project's own runner) to an
in-memory APSW database; the tables are then read back through SQLite's PRAGMAs
(`table_list`, `table_xinfo`, `foreign_key_list`, `index_list`, `index_xinfo`)
and the CHECK constraints from the CREATE TABLE text. The result is the model the
renderers use, and the canonical snapshot (`schema/snapshots/NNNN.json`) that the
migration tests compare against.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import apsw

from codegen.errors import CodegenError
from codegen.sqltext import check_clauses
from pychat_db.connection import connect
from pychat_db.migrations import BOOKKEEPING_TABLE, Migration, load_migrations, migrate

# The shape every timestamp column is checked for (schema/0001_initial.sql).
TIMESTAMP_GLOB = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z"
)

_ENUM = re.compile(r"^\"?(\w+)\"? IN \(('(?:[^']|'')*'(?:, '(?:[^']|'')*')*)\)$", re.IGNORECASE)
_ENUM_VALUE = re.compile(r"'((?:[^']|'')*)'")
_BOOL = re.compile(r"^\"?(\w+)\"? IN \((0, 1|1, 0)\)$", re.IGNORECASE)

# Kinds of column, by what their CHECK says (or their declared type when they have none).
PLAIN, BOOL, ENUM, TIMESTAMP = "plain", "bool", "enum", "timestamp"
_BASE_TYPES = {"INTEGER": "int", "INT": "int", "TEXT": "str", "BLOB": "bytes", "REAL": "float"}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    column: str | None
    expression: str
    kind: str  # PLAIN (no effect on the Python type), BOOL, ENUM or TIMESTAMP
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Column:
    table: str
    name: str
    cid: int
    decl_type: str
    notnull: bool
    default: str | None
    pk: int
    hidden: int
    kind: str
    enum_name: str | None
    enum_values: tuple[str, ...]
    rowid_alias: bool  # the table's single INTEGER PRIMARY KEY: SQLite assigns it when NULL is inserted

    @property
    def base_type(self) -> str:
        """The Python type of a non-NULL value, as source text."""
        if self.kind == BOOL:
            return "bool"
        if self.kind == TIMESTAMP:
            return "datetime"
        if self.kind == ENUM:
            assert self.enum_name is not None
            return self.enum_name
        return _BASE_TYPES[self.decl_type.upper()]

    @property
    def nullable(self) -> bool:
        # An INTEGER PRIMARY KEY (the rowid) is never NULL even without NOT NULL.
        return not self.notnull and not self.rowid_alias


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_update: str
    on_delete: str
    match: str


@dataclass(frozen=True, slots=True)
class IndexColumn:
    name: str | None  # None for an expression
    desc: bool
    collation: str


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    unique: bool
    origin: str  # c: CREATE INDEX, u: UNIQUE constraint, pk: PRIMARY KEY
    partial: bool
    columns: tuple[IndexColumn, ...]
    sql: str | None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    strict: bool
    without_rowid: bool
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    checks: tuple[Check, ...]
    foreign_keys: tuple[ForeignKey, ...]
    indexes: tuple[Index, ...]

    @property
    def singular(self) -> str:
        """`messages` → `message`, `mode_outputs` → `mode_output`: the name of one row."""
        return self.name[:-1] if self.name.endswith("s") and not self.name.endswith("ss") else self.name

    @property
    def class_name(self) -> str:
        return camel(self.singular) + "Row"

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True, slots=True)
class Schema:
    version: int
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    @property
    def enums(self) -> tuple[Column, ...]:
        return tuple(c for t in self.tables for c in t.columns if c.kind == ENUM)


def camel(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)


def _rows(conn: apsw.Connection, sql: str, *bindings: object) -> list[tuple[Any, ...]]:
    return cast(list[tuple[Any, ...]], conn.execute(sql, bindings).fetchall())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _classify(table: str, clause_name: str | None, column: str | None, expression: str) -> Check:
    if clause_name is None:
        raise CodegenError(
            f'table {table}: CHECK ({expression}) has no name; name every CHECK CONSTRAINT "{table}.<column>"'
        )
    if not clause_name.startswith(table + "."):
        raise CodegenError(f'table {table}: CHECK named "{clause_name}"; name it "{table}.<column>"')
    target = clause_name[len(table) + 1 :]
    if column is not None and target != column:
        raise CodegenError(
            f'table {table}: the CHECK on column {column} is named "{clause_name}"; name it "{table}.{column}"'
        )
    subject = column or target
    if (m := _ENUM.match(expression)) and m.group(1) == subject:
        values = tuple(v.replace("''", "'") for v in _ENUM_VALUE.findall(m.group(2)))
        return Check(clause_name, subject, expression, ENUM, values)
    if (m := _BOOL.match(expression)) and m.group(1) == subject:
        return Check(clause_name, subject, expression, BOOL)
    if expression.startswith(f"{subject} GLOB '{TIMESTAMP_GLOB}'"):
        return Check(clause_name, subject, expression, TIMESTAMP)
    return Check(clause_name, subject, expression, PLAIN)


def _enum_name(table: str, column: str) -> str:
    singular = table[:-1] if table.endswith("s") else table
    return camel(singular) + camel(column)


def introspect(conn: apsw.Connection) -> Schema:
    """The schema of `conn`'s main database (without the runner's `schema_migrations`)."""
    version = cast(int, _rows(conn, "PRAGMA user_version")[0][0])
    listed = _rows(conn, "PRAGMA main.table_list")
    tables: list[Table] = []
    for _schema, name, kind, _ncol, without_rowid, strict in sorted(listed, key=lambda r: r[1]):
        if kind != "table" or name.startswith("sqlite_") or name == BOOKKEEPING_TABLE:
            continue
        create_sql = cast(
            str, _rows(conn, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", name)[0][0]
        )
        checks = tuple(_classify(name, c.name, c.column, c.expression) for c in check_clauses(create_sql))
        typing_checks: dict[str, Check] = {}
        for check in checks:
            if check.kind != PLAIN and check.column is not None:
                if check.column in typing_checks:
                    raise CodegenError(f"table {name}: column {check.column} has two CHECKs that decide its type")
                typing_checks[check.column] = check
        xinfo = _rows(conn, f"PRAGMA table_xinfo({_quote(name)})")
        pk_columns = [row for row in xinfo if row[5]]
        columns: list[Column] = []
        for cid, col_name, decl_type, notnull, default, pk, hidden in xinfo:
            if not col_name.isidentifier() or keyword.iskeyword(col_name):
                raise CodegenError(f"table {name}: column {col_name!r} is not a Python name; rename it")
            typing_check = typing_checks.get(col_name)
            kind = typing_check.kind if typing_check else PLAIN
            wanted = {BOOL: "INTEGER", ENUM: "TEXT", TIMESTAMP: "TEXT"}.get(kind)
            if wanted is not None and decl_type.upper() != wanted:
                raise CodegenError(f"table {name}: column {col_name} is {decl_type} but its CHECK makes it a {kind}")
            if kind == PLAIN and decl_type.upper() not in _BASE_TYPES:
                raise CodegenError(
                    f"table {name}: column {col_name} has type {decl_type!r}; use INTEGER, TEXT, BLOB or REAL"
                )
            columns.append(
                Column(
                    table=name,
                    name=col_name,
                    cid=cid,
                    decl_type=decl_type,
                    notnull=bool(notnull),
                    default=default,
                    pk=pk,
                    hidden=hidden,
                    kind=kind,
                    enum_name=_enum_name(name, col_name) if kind == ENUM else None,
                    enum_values=typing_check.values if typing_check and kind == ENUM else (),
                    rowid_alias=bool(
                        pk and len(pk_columns) == 1 and not without_rowid and decl_type.upper() == "INTEGER"
                    ),
                )
            )
        primary_key = tuple(c.name for c in sorted((c for c in columns if c.pk), key=lambda c: c.pk))
        fks: dict[int, list[tuple[Any, ...]]] = {}
        for row in _rows(conn, f"PRAGMA foreign_key_list({_quote(name)})"):
            fks.setdefault(row[0], []).append(row)
        foreign_keys = tuple(
            sorted(
                (
                    ForeignKey(
                        columns=tuple(r[3] for r in sorted(rows, key=lambda r: r[1])),
                        ref_table=rows[0][2],
                        ref_columns=tuple(r[4] for r in sorted(rows, key=lambda r: r[1])),
                        on_update=rows[0][5],
                        on_delete=rows[0][6],
                        match=rows[0][7],
                    )
                    for rows in fks.values()
                ),
                key=lambda fk: (fk.columns, fk.ref_table),
            )
        )
        indexes: list[Index] = []
        for _seq, index_name, unique, origin, partial in _rows(conn, f"PRAGMA index_list({_quote(name)})"):
            index_columns = tuple(
                IndexColumn(col, bool(desc), coll)
                for _seqno, _cid, col, desc, coll, key in _rows(conn, f"PRAGMA index_xinfo({_quote(index_name)})")
                if key
            )
            sql_row = _rows(conn, "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?", index_name)
            index_sql = cast(str | None, sql_row[0][0]) if sql_row else None
            indexes.append(Index(index_name, bool(unique), origin, bool(partial), index_columns, index_sql))
        tables.append(
            Table(
                name=name,
                strict=bool(strict),
                without_rowid=bool(without_rowid),
                columns=tuple(columns),
                primary_key=primary_key,
                checks=checks,
                foreign_keys=foreign_keys,
                indexes=tuple(sorted(indexes, key=lambda i: i.name)),
            )
        )
    return Schema(version, tuple(tables))


def build(migrations: Sequence[Migration], target: int | None = None) -> apsw.Connection:
    """A fresh in-memory database with `migrations` applied (up to `target`)."""
    conn = connect(":memory:")  # configured like the app's connections (pragmas, no double-quoted strings)
    migrate(conn, migrations, target=target)
    return conn


def load_schemas(schema_dir: Path) -> list[Schema]:
    """The schema at every version 1..head of the migrations in `schema_dir`."""
    try:
        migrations = load_migrations(schema_dir)
    except Exception as exc:
        raise CodegenError(str(exc)) from exc
    if not migrations:
        raise CodegenError(f"{schema_dir}: no NNNN_name.sql migrations")
    schemas: list[Schema] = []
    conn = connect(":memory:")  # configured like the app's connections (pragmas, no double-quoted strings)
    for migration in migrations:
        try:
            migrate(conn, migrations, target=migration.version)
            schemas.append(introspect(conn))
        except Exception as exc:
            raise CodegenError(f"{schema_dir.name}/{migration.path.name}: {exc}") from exc
    conn.close()
    return schemas


def snapshot(schema: Schema) -> dict[str, Any]:
    """The canonical, JSON-ready description of `schema` (what `schema/snapshots/NNNN.json` holds)."""
    return {
        "version": schema.version,
        "tables": {
            table.name: {
                "strict": table.strict,
                "without_rowid": table.without_rowid,
                "columns": [
                    {
                        "name": c.name,
                        "type": c.decl_type,
                        "not_null": c.notnull,
                        "default": c.default,
                        "primary_key": c.pk,
                        "hidden": c.hidden,
                    }
                    for c in table.columns
                ],
                "primary_key": list(table.primary_key),
                "checks": [{"name": k.name, "column": k.column, "expression": k.expression} for k in table.checks],
                "foreign_keys": [
                    {
                        "columns": list(fk.columns),
                        "references": fk.ref_table,
                        "ref_columns": list(fk.ref_columns),
                        "on_update": fk.on_update,
                        "on_delete": fk.on_delete,
                        "match": fk.match,
                    }
                    for fk in table.foreign_keys
                ],
                "indexes": [
                    {
                        "name": i.name,
                        "unique": i.unique,
                        "origin": i.origin,
                        "partial": i.partial,
                        "columns": [{"name": ic.name, "desc": ic.desc, "collation": ic.collation} for ic in i.columns],
                        "sql": i.sql,
                    }
                    for i in table.indexes
                ],
            }
            for table in schema.tables
        },
    }


def diff_snapshots(expected: Any, actual: Any, path: str = "schema") -> list[str]:
    """Where two snapshots differ, as `path: expected X, got Y` lines (Drift's verifier style)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines: list[str] = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                lines.append(f"{path}.{key}: expected {expected[key]!r}, got nothing")
            elif key not in expected:
                lines.append(f"{path}.{key}: expected nothing, got {actual[key]!r}")
            else:
                lines.extend(diff_snapshots(expected[key], actual[key], f"{path}.{key}"))
        return lines
    sequences = (list, tuple)
    if isinstance(expected, sequences) and isinstance(actual, sequences) and len(expected) == len(actual):
        return [
            line
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for line in diff_snapshots(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]
