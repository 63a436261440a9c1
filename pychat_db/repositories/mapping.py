"""Generated rows (`pychat_db.generated.rows`) → domain objects (`pychat_db.models`).

The generated query wrappers already convert stored values (timestamps, booleans,
enums) with the generated mappers; what is left is the domain shape: a message
carries its tags, an id may be None before an object is stored.
"""

from __future__ import annotations

from pychat_db.generated.queries.tags import ListTagsOfMessagesRow
from pychat_db.generated.rows import ConfigurationRow, MessageRow, ModeOutputRow, ModeRow, TagRow, ThreadRow
from pychat_db.models import Configuration, Message, Mode, ModeOutput, Tag, Thread


def configuration(row: ConfigurationRow) -> Configuration:
    return Configuration(id=row.id, api_key=row.api_key, base_url=row.base_url, model_name=row.model_name)


def thread(row: ThreadRow) -> Thread:
    return Thread(id=row.id, name=row.name, created_at=row.created_at)


def tag(row: TagRow | ListTagsOfMessagesRow) -> Tag:
    return Tag(id=row.id, name=row.name, description=row.description, is_editable=row.is_editable)


def message(row: MessageRow, tags: tuple[Tag, ...]) -> Message:
    return Message(
        id=row.id,
        thread_id=row.thread_id,
        text=row.text,
        timestamp=row.timestamp,
        type=row.type,
        description=row.description,
        file_data=row.file_data,
        mime_type=row.mime_type,
        transcript=row.transcript,
        file_name=row.file_name,
        tags=tags,
    )


def mode(row: ModeRow) -> Mode:
    return Mode(id=row.id, name=row.name, prompt=row.prompt, is_editable=row.is_editable)


def mode_output(row: ModeOutputRow) -> ModeOutput:
    return ModeOutput(
        id=row.id, thread_id=row.thread_id, mode_id=row.mode_id, created_at=row.created_at, content=row.content
    )


def page_limit(limit: int | None) -> int | None:
    """A listing's `limit` argument, checked: None (no limit) or an integer >= 0."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be None or an integer >= 0, got {limit!r}")
    return limit


def stored_id(obj: Thread | Message | Mode | ModeOutput | Tag) -> int:
    """The id of an object `update` is given; it must have been stored (created) first."""
    if obj.id is None:
        raise ValueError(f"{type(obj).__name__} has no id: create it first, update needs the stored id")
    return obj.id
