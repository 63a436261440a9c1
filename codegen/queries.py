"""Stage 2: load `queries/*.sql` with aiosql's own loader and ask SQLite about every query.

For each named query SQLite reports (`apsw.ext.query_info`) its parameters, its result
columns with the table column each comes from, and its plan. From that this stage
decides the Python type of every parameter and result column (rules in
docs/codegen.md), and refuses a query SQLite cannot prepare, and one that reads a
whole large table (messages, mode_outputs, message_tags) unless its comment says why
(`full scan: ...`).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosql
import apsw
import apsw.ext

from codegen.errors import CodegenError
from codegen.pytypes import BUILTIN_KINDS, JSON_IDS, PyType
from codegen.schema import Schema, Table, camel

# Tables too large to read whole without saying why.
WATCHED_TABLES = ("messages", "mode_outputs", "message_tags")

# Operations, by aiosql's SQLOperationType name.
SELECT = "SELECT"
SELECT_ONE = "SELECT_ONE"
SELECT_VALUE = "SELECT_VALUE"
INSERT_RETURNING = "INSERT_RETURNING"
EXECUTE = "INSERT_UPDATE_DELETE"
EXECUTE_MANY = "INSERT_UPDATE_DELETE_MANY"
SCRIPT = "SCRIPT"

# Parameter name conventions (docs/codegen.md, "Parameter types").
COLUMN_PREFIXES = ("before_", "after_", "from_", "to_", "min_", "max_", "since_", "until_", "old_", "new_")
_INT_NAME = re.compile(r"^(limit|offset|\w+_limit|\w+_offset)$")
_IDS_NAME = re.compile(r"^\w*ids$")

_PARAM_NOTE = re.compile(r"^param\s+(\w+)\s*:\s*(.+?)\s*$")
_COLUMN_NOTE = re.compile(r"^column\s+(\w+)\s*:\s*(.+?)\s*$")
_FULL_SCAN = re.compile(r"^full scan:\s*(.*?)\s*$", re.IGNORECASE)
_PLAN_STEP = re.compile(r"^(SCAN|SEARCH) (\S+)")
_OUTER_JOIN = re.compile(r"\bLEFT\s+(?:OUTER\s+)?JOIN\s+\"?(\w+)\"?", re.IGNORECASE)
_RIGHT_JOIN = re.compile(r"\b(?:RIGHT|FULL)\s+(?:OUTER\s+)?JOIN\b", re.IGNORECASE)
_NOT_ALIAS = {
    "AS", "ON", "USING", "WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "NATURAL",
    "ORDER", "GROUP", "HAVING", "LIMIT", "WINDOW", "UNION", "EXCEPT", "INTERSECT", "SET", "VALUES",
    "DEFAULT", "INDEXED", "NOT", "RETURNING", "SELECT", "DO", "WITH", "OFFSET",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: PyType
    rule: str  # why it has this type


@dataclass(frozen=True, slots=True)
class ResultColumn:
    name: str
    type: PyType


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    file: str  # repository-relative path
    line: int
    operation: str
    doc: str
    params: tuple[Param, ...]
    columns: tuple[ResultColumn, ...]
    row_table: Table | None  # the result is exactly this table's row
    full_scan: str | None  # the reason given, when the query reads a whole large table
    plan: tuple[str, ...]
    readonly: bool

    @property
    def class_name(self) -> str:
        return camel(self.name) + "Row"

    @property
    def params_class_name(self) -> str:
        return camel(self.name) + "Params"


@dataclass(frozen=True, slots=True)
class QueryFile:
    path: Path
    rel: str
    stem: str
    queries: tuple[Query, ...]


def _plan_lines(node: Any, depth: int = 0) -> Iterator[tuple[int, str]]:
    for sub in node.sub or ():
        yield depth, sub.detail
        yield from _plan_lines(sub, depth + 1)


def _aliases(sql: str, schema: Schema) -> dict[str, str]:
    """`{name or alias used in the plan: table}`."""
    # Every table by its own name: foreign key actions (cascades) appear in the plan too.
    found = {table.name: table.name for table in schema.tables}
    for table in schema.tables:
        pattern = re.compile(rf"(?<![\w.]){re.escape(table.name)}\s+(?:AS\s+)?([A-Za-z_]\w*)", re.IGNORECASE)
        for match in pattern.finditer(sql):
            if match.group(1).upper() not in _NOT_ALIAS:
                found[match.group(1)] = table.name
    return found


def parse_type(text: str, schema: Schema) -> PyType:
    """An annotation: `int`, `str`, `bytes`, `float`, `bool`, `datetime`, or `table.column`, optionally `| None`."""
    spec = text.strip()
    nullable = False
    if re.search(r"\|\s*None$", spec):
        nullable = True
        spec = re.sub(r"\s*\|\s*None$", "", spec)
    if spec in BUILTIN_KINDS:
        base, kind = BUILTIN_KINDS[spec]
        return PyType(base, kind, nullable)
    if "." in spec:
        table_name, _, column_name = spec.partition(".")
        table = schema.table(table_name)
        column = table.column(column_name) if table else None
        if column is not None:
            return PyType.of_column(column).with_nullable(nullable)
    raise ValueError(f"unknown type {text!r}: use one of {', '.join(BUILTIN_KINDS)}, or table.column, and `| None`")


_NAME_LINE = re.compile(r"^\s*--\s*name\s*:\s*([\w-]+)")


def _line_of(text: str, name: str, default: int) -> int:
    """The line of `-- name: <name>` in `text` (aiosql's own line number counts from a comment-stripped text)."""
    for number, line in enumerate(text.splitlines(), start=1):
        m = _NAME_LINE.match(line)
        if m and m.group(1).replace("-", "_") == name:
            return number
    return default


class _Analyser:
    def __init__(self, conn: apsw.Connection, schema: Schema) -> None:
        self.conn = conn
        self.schema = schema

    def query(self, fn: Any, rel: str, line: int) -> Query:
        name: str = fn.__name__
        where = f"{rel}:{line}: query {name}"
        operation: str = fn.operation.name
        doc: str = fn.__doc__ or ""
        sql: str = fn.sql
        params_notes: dict[str, str] = {}
        column_notes: dict[str, str] = {}
        full_scan: str | None = None
        for doc_line in doc.splitlines():
            stripped = doc_line.strip()
            if m := _PARAM_NOTE.match(stripped):
                params_notes[m.group(1)] = m.group(2)
            elif m := _COLUMN_NOTE.match(stripped):
                column_notes[m.group(1)] = m.group(2)
            elif m := _FULL_SCAN.match(stripped):
                if not m.group(1):
                    raise CodegenError(f"{where}: `full scan:` must say why the whole table is read")
                full_scan = m.group(1)
        try:
            info = apsw.ext.query_info(self.conn, sql, explain_query_plan=True)
        except apsw.Error as exc:
            raise CodegenError(f"{where}: SQLite cannot prepare it: {exc}") from exc
        plans = [info.query_plan]
        remaining = info.query_remaining
        while remaining and remaining.strip(" \t\r\n;"):
            if operation != SCRIPT:
                raise CodegenError(f"{where}: holds more than one statement; only a `#` script may")
            try:
                more = apsw.ext.query_info(self.conn, remaining, explain_query_plan=True)
            except apsw.Error as exc:
                raise CodegenError(f"{where}: SQLite cannot prepare it: {exc}") from exc
            plans.append(more.query_plan)
            remaining = more.query_remaining
        plan = tuple("  " * depth + detail for p in plans if p is not None for depth, detail in _plan_lines(p))
        self._check_plan(where, sql, plan, full_scan)
        attributes: dict[str, dict[str, str]] = fn.attributes or {}
        for var, fields in attributes.items():
            field = next(iter(fields))
            raise CodegenError(
                f"{where}: parameter :{var}.{field} uses aiosql's attribute access, which the typed wrappers "
                f"do not support; pass each value as its own parameter (:{var}_{field})"
            )
        names = info.bindings_names
        if any(n is None for n in names):
            raise CodegenError(f"{where}: uses a positional parameter (?); name every parameter (:name)")
        params = tuple(self._param(where, sql, n, params_notes) for n in dict.fromkeys(n for n in names if n))
        unknown = sorted(set(params_notes) - {p.name for p in params})
        if unknown:
            raise CodegenError(f"{where}: `param {unknown[0]}:` annotates no parameter of the query")
        columns, row_table = self._columns(where, sql, info.description_full or (), column_notes)
        if operation == SELECT_VALUE and len(columns) != 1:
            raise CodegenError(f"{where}: a `$` query returns one column, this one returns {len(columns)}")
        if operation in (SELECT, SELECT_ONE, INSERT_RETURNING) and not columns:
            raise CodegenError(f"{where}: returns no columns; use `!` for a statement without a result")
        if operation == EXECUTE_MANY and columns:
            raise CodegenError(f"{where}: a `*!` query cannot return rows; drop RETURNING")
        readonly = bool(info.is_readonly) and operation != SCRIPT
        return Query(name, rel, line, operation, doc, params, columns, row_table, full_scan, plan, readonly)

    def _check_plan(self, where: str, sql: str, plan: tuple[str, ...], full_scan: str | None) -> None:
        aliases = _aliases(sql, self.schema)
        scans = []
        for step in plan:
            m = _PLAN_STEP.match(step.strip())
            if m and m.group(1) == "SCAN" and aliases.get(m.group(2)) in WATCHED_TABLES:
                scans.append(f"{aliases[m.group(2)]} ({step.strip()})")
        if scans and full_scan is None:
            raise CodegenError(
                f"{where}: reads every row of {', '.join(scans)}; "
                "make it use an index, or say why with a comment line `full scan: <reason>`"
            )

    def _tables(self, sql: str) -> list[Table]:
        return [t for t in self.schema.tables if re.search(rf"(?<![\w.]){re.escape(t.name)}\b", sql, re.IGNORECASE)]

    def _param(self, where: str, sql: str, name: str, notes: dict[str, str]) -> Param:
        if not name.isidentifier() or keyword.iskeyword(name) or name == "conn":
            raise CodegenError(f"{where}: parameter :{name} cannot be a Python argument name; rename it")
        if name in notes:
            try:
                return Param(name, parse_type(notes[name], self.schema), f"param {name}: {notes[name]}")
            except ValueError as exc:
                raise CodegenError(f"{where}: param {name}: {exc}") from exc
        tables = self._tables(sql)
        inserting = re.match(r"\s*(INSERT|REPLACE)\b", sql, re.IGNORECASE) is not None
        for column_name, rule in [(name, "column")] + [
            (name[len(p) :], f"{p}<column>") for p in COLUMN_PREFIXES if name.startswith(p)
        ]:
            matches = [(t, c) for t in tables if (c := t.column(column_name)) is not None]
            if not matches:
                continue
            types = set()
            for _table, column in matches:
                py_type = PyType.of_column(column)
                if inserting and rule == "column" and column.rowid_alias:
                    py_type = py_type.with_nullable(True)  # NULL: SQLite assigns the rowid
                types.add(py_type)
            if len(types) > 1:
                found = ", ".join(f"{t.name}.{c.name}" for t, c in matches)
                raise CodegenError(
                    f"{where}: parameter :{name} matches columns of different types ({found}); "
                    f"give its type with a comment line `param {name}: <table.column or type>`"
                )
            (py_type,) = types
            return Param(name, py_type, f"{rule} {matches[0][0].name}.{column_name}")
        if _INT_NAME.match(name):
            return Param(name, PyType("int", "plain", False), "limit/offset")
        if _IDS_NAME.match(name):
            return Param(name, PyType("Sequence[int]", JSON_IDS, False), "JSON array of ids")
        raise CodegenError(
            f"{where}: cannot tell the type of parameter :{name} (no column of {', '.join(t.name for t in tables)} "
            f"has that name); rename it after the column it is compared with, or add a comment line "
            f"`param {name}: <table.column or type>`"
        )

    def _columns(
        self, where: str, sql: str, description: Any, notes: dict[str, str]
    ) -> tuple[tuple[ResultColumn, ...], Table | None]:
        nullable_tables = {m.group(1) for m in _OUTER_JOIN.finditer(sql)}
        all_nullable = _RIGHT_JOIN.search(sql) is not None
        columns: list[ResultColumn] = []
        origins: list[tuple[str, str] | None] = []
        for name, _decl, _db, table_name, column_name in description:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise CodegenError(f"{where}: result column {name!r} is not a Python name; give it one with AS")
            if any(c.name == name for c in columns):
                raise CodegenError(f"{where}: two result columns are named {name}; tell them apart with AS")
            if name in notes:
                try:
                    columns.append(ResultColumn(name, parse_type(notes[name], self.schema)))
                except ValueError as exc:
                    raise CodegenError(f"{where}: column {name}: {exc}") from exc
                origins.append(None)
                continue
            table = self.schema.table(table_name) if table_name else None
            column = table.column(column_name) if table and column_name else None
            if column is None:
                raise CodegenError(
                    f"{where}: result column {name} is computed, not read from a table column; "
                    f"give its type with a comment line `column {name}: <table.column or type>`"
                )
            py_type = PyType.of_column(column)
            if all_nullable or table_name in nullable_tables:
                py_type = py_type.with_nullable(True)
                origins.append(None)
            else:
                origins.append((table_name, column_name))
            columns.append(ResultColumn(name, py_type))
        unknown = sorted(set(notes) - {c.name for c in columns})
        if unknown:
            raise CodegenError(f"{where}: `column {unknown[0]}:` annotates no result column of the query")
        row_table = None
        for table in self.schema.tables:
            if origins == [(table.name, c.name) for c in table.columns] and [c.name for c in columns] == [
                c.name for c in table.columns
            ]:
                row_table = table
        return tuple(columns), row_table


def load_queries(root: Path, schema: Schema, conn: apsw.Connection) -> list[QueryFile]:
    """Every `queries/*.sql` file of `root`, its queries analysed against `conn` (a head-schema database)."""
    queries_dir = root / "queries"
    paths = sorted(queries_dir.glob("*.sql")) if queries_dir.is_dir() else []
    if not paths:
        return []
    for sub in sorted(p for p in queries_dir.iterdir() if p.is_dir()):
        if any(sub.rglob("*.sql")):
            raise CodegenError(f"{sub.relative_to(root).as_posix()}: query subfolders are not supported")
    defined: dict[str, str] = {}
    for path in paths:
        for number, text_line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if (found := _NAME_LINE.match(text_line)) is not None:
                query_name = found.group(1).replace("-", "_")
                here = f"{path.relative_to(root).as_posix()}:{number}"
                if query_name in defined:
                    raise CodegenError(
                        f"{here}: query {query_name} is also defined at {defined[query_name]}; names must be unique"
                    )
                defined[query_name] = here
    try:
        loaded = aiosql.from_path(queries_dir, "apsw")
    except Exception as exc:
        message = str(exc).replace(f"{queries_dir}/", f"{queries_dir.name}/")
        raise CodegenError(f"{queries_dir.name}/: aiosql cannot load it: {message}") from exc
    by_file: dict[Path, list[Any]] = {p.resolve(): [] for p in paths}
    for name in loaded.available_queries:
        fn = getattr(loaded, name)
        if fn.parameters is None and fn.operation.name == SELECT and name.endswith("_cursor"):
            base = getattr(loaded, name[: -len("_cursor")], None)
            if base is not None and base.sql == fn.sql:
                continue  # aiosql's cursor variant of a select
        by_file[Path(fn.__code__.co_filename).resolve()].append(fn)
    analyser = _Analyser(conn, schema)
    files: list[QueryFile] = []
    errors: list[str] = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if not path.stem.isidentifier() or keyword.iskeyword(path.stem):
            raise CodegenError(f"{rel}: the file name must be a Python module name (letters, digits, _)")
        text = path.read_text(encoding="utf-8")
        analysed: list[Query] = []
        for fn in by_file[path.resolve()]:
            line = _line_of(text, fn.__name__, fn.__code__.co_firstlineno)
            try:
                analysed.append(analyser.query(fn, rel, line))
            except CodegenError as exc:
                errors.append(str(exc))
        analysed.sort(key=lambda q: q.line)
        files.append(QueryFile(path, rel, path.stem, tuple(analysed)))
    if errors:
        raise CodegenError("\n".join(errors))
    return files
