"""The library's own exceptions. Driver (APSW) errors never leave the library raw.

Every error pychat_db raises derives from `PychatDbError`, so a caller catches one type. The general ones
live here; an error that belongs to one room lives beside the code that raises it:

- `MigrationError`, `SchemaMismatch`, `NotFound`, `ConstraintViolation` (here): the database and the
  repositories;
- `pychat_db.convert.NaiveDatetimeError` (also a `ValueError`): a datetime without a time zone;
- `pychat_db.exchange`: `reader.ExportError` (a source refused, with its `Problem`), `codec.FieldError`
  (one field, also a `ValueError`), `loader.ImportFailed` (the import's report), `verify.VerifyError`,
  `writer.ExportWriteError`;
- `pychat_db.isar`: `format.IsarFormatError`, `storage.StorageError` (and `NeedsRecovery`);
- `pychat_db.locks.DatabaseInUse`, `pychat_db.legacy.LegacyStoreError`,
  `pychat_db.repositories.methods.UndescribedMethod`, and the switch-over's `SettingsError`,
  `SecondaryWriteError` and `OutOfSync`.

The commands (`pychat_db.cli`) match these classes, never their names. `codegen.errors.CodegenError` is not
one of them: codegen is a development tool outside the library.
"""

from __future__ import annotations

import re

import apsw


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


class DatabaseError(PychatDbError):
    """The database failed in a way that is not a constraint (busy, I/O, corrupt, ...).

    `code` is SQLite's extended result code and `name` its symbolic name.
    """

    def __init__(self, message: str, *, code: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


# SQLite's messages: "CHECK constraint failed: messages.type", "NOT NULL constraint failed:
# messages.text", "UNIQUE constraint failed: threads.id", "UNIQUE constraint failed: index
# 'configuration_singleton'", "FOREIGN KEY constraint failed", and for STRICT tables
# "cannot store TEXT value in INTEGER column messages.thread_id".
_COLUMN_FAILED = re.compile(r"constraint failed: (?P<table>\w+)\.(?P<column>\w+)")
_INDEX_FAILED = re.compile(r"constraint failed: index '(?P<index>[^']+)'")
_DATATYPE = re.compile(r"cannot store (?P<got>\w+) value in (?P<want>\w+) column (?P<table>\w+)\.(?P<column>\w+)")
_CONSTRAINT_PREFIX = "SQLITE_CONSTRAINT_"
_KINDS = {"PRIMARYKEY": "PRIMARY KEY", "FOREIGNKEY": "FOREIGN KEY", "NOTNULL": "NOT NULL"}


def _code_name(code: int | None) -> str | None:
    if code is None:
        return None
    name = apsw.mapping_extended_result_codes.get(code) or apsw.mapping_result_codes.get(code & 0xFF)
    return name if isinstance(name, str) else None


def translate(exc: apsw.Error, *, table: str | None = None) -> PychatDbError:
    """The library's exception for an APSW error (the caller raises it `from exc`).

    Constraint failures become `ConstraintViolation` with `kind` ("CHECK",
    "NOT NULL", "UNIQUE", "PRIMARY KEY", "FOREIGN KEY", "DATATYPE"), the table and
    column SQLite names (else `table`, the table the caller was writing) and the
    extended result code. Anything else becomes `DatabaseError`. SQLite's messages
    name constraints, never values, so no secret (the API key) leaks through.
    """
    code = getattr(exc, "extendedresult", None)
    code_name = _code_name(code)
    text = str(exc)
    if isinstance(exc, apsw.ConstraintError):
        if match := _DATATYPE.search(text):
            return ConstraintViolation(
                f"{match['table']}.{match['column']}: {match['got']} value where {match['want']} is required "
                "(DATATYPE constraint failed)",
                kind="DATATYPE",
                table=match["table"],
                column=match["column"],
                code=code,
            )
        short = code_name.removeprefix(_CONSTRAINT_PREFIX) if code_name else ""
        kind = _KINDS.get(short, short or "CONSTRAINT")
        column: str | None = None
        if match := _COLUMN_FAILED.search(text):
            table, column = match["table"], match["column"]
            where = f"{table}.{column}"
        elif match := _INDEX_FAILED.search(text):
            where = f"{table or 'database'} (index {match['index']})"
        else:
            where = table or "database"
        return ConstraintViolation(
            f"{where}: {kind} constraint failed", kind=kind, table=table, column=column, code=code
        )
    if isinstance(exc, apsw.MismatchError):
        # An INTEGER PRIMARY KEY given a value that is not an integer.
        return ConstraintViolation(
            f"{table or 'database'}.id: datatype mismatch (an id must be an integer)",
            kind="DATATYPE",
            table=table,
            column="id" if table else None,
            code=code,
        )
    return DatabaseError(f"{code_name or type(exc).__name__}: {text}", code=code, name=code_name)
