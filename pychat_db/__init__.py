"""pychat_db: the schema-first SQLite data layer of the chat app."""

from pychat_db.connection import connect
from pychat_db.errors import (
    ConstraintViolation,
    MigrationError,
    NotFound,
    PychatDbError,
    SchemaMismatch,
)

__all__ = [
    "ConstraintViolation",
    "MigrationError",
    "NotFound",
    "PychatDbError",
    "SchemaMismatch",
    "connect",
]
