"""Read the chat app's Isar 3 file (`default.isar`) without ever writing to it.

Layers, each usable alone:
  * `storage`: the key/value store (MDBX via `clibmdbx`) behind a tiny interface,
    and the private copy every read goes through;
  * `format`: generic Isar 3 decoding (schemas, ids, objects, links);
  * `app`: the chat app's models → the export contract's rows.

Typical use::

    with open_isar("default.isar") as f:
        for row in f.app.rows(contract.MESSAGES):
            ...
"""

from pychat_db.isar.app import MAPPING, AppReader, OpenedFile, open_isar
from pychat_db.isar.format import CollectionSchema, DataType, IsarFile, IsarFormatError
from pychat_db.isar.storage import NeedsRecovery, StorageError

__all__ = [
    "MAPPING",
    "AppReader",
    "CollectionSchema",
    "DataType",
    "IsarFile",
    "IsarFormatError",
    "NeedsRecovery",
    "OpenedFile",
    "StorageError",
    "open_isar",
]
