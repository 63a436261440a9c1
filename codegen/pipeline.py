"""The whole run: schema → queries → protocols → rendered files, as `{relative path: text}` (nothing written)."""

from __future__ import annotations

from pathlib import Path

from codegen import protocols, render
from codegen.queries import load_queries
from codegen.schema import build, load_schemas
from pychat_db.migrations import load_migrations

# Everything codegen owns: files here that it would not write are stale (deleted by a run).
OWNED_DIRS = ("pychat_db/generated", "schema/snapshots")
OWNED_FILES = ("docs/schema.md",)


def generate(root: Path) -> dict[str, str]:
    """Every generated file for the repository at `root` (its `schema/`, `queries/` and repository protocols).

    Raises CodegenError naming the file (and query) when the input is refused.
    """
    schema_dir = root / "schema"
    schemas = load_schemas(schema_dir)
    migration_paths = [m.path for m in load_migrations(schema_dir)]
    head = schemas[-1]
    schema_sources = render.schema_sources(root, migration_paths)
    out: dict[str, str] = {}
    gen = render.GENERATED
    about = "Generated from schema/, queries/ and the repository protocols by `python -m codegen` (docs/codegen.md)."
    out[f"{gen}/__init__.py"] = render.render_package_init(about, [])
    out[f"{gen}/enums.py"] = render.render_enums(head, schema_sources)
    out[f"{gen}/rows.py"] = render.render_rows(head, schema_sources)
    out[f"{gen}/mappers.py"] = render.render_mappers(head, schema_sources)
    comments = render.object_comments(p.read_text(encoding="utf-8") for p in migration_paths)
    out["docs/schema.md"] = render.render_schema_md(head, schema_sources, comments)
    for schema in schemas:
        sources = schema_sources[: schema.version]
        out[f"schema/snapshots/{schema.version:04d}.json"] = render.render_snapshot(schema, sources)
    conn = build(load_migrations(schema_dir))
    try:
        query_files = load_queries(root, head, conn)
    finally:
        conn.close()
    out[f"{gen}/queries/__init__.py"] = render.render_package_init(
        "Typed wrappers for the named queries of queries/*.sql: one module per file (see docs/codegen.md).", []
    )
    for query_file in query_files:
        sources = [*schema_sources, render.Source.of(query_file.path, root)]
        out[f"{gen}/queries/{query_file.stem}.py"] = render.render_queries_module(query_file, head, sources)
    described = protocols.load(root)  # the repository protocols, when `root` has them
    if described is not None:
        out[f"{gen}/sqlite_repositories.py"] = protocols.render_sqlite_repositories(described)
        out[f"{gen}/async_protocols.py"] = protocols.render_async_protocols(described)
        out[f"{gen}/repository_attributes.py"] = protocols.render_repository_attributes(described)
    return dict(sorted(out.items()))


def existing(root: Path) -> dict[str, str]:
    """The files codegen owns as they are on disk now."""
    found: dict[str, str] = {}
    for directory in OWNED_DIRS:
        base = root / directory
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    found[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    for name in OWNED_FILES:
        path = root / name
        if path.is_file():
            found[name] = path.read_text(encoding="utf-8")
    return found
