"""The public names of reading sources of contract rows, from the modules that hold them.

The loader (and verify) read exports through the `Source` interface, so any
origin of contract rows plugs in the same way:

    source = ExportDirectory("migration_exports", naive=NaiveTimezone.REJECT)
    for collection in COLLECTIONS:
        for item in source.items(collection):
            if item.error:          # a FieldError: item.location, item.error.field, item.error.reason
                ...
            else:
                item.row            # tuple of SQLite values in collection.fields order
    problems = source.final_checks()   # manifest counts and SHA-256, after every collection was read

* `ExportDirectory` streams each file with constant memory: NDJSON by chunks of
  about `CHUNK_BYTES` (one typed msgspec decode of the whole chunk when each line
  is one object, else line by line; `chunks()` hands the loader a chunk's rows
  without an Item per row), a `NAME.json` array element by
  element (a scanner finds each element's end; one element is held at a time, at
  most `MAX_ELEMENT_BYTES`). It accepts a BOM, CRLF, blank lines, and
  configuration.json as an object, `{}`, `null`, an empty file or no file.
* `MappingSource` wraps already decoded objects (dicts exactly like a decoded JSON
  line, e.g. the Isar reader's), validated by the same `RowCodec.convert`.
* A structural fault that stops reading (no file of the format at all, both `x.ndjson` and `x.json`, an array
  that is not one, an unreadable file, a bad manifest) raises `ExportError`.
* `read_rows(path, collection)` yields the rows of one collection, raising
  `ExportError` on the first bad one: what verify needs.

The rooms: `source` (rows, problems, the `Source` protocol), `directory` (export directories),
`scanner` (JSON arrays), `hashing` (bytes counted and hashed), `mapping` (decoded objects).
"""

from pychat_db.exchange.directory import REDACTED_TEXT, ExportDirectory, expected_files, read_rows
from pychat_db.exchange.mapping import MappingSource, ObjectsFactory
from pychat_db.exchange.scanner import BOM, CHUNK_BYTES, MAX_ELEMENT_BYTES
from pychat_db.exchange.source import (
    Chunk,
    ExportError,
    Item,
    Problem,
    ReadStats,
    SecondProcess,
    Source,
    SourceDefaults,
)

__all__ = [
    "BOM",
    "CHUNK_BYTES",
    "MAX_ELEMENT_BYTES",
    "REDACTED_TEXT",
    "Chunk",
    "ExportDirectory",
    "ExportError",
    "Item",
    "MappingSource",
    "ObjectsFactory",
    "Problem",
    "ReadStats",
    "SecondProcess",
    "Source",
    "SourceDefaults",
    "expected_files",
    "read_rows",
]
