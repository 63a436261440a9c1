"""Read the chat app's Isar 3 file (`default.isar`) without ever writing to it.

Layers, each usable alone:
  * `storage`: the key/value store (MDBX via `clibmdbx`) behind a tiny interface,
    and the private copy every read goes through;
  * `keys`, `format` and `file`: generic Isar 3 decoding (ids; schemas and objects;
    the opened file's objects and links in key order);
  * `mapping`: the table of the chat app's collections ← the export contract's;
  * `app`: the chat app's models → the export contract's rows, through `getters`
    (the reference decoder of each field), `decoders` (the generated fast path)
    and `links` (a single link joined as its collection is read);
  * `history`, `source`, `worker`: the app's schema history, the file as an
    exchange source, and the reader process.

Typical use::

    with open_isar("default.isar") as f:
        for row in f.app.rows(contract.MESSAGES):
            ...
"""

from pychat_db.isar.app import AppReader, OpenedFile, open_isar
from pychat_db.isar.file import IsarFile
from pychat_db.isar.format import CollectionSchema, DataType, IsarFormatError
from pychat_db.isar.mapping import MAPPING
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
