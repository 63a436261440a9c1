"""The library's own exceptions. Driver (APSW) errors never leave the library raw."""

from __future__ import annotations


class PychatDbError(Exception):
    """Base class of every error pychat_db raises."""


class MigrationError(PychatDbError):
    """The database cannot be brought to the code's schema version; nothing was changed."""


class SchemaMismatch(PychatDbError):
    """The database's schema is not the one this code expects."""


class NotFound(PychatDbError):
    """No row with that key."""

    def __init__(self, table: str, key: object) -> None:
        super().__init__(f"{table}: no row with id {key!r}")
        self.table = table
        self.key = key


class ConstraintViolation(PychatDbError):
    """A write broke a constraint (CHECK, NOT NULL, UNIQUE, FOREIGN KEY, datatype).

    `kind` is the SQLite constraint kind, `table` and `column` name where when
    SQLite says so (None otherwise), `code` is SQLite's extended result code.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        table: str | None = None,
        column: str | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.table = table
        self.column = column
        self.code = code
