"""Stage 3: render the introspected schema and the analysed queries through the Jinja templates.

Every function here returns `{path relative to the repository: file text}`; nothing is
written (that is `__main__`'s job), so `--check` can compare in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from codegen.errors import CodegenError
from codegen.pytypes import PyType
from codegen.queries import EXECUTE, EXECUTE_MANY, INSERT_RETURNING, SELECT, SELECT_ONE, SELECT_VALUE, Query, QueryFile
from codegen.schema import TIMESTAMP, Check, Schema, Table, snapshot

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
GENERATED = "pychat_db/generated"

# Columns whose value is a secret: kept out of the dataclass repr (and so out of logs and errors).
SECRET_COLUMN = re.compile(r"(api_key|secret|password|token)", re.IGNORECASE)

_CONVERTERS = (
    "bool_from_db",
    "bool_to_db",
    "enum_from_db",
    "enum_to_db",
    "timestamp_from_db",
    "timestamp_to_db",
)
# The checked reads of a single value (`PyType.checked_from_db`).
_CHECKED = ("bytes_from_db", "float_from_db", "int_from_db", "str_from_db")


@dataclass(frozen=True, slots=True)
class Source:
    """An input file of codegen, by its repository-relative path and the SHA-256 of its bytes."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: Path, root: Path) -> Source:
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = path.name
        return cls(rel, hashlib.sha256(path.read_bytes()).hexdigest())


def template_source(name: str) -> Source:
    path = TEMPLATES_DIR / name
    return Source(f"codegen/templates/{name}", hashlib.sha256(path.read_bytes()).hexdigest())


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, sources: Iterable[Source], **context: Any) -> str:
    """Render `template` with the header listing `sources` (plus the template and the header)."""
    all_sources = sorted({*sources, template_source(template), template_source("header.py.j2")}, key=lambda s: s.path)
    if not template.endswith(".py.j2"):
        all_sources = [s for s in all_sources if s.path != "codegen/templates/header.py.j2"]
    return environment().get_template(template).render(sources=all_sources, **context)


def python_imports(body: str, candidates: dict[str, list[str]]) -> str:
    """The import block for the names of `candidates` ({module: [names]}) that `body` uses, isort-ordered.

    A candidate spelled `import X` is a straight `import X` (used when `body` says `X.`).
    """
    third_party = {"aiosql", "apsw"}
    groups: list[list[str]] = [[], [], []]
    for module in sorted(candidates):
        group = 0 if module.partition(".")[0] in sys.stdlib_module_names else 1 if module in third_party else 2
        if f"import {module}" in candidates[module]:
            if re.search(rf"(?<![\w.]){re.escape(module)}\.", body):
                groups[group].append(f"import {module}")
            continue
        names = sorted(n for n in candidates[module] if re.search(rf"(?<![\w.]){re.escape(n)}\b", body))
        if not names:
            continue
        line = f"from {module} import {', '.join(names)}"
        if len(line) > 120:
            line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
        groups[group].append(line)
    blocks = []
    for lines in groups:
        plain = sorted(line for line in lines if line.startswith("import "))
        froms = sorted((line for line in lines if line.startswith("from ")), key=lambda s: s.split()[1])
        if plain or froms:
            blocks.append("\n".join(plain + froms))
    return "\n\n".join(blocks)


def enum_member(value: str) -> str:
    name = re.sub(r"\W", "_", value).upper() or "EMPTY"
    return "V_" + name if name[0].isdigit() else name


def schema_sources(root: Path, migration_paths: Iterable[Path]) -> list[Source]:
    return [Source.of(p, root) for p in migration_paths]


def _field(table: Table, column_name: str, annotation: str) -> str:
    if SECRET_COLUMN.search(column_name):
        return f"{column_name}: {annotation} = field(repr=False)"
    return f"{column_name}: {annotation}"


def render_enums(schema: Schema, sources: list[Source]) -> str:
    members = {
        c.enum_name: [(enum_member(v), json.dumps(v, ensure_ascii=False)) for v in c.enum_values] for c in schema.enums
    }
    return render("enums.py.j2", sources, enums=schema.enums, members=members)


def render_rows(schema: Schema, sources: list[Source]) -> str:
    fields = {t.name: [_field(t, c.name, PyType.of_column(c).annotation) for c in t.columns] for t in schema.tables}
    body = "\n".join(line for lines in fields.values() for line in lines)
    imports = python_imports(
        body + "\ndataclass",
        {
            "dataclasses": ["dataclass", "field"],
            "datetime": ["datetime"],
            "pychat_db.generated.enums": [c.enum_name for c in schema.enums if c.enum_name],
        },
    )
    return render("rows.py.j2", sources, tables=schema.tables, fields=fields, imports=imports)


def mapper_prefix(table: Table) -> str:
    return table.singular


def render_mappers(schema: Schema, sources: list[Source]) -> str:
    mappers = []
    for table in schema.tables:
        types = [(c.name, PyType.of_column(c)) for c in table.columns]
        mappers.append(
            {
                "table": table,
                "prefix": mapper_prefix(table),
                "tuple_alias": "".join(p.capitalize() for p in table.singular.split("_")) + "Values",
                "db_annotations": [t.db_annotation for _, t in types],
                "from_db": [(name, t.from_db(f"values[{i}]")) for i, (name, t) in enumerate(types)],
                "to_db": [t.to_db(f"row.{name}") for name, t in types],
                "params": [(name, t.to_db(f"row.{name}")) for name, t in types],
            }
        )
    body = environment().get_template("mappers.py.j2").render(sources=[], mappers=mappers, imports="")
    imports = python_imports(
        body,
        {
            "collections.abc": ["Sequence"],
            "typing": ["Any", "Final", "TypeAlias"],
            "pychat_db.convert": list(_CONVERTERS),
            "pychat_db.generated.enums": [c.enum_name for c in schema.enums if c.enum_name],
            "pychat_db.generated.rows": [t.class_name for t in schema.tables],
        },
    )
    return render("mappers.py.j2", sources, mappers=mappers, imports=imports)


def render_package_init(docstring: str, sources: list[Source]) -> str:
    return render("package_init.py.j2", sources, docstring=docstring)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _check_md(check: Check) -> str:
    if check.kind == TIMESTAMP:
        return f"`CHECK` `{check.name}`: canonical UTC time `YYYY-MM-DDTHH:MM:SS.ffffffZ`, a real date"
    return f"`CHECK ({_md(check.expression)})`"


_COMMENTED_OBJECT = re.compile(r"((?:^--[^\n]*\n)+)CREATE (?:UNIQUE )?(?:TABLE|INDEX) (\w+)", re.MULTILINE)


def object_comments(migration_texts: Iterable[str]) -> dict[str, str]:
    """The comment right above each CREATE TABLE / CREATE INDEX of the migrations (the latest wins)."""
    comments: dict[str, str] = {}
    for text in migration_texts:
        for match in _COMMENTED_OBJECT.finditer(text):
            lines = [line.removeprefix("--").strip() for line in match.group(1).splitlines()]
            comments[match.group(2)] = " ".join(line for line in lines if line)
    return comments


def render_schema_md(schema: Schema, sources: list[Source], comments: dict[str, str] | None = None) -> str:
    relations = []
    for table in schema.tables:
        for fk in table.foreign_keys:
            nullable = any(c.nullable for c in table.columns if c.name in fk.columns)
            left = "|o" if nullable else "||"
            label = ", ".join(fk.columns) + (f" ON DELETE {fk.on_delete}" if fk.on_delete != "NO ACTION" else "")
            relations.append(f'{fk.ref_table} {left}--o{{ {table.name} : "{label}"')
    keys: dict[str, dict[str, str]] = {}
    column_rows: dict[str, list[list[str]]] = {}
    index_columns: dict[str, str] = {}
    for table in schema.tables:
        fk_columns = {c for fk in table.foreign_keys for c in fk.columns}
        keys[table.name] = {}
        column_rows[table.name] = []
        for column in table.columns:
            marks = [m for m, on in (("PK", column.name in table.primary_key), ("FK", column.name in fk_columns)) if on]
            keys[table.name][column.name] = (" " + ", ".join(marks)) if marks else ""
            constraints = [_check_md(k) for k in table.checks if k.column == column.name]
            constraints += [
                f"→ `{fk.ref_table}.{', '.join(fk.ref_columns)}` ON DELETE {fk.on_delete}"
                for fk in table.foreign_keys
                if column.name in fk.columns
            ]
            column_rows[table.name].append(
                [
                    f"`{column.name}`",
                    column.decl_type,
                    "yes" if column.nullable else "no",
                    f"`{_md(column.default)}`" if column.default is not None else "",
                    f"`{_md(PyType.of_column(column).annotation)}`",
                    "<br>".join(constraints),
                ]
            )
        for index in table.indexes:
            names = [(ic.name or "(expression)") + (" DESC" if ic.desc else "") for ic in index.columns]
            index_columns[index.name] = ", ".join(names)
    return render(
        "schema.md.j2",
        sources,
        comments=comments or {},
        schema=schema,
        relations=relations,
        keys=keys,
        column_rows=column_rows,
        index_columns=index_columns,
    )


def render_snapshot(schema: Schema, sources: list[Source]) -> str:
    document = {
        "_generated": {
            "by": "python -m codegen",
            "note": "do not edit: change the SQL in schema/ (append a migration), then rerun python -m codegen",
            "sources": {s.path: s.sha256 for s in sources},
        },
        **snapshot(schema),
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _docstring(text: str, indent: str = "    ") -> str:
    """`text` as a docstring (wrapped to the line length), or a generic one when empty."""
    lines = []
    for line in (text.strip() or "Run the query.").splitlines():
        wrapped = textwrap.wrap(line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"'), width=112) or [""]
        lines.extend(wrapped)
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""'
    body = "\n".join(f"{indent}{line}" if line else "" for line in lines[1:])
    gap = "\n\n" if lines[1] else "\n"
    return f'{indent}"""{lines[0]}{gap}{body}\n{indent}"""'


def _query_context(q: Query, schema: Schema) -> dict[str, Any]:
    """What the template needs of one query: its description (parameters → SQLite values), how
    `pychat_db.querying` binds it (`decorator`), its decoder, and its variants (`name_iter`, `name_async`)."""
    mapper = f"{mapper_prefix(q.row_table)}_from_db" if q.row_table else f"_{q.name}_from_db"
    single = q.columns[0].type.with_nullable(True) if len(q.columns) == 1 else None
    many = q.operation == EXECUTE_MANY
    ctx: dict[str, Any] = {
        "name": q.name,
        "signature": [f"{p.name}: {p.type.annotation}" for p in q.params],
        "binds": [(p.name, p.type.to_db(f"row.{p.name}" if many else p.name)) for p in q.params],
        "params_class": q.params_class_name if many else None,
        "result_class": None,
        "kind": "none",
        "value_expr": "",
        "variants": [],
        "docstring": _docstring(q.doc),
    }
    needs_row = q.operation in (SELECT, SELECT_ONE) or (q.operation == INSERT_RETURNING and single is None)
    if needs_row and q.row_table is None:
        if q.class_name in {t.class_name for t in schema.tables}:
            raise CodegenError(
                f"{q.file}:{q.line}: query {q.name}: its row class {q.class_name} is a table's; rename it"
            )
        ctx["result_class"] = q.class_name
        ctx["result_fields"] = [f"{c.name}: {c.type.annotation}" for c in q.columns]
        ctx["result_from_db"] = [(c.name, c.type.from_db(f"values[{i}]")) for i, c in enumerate(q.columns)]
    if q.operation == SELECT:
        ctx.update(kind="list", decorator=f"_QUERIES.select({mapper})")
        if q.readonly:  # streaming (export); a select that writes runs to its end
            ctx["variants"].append((f"{q.name}_iter", "iter"))
    elif needs_row:
        ctx.update(kind="row", decorator=f"_QUERIES.select_one({mapper})")
    elif q.operation in (SELECT_VALUE, INSERT_RETURNING):
        assert single is not None
        ctx.update(
            kind="value",
            decorator=f"_QUERIES.select_value(_{q.name}_from_db)",
            returns=single.annotation,
            value_expr=single.checked_from_db("value"),
        )
    elif q.operation == EXECUTE:
        ctx.update(kind="changes", decorator="_QUERIES.execute")
    elif many:
        ctx.update(kind="many", decorator="_QUERIES.execute_many")
    else:
        ctx.update(kind="script", decorator="_QUERIES.script")
    ctx["variants"].append((f"{q.name}_async", "aio"))  # the same on an APSW async connection, awaited
    return ctx


def render_queries_module(file: QueryFile, schema: Schema, sources: list[Source]) -> str:
    queries = [_query_context(q, schema) for q in file.queries]
    context = {"file": file, "queries": queries}
    body = environment().get_template("queries_module.py.j2").render(sources=[], imports="", **context)
    body = body.split('"""', 2)[2]  # imports are chosen from the code, not the module docstring
    imports = python_imports(
        body,
        {
            "collections.abc": ["Sequence"],
            "dataclasses": ["dataclass"],
            "datetime": ["datetime"],
            "json": ["import json"],
            "typing": ["Any"],
            "pychat_db.convert": [*_CONVERTERS, *_CHECKED],
            "pychat_db.generated.enums": [c.enum_name for c in schema.enums if c.enum_name],
            "pychat_db.generated.mappers": [f"{mapper_prefix(t)}_from_db" for t in schema.tables],
            "pychat_db.generated.rows": [t.class_name for t in schema.tables],
            "pychat_db.querying": ["Params", "QueryFile", "SQLiteValue"],
            "pychat_db.resources": ["QUERIES_DIR"],
        },
    )
    return render("queries_module.py.j2", sources, imports=imports, **context)
