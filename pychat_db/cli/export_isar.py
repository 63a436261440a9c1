"""`pychat-db export-isar FILE.isar (--inspect | --out DIR)` (also `python -m tools.export_isar`): read
the app's Isar 3 file.

--inspect  prints what the file holds (collections, property types in stored
           order, object and link counts, page size, schema version) for any
           Isar 3 file, the app's or not, and its schema history: how many
           objects predate which properties, how many hold a value of a removed
           property. Reads the schema, the maps' statistics and each object's
           header (and removed fields).
--out DIR  writes the canonical export of the app's data (manifest included),
           byte-identical to what `python -m tools.export` writes after an
           import of the same data (give both the same `--exported-at`).

The file is never opened itself: it is copied into a private temporary
directory and the copy is read (see `pychat_db.isar.storage`). Data the app
mapping cannot carry over (an unknown collection or property with values, a
required field that is null, an enum outside its list, a link to a missing
object, a corrupt object) is refused: one `Error:` line naming collection, id
and field, exit 1, no output directory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from pychat_db.cli import exporting, ui
from pychat_db.exchange.contract import Collection
from pychat_db.exchange.reader import ExportError as ReadError
from pychat_db.exchange.reader import MappingSource, Problem
from pychat_db.exchange.writer import ExportWriteError, FileSummary, Row, staged_directory
from pychat_db.isar import history
from pychat_db.isar.app import OpenedFile, open_isar
from pychat_db.isar.format import IsarFormatError
from pychat_db.isar.history import Nulls, ReadNotes, default_lines, notes_json, removed_lines
from pychat_db.isar.source import open_source
from pychat_db.isar.storage import StorageError

PROG = "pychat-db export-isar"


def inspect_lines(opened: OpenedFile, name: str) -> Iterator[str]:
    """The --inspect report, line by line."""
    isar = opened.isar
    versions = ", ".join(str(v) for v in sorted(isar.schema_versions)) or "-"
    yield f"file: {name} ({opened.file_size} bytes), MDBX page size {opened.page_size}, schema version {versions}"
    if opened.recovered:
        yield "state: needed recovery (left mid-write); a repaired private copy was read"
    try:  # every object's static size and removed fields
        found: dict[str, history.CollectionHistory] = history.scan(isar)
    except (IsarFormatError, StorageError) as exc:
        found = {}
        yield f"objects: unreadable: {exc}"
    for schema in sorted(isar.schemas.values(), key=lambda s: (s.embedded, s.name)):
        if schema.embedded:
            yield f"embedded object {schema.name}: static size {schema.static_size}"
        else:
            yield f"collection {schema.name}: {isar.count(schema.name)} objects, static size {schema.static_size}"
        for p in schema.properties:
            label = p.name if p.name is not None else "(removed)"
            target = f" -> {p.target}" if p.target else ""
            yield f"  property {label:<24} {p.type.value + target:<20} offset {p.offset}"
        for link in schema.links:
            yield f"  link     {link.name:<24} -> {link.target:<17} {isar.link_count(schema.name, link)} entries"
        for index in schema.indexes:
            yield f"  index    {index}"
        if schema.name in found:
            for line in history.history_lines(schema, found[schema.name]):
                yield f"  {line}"
    known = set(isar.collections)
    others = sorted(
        m for m in isar.map_info if m != "_info" and m not in known and not m.startswith(("_l_", "_b_", "_i_"))
    )
    for m in others:
        yield f"map {m}: {isar.map_info[m].entries} entries (no schema in _info)"
    try:
        _ = opened.app
    except IsarFormatError as exc:
        yield f"app mapping: refused: {exc}"
    else:
        yield "app mapping: schema accepted (every object is checked by --out, tools.import and tools.verify)"


def source_rows(source: MappingSource, collection: Collection) -> Iterator[Row]:
    """Validated stored-form rows of `collection`; the first refused one raises the reader's ExportError."""
    for item in source.items(collection):
        if item.error is not None:
            raise ReadError(Problem.of(collection.name, item))
        assert item.row is not None
        yield item.row


def export_isar(
    path: Path,
    out: Path,
    *,
    exported_at: str,
    force: bool = False,
    quiet: bool = False,
    isar_reader: str = "auto",
    nulls: Nulls = Nulls.APP,
    keep_removed: Path | None = None,
    met: dict[str, ReadNotes] | None = None,
) -> list[FileSummary]:
    """Write the canonical export of the Isar file `path` into the new directory `out`; return what was written.

    `nulls`: how a null in a required field is read; `keep_removed`: where the values of removed properties
    are written (after the export, only when it succeeded); `met` is filled with what the read met.
    """
    notes = None if quiet else sys.stderr
    with (
        open_source(path, ui.shown(path), reader=isar_reader, checked=True, notes=notes, nulls=nulls) as source,
        staged_directory(out, force=force) as stage,
    ):
        summaries = exporting.write_export(stage, lambda c: source_rows(source, c), exported_at, quiet=quiet)
        if keep_removed is not None:
            assert source.opened is not None
            history.write_removed(source.opened.isar, keep_removed)
        if met is not None:
            met.update(source.notes)
    return summaries


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = ui.new_parser(
        prog, "Inspect the app's Isar 3 file, or write it as the canonical export. The file is only read."
    )
    parser.add_argument("file", type=Path, metavar="FILE.isar", help="the Isar 3 file (default.isar)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--inspect", action="store_true", help="print collections, types, counts; write nothing")
    action.add_argument("--out", type=Path, metavar="DIR", help="export directory to create (absent or empty)")
    exporting.add_export_output(parser)
    ui.add_report(parser)
    ui.add_isar_reader(parser, "writes")
    ui.add_nulls(parser)
    ui.add_keep_removed(parser)
    ui.add_quiet(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    name = ui.shown(args.file)
    if args.keep_removed is not None and not args.keep_removed.parent.is_dir():  # known before the export
        return ui.error(f"{ui.shown(args.keep_removed)}: no such directory")
    run = exporting.ExportRun(args.out, args.exported_at or exporting.now_exported_at())
    met: dict[str, ReadNotes] = {}
    try:
        if args.inspect:
            with open_isar(args.file) as opened:
                for line in inspect_lines(opened, name):
                    print(line)
            return ui.EXIT_OK
        run.summaries = export_isar(
            args.file,
            args.out,
            exported_at=run.exported_at,
            force=args.force,
            quiet=args.quiet,
            isar_reader=args.isar_reader,
            nulls=Nulls(args.nulls),
            keep_removed=args.keep_removed,
            met=met,
        )
    except (IsarFormatError, StorageError) as exc:
        run.problem = f"{name}: {exc}"
    except (ReadError, ExportWriteError) as exc:
        run.problem = str(exc)
    except OSError as exc:
        run.problem = ui.describe_os_error(exc, args.file)
    except KeyboardInterrupt:
        return run.interrupted()
    kept = ui.shown(args.keep_removed) if args.keep_removed is not None else None
    return run.finish(
        "export-isar",
        args.report,
        details={"isar_reading": notes_json(met, Nulls(args.nulls), args.keep_removed)},
        source=args.file,
        origin=f" from {name}",
        lines=[*default_lines(met), *removed_lines(met, kept)],
    )
