"""Domain objects: what the app's screens and services see.

They are separate from the generated row classes (`pychat_db.generated`), which
mirror the tables one to one; the repositories map between the two with the
generated mappers. Differences from the rows: a `Message` carries its tags, an
id is `None` until the object is stored, and every timestamp is an aware UTC
`datetime` (an aware datetime in another zone is converted to UTC; a naive one
is refused with `pychat_db.convert.NaiveDatetimeError`).

The objects are frozen: change one with `dataclasses.replace` and store it with
the repository's `update`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pychat_db.convert import UTC, NaiveDatetimeError
from pychat_db.generated.enums import MessageType

__all__ = [
    "Configuration",
    "Cursor",
    "Message",
    "MessageType",
    "Mode",
    "ModeOutput",
    "NaiveDatetimeError",
    "Tag",
    "Thread",
]


def _utc(owner: object, name: str) -> None:
    """Check that `owner.name` is an aware datetime and store it converted to UTC."""
    value = getattr(owner, name)
    if type(value) is dt.datetime and value.tzinfo is UTC:  # as read from the database: nothing to check or convert
        return
    where = f"{type(owner).__name__}.{name}"
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{where}: expected an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(f"{where}: naive datetime {value.isoformat()}: give it a timezone (e.g. datetime.UTC)")
    if value.tzinfo is not UTC:
        object.__setattr__(owner, name, value.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class Cursor:
    """A keyset pagination position: the sort instant and the id that breaks ties.

    Build it from the last item of a page (`thread.cursor`, `message.cursor`).
    """

    at: dt.datetime
    id: int

    def __post_init__(self) -> None:
        _utc(self, "at")


def _cursor(item: Thread | Message, at: dt.datetime) -> Cursor:
    """The cursor of a stored `item` at `at`; ValueError when it has no id yet."""
    if item.id is None:
        kind = type(item).__name__
        raise ValueError(f"{kind}.cursor: the {kind.lower()} has no id yet (store it first)")
    return Cursor(at, item.id)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Configuration:
    """The app's settings (one per database). `api_key` is a secret: never shown by repr/str."""

    api_key: str
    model_name: str
    base_url: str | None = None
    id: int | None = None

    def __repr__(self) -> str:
        return (
            f"Configuration(id={self.id!r}, api_key='<redacted>', base_url={self.base_url!r}, "
            f"model_name={self.model_name!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread:
    """A conversation."""

    name: str
    created_at: dt.datetime
    id: int | None = None

    def __post_init__(self) -> None:
        _utc(self, "created_at")

    @property
    def cursor(self) -> Cursor:
        """The position after this thread in the newest-first listing (the thread must be stored)."""
        return _cursor(self, self.created_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tag:
    """A label on messages; names need not be unique."""

    name: str
    description: str = ""
    is_editable: bool = True
    id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message of a thread, with its tags (ordered by tag id).

    `file_data` None means no file; `b""` is an (empty) file.
    """

    thread_id: int
    text: str
    timestamp: dt.datetime
    type: MessageType = MessageType.TEXT
    description: str = ""
    file_data: bytes | None = field(default=None, repr=False)
    mime_type: str | None = None
    transcript: str | None = None
    file_name: str | None = None
    tags: tuple[Tag, ...] = ()
    id: int | None = None

    def __post_init__(self) -> None:
        _utc(self, "timestamp")
        if not isinstance(self.type, MessageType):
            object.__setattr__(self, "type", MessageType(self.type))
        if not isinstance(self.tags, tuple):
            object.__setattr__(self, "tags", tuple(self.tags))

    @property
    def cursor(self) -> Cursor:
        """The position after this message in its thread's listing (the message must be stored)."""
        return _cursor(self, self.timestamp)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mode:
    """A named prompt run over a thread; built-in modes are not editable."""

    name: str
    prompt: str
    is_editable: bool = True
    id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeOutput:
    """A mode's result for a thread."""

    thread_id: int
    mode_id: int
    created_at: dt.datetime
    content: str
    id: int | None = None

    def __post_init__(self) -> None:
        _utc(self, "created_at")
