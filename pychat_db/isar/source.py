"""An opened Isar file as an exchange `Source`: the loader, verify and export read it like an export directory.

Rows come from `AppReader.rows()` and go through the same `RowCodec` as NDJSON
lines (`MappingSource`), so validation and conversion are shared. A refusal of
the Isar reader (corrupt object, unknown property, dangling link, ...) stops
reading: it is raised as the exchange's `ExportError`, naming collection, id
and field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pychat_db.exchange.codec import NaiveTimezone
from pychat_db.exchange.contract import COLLECTIONS, Collection
from pychat_db.exchange.reader import ExportError, MappingSource, Problem
from pychat_db.isar.app import OpenedFile
from pychat_db.isar.format import IsarFormatError
from pychat_db.isar.storage import StorageError

RECOVERED_NOTE = (
    "note: {name}: the file was left mid-write (the app crashed or is still running); "
    "read a repaired private copy, the file itself is untouched"
)


def refusal(name: str, exc: IsarFormatError | StorageError, collection: str | None = None) -> ExportError:
    """The reader's error as the exchange's ExportError (`NAME: Collection id N: field: reason`)."""
    return ExportError(Problem(collection, name, None, str(exc)))


def _objects(opened: OpenedFile, name: str, collection: Collection) -> Iterable[tuple[str, Mapping[str, Any]]]:
    isar_name = collection.name if collection.name == "message_tags" else None

    def generate() -> Iterator[tuple[str, Mapping[str, Any]]]:
        try:
            for row in opened.app.rows(collection, raw_bytes=True):
                if isar_name is None:
                    where = f"{name}: {collection.name} id={row['id']}"
                else:
                    where = f"{name}: {collection.name} messageId={row['messageId']} tagId={row['tagId']}"
                yield where, row
        except (IsarFormatError, StorageError) as exc:
            raise refusal(name, exc, collection.name) from None

    return generate()


def isar_source(
    opened: OpenedFile, name: str | os.PathLike[str], naive: NaiveTimezone = NaiveTimezone.REJECT
) -> MappingSource:
    """A `MappingSource` over the app's collections in `opened` (see module doc).

    Checks the file's schema against the app mapping first (raises ExportError).
    """
    label = os.fspath(name)
    try:
        _ = opened.app
    except (IsarFormatError, StorageError) as exc:
        raise refusal(label, exc) from None
    factories = {c.name: (lambda c=c: _objects(opened, label, c)) for c in COLLECTIONS}
    return MappingSource(label, factories, naive)
