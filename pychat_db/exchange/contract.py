"""The export contract (format version 1) as data: collections, files and fields.

One description serves every reader and writer of the format (import, export,
verify, generate, the Isar reader), so a field is named, ordered and typed in
one place. A *row* everywhere in `pychat_db.exchange` is a tuple of the stored
(SQLite) values of a collection's fields in `Collection.fields` order:
ints, canonical timestamp text, bytes, 0/1 booleans, enum names, str or None.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

FORMAT_NAME = "pychat-export"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MESSAGE_TYPES = ("text", "audio", "image")


class Kind(enum.StrEnum):
    """How a field's JSON value is read and stored."""

    ID = "id"  # JSON integer, signed 64-bit
    LINK = "link"  # id of a row of another collection
    TEXT = "text"  # JSON string
    TIMESTAMP = "timestamp"  # ISO-8601 with offset, or integer µs since the epoch
    BYTES = "bytes"  # base64 string or array of 0-255 integers
    ENUM = "enum"  # one of MESSAGE_TYPES
    BOOL = "bool"  # true / false


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the legacy (camelCase) name used in the files
    column: str  # the SQLite column
    kind: Kind
    nullable: bool = False
    target: str | None = None  # for links: the collection pointed to


@dataclass(frozen=True, slots=True)
class Collection:
    name: str  # also the SQLite table and the file stem
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ("id",)  # legacy names of the fields that identify a row
    single_object: bool = False  # configuration.json: one object, not NDJSON

    @property
    def table(self) -> str:
        return self.name

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.fields)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def canonical_file(self) -> str:
        return f"{self.name}.json" if self.single_object else f"{self.name}.ndjson"

    @property
    def links(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind is Kind.LINK)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


CONFIGURATION = Collection(
    "configuration",
    (
        Field("id", "id", Kind.ID),
        Field("apiKey", "api_key", Kind.TEXT),
        Field("baseUrl", "base_url", Kind.TEXT, nullable=True),
        Field("modelName", "model_name", Kind.TEXT),
    ),
    single_object=True,
)
THREADS = Collection(
    "threads",
    (
        Field("id", "id", Kind.ID),
        Field("name", "name", Kind.TEXT),
        Field("createdAt", "created_at", Kind.TIMESTAMP),
    ),
)
MODES = Collection(
    "modes",
    (
        Field("id", "id", Kind.ID),
        Field("name", "name", Kind.TEXT),
        Field("prompt", "prompt", Kind.TEXT),
        Field("isEditable", "is_editable", Kind.BOOL),
    ),
)
TAGS = Collection(
    "tags",
    (
        Field("id", "id", Kind.ID),
        Field("name", "name", Kind.TEXT),
        Field("description", "description", Kind.TEXT),
        Field("isEditable", "is_editable", Kind.BOOL),
    ),
)
MESSAGES = Collection(
    "messages",
    (
        Field("id", "id", Kind.ID),
        Field("threadId", "thread_id", Kind.LINK, target="threads"),
        Field("text", "text", Kind.TEXT),
        Field("timestamp", "timestamp", Kind.TIMESTAMP),
        Field("type", "type", Kind.ENUM),
        Field("description", "description", Kind.TEXT),
        Field("fileData", "file_data", Kind.BYTES, nullable=True),
        Field("mimeType", "mime_type", Kind.TEXT, nullable=True),
        Field("transcript", "transcript", Kind.TEXT, nullable=True),
        Field("fileName", "file_name", Kind.TEXT, nullable=True),
    ),
)
MODE_OUTPUTS = Collection(
    "mode_outputs",
    (
        Field("id", "id", Kind.ID),
        Field("threadId", "thread_id", Kind.LINK, target="threads"),
        Field("modeId", "mode_id", Kind.LINK, target="modes"),
        Field("createdAt", "created_at", Kind.TIMESTAMP),
        Field("content", "content", Kind.TEXT),
    ),
)
MESSAGE_TAGS = Collection(
    "message_tags",
    (
        Field("messageId", "message_id", Kind.LINK, target="messages"),
        Field("tagId", "tag_id", Kind.LINK, target="tags"),
    ),
    key=("messageId", "tagId"),
)

# Import order: every link points to a collection loaded before it.
COLLECTIONS: tuple[Collection, ...] = (
    CONFIGURATION,
    THREADS,
    MODES,
    TAGS,
    MESSAGES,
    MODE_OUTPUTS,
    MESSAGE_TAGS,
)
BY_NAME = {c.name: c for c in COLLECTIONS}


def select_sql(collection: Collection, where: str = "") -> str:
    """`SELECT <the collection's columns, in field order> FROM <table><where> ORDER BY <key>`."""
    key = ", ".join(collection.field(name).column for name in collection.key)
    return f"SELECT {', '.join(collection.columns)} FROM {collection.table}{where} ORDER BY {key}"
