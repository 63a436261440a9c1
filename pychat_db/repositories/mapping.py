"""Domain objects (`pychat_db.models`) ↔ stored rows, through the generated mappers.

Every query in `queries/` returns a table's columns in table order, which is
what the generated `*_from_db` mappers read; writes take the generated
`*_to_params`. The domain side adds what rows do not have: an id that may be
None before the object is stored (SQLite assigns one), and a message's tags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pychat_db.convert import timestamp_to_db
from pychat_db.generated import mappers
from pychat_db.generated.rows import ConfigurationRow, MessageRow, ModeOutputRow, ModeRow, TagRow, ThreadRow
from pychat_db.models import Configuration, Message, Mode, ModeOutput, Tag, Thread

Params = dict[str, mappers.SQLiteValue]

# Rows always have an id; a domain object not stored yet has None. The row is
# built with this placeholder and the parameter set back to the object's id.
_NO_ID = 0


def _with_id(params: Params, id: int | None) -> Params:
    params["id"] = id
    return params


def timestamp_param(value: dt.datetime) -> str:
    """A cursor's instant as the stored text (a naive datetime is refused)."""
    return timestamp_to_db(value)


def configuration_from_row(values: Sequence[Any]) -> Configuration:
    row = mappers.configuration_from_db(values)
    return Configuration(id=row.id, api_key=row.api_key, base_url=row.base_url, model_name=row.model_name)


def configuration_params(config: Configuration) -> Params:
    row = ConfigurationRow(id=_NO_ID, api_key=config.api_key, base_url=config.base_url, model_name=config.model_name)
    return _with_id(mappers.configuration_to_params(row), config.id)


def thread_from_row(values: Sequence[Any]) -> Thread:
    row = mappers.thread_from_db(values)
    return Thread(id=row.id, name=row.name, created_at=row.created_at)


def thread_params(thread: Thread) -> Params:
    row = ThreadRow(id=_NO_ID, name=thread.name, created_at=thread.created_at)
    return _with_id(mappers.thread_to_params(row), thread.id)


def tag_from_row(values: Sequence[Any]) -> Tag:
    row = mappers.tag_from_db(values)
    return Tag(id=row.id, name=row.name, description=row.description, is_editable=row.is_editable)


def tag_params(tag: Tag) -> Params:
    row = TagRow(id=_NO_ID, name=tag.name, description=tag.description, is_editable=tag.is_editable)
    return _with_id(mappers.tag_to_params(row), tag.id)


def message_from_row(values: Sequence[Any], tags: tuple[Tag, ...]) -> Message:
    row = mappers.message_from_db(values)
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


def message_params(message: Message) -> Params:
    row = MessageRow(
        id=_NO_ID,
        thread_id=message.thread_id,
        text=message.text,
        timestamp=message.timestamp,
        type=message.type,
        description=message.description,
        file_data=message.file_data,
        mime_type=message.mime_type,
        transcript=message.transcript,
        file_name=message.file_name,
    )
    return _with_id(mappers.message_to_params(row), message.id)


def mode_from_row(values: Sequence[Any]) -> Mode:
    row = mappers.mode_from_db(values)
    return Mode(id=row.id, name=row.name, prompt=row.prompt, is_editable=row.is_editable)


def mode_params(mode: Mode) -> Params:
    row = ModeRow(id=_NO_ID, name=mode.name, prompt=mode.prompt, is_editable=mode.is_editable)
    return _with_id(mappers.mode_to_params(row), mode.id)


def mode_output_from_row(values: Sequence[Any]) -> ModeOutput:
    row = mappers.mode_output_from_db(values)
    return ModeOutput(
        id=row.id, thread_id=row.thread_id, mode_id=row.mode_id, created_at=row.created_at, content=row.content
    )


def mode_output_params(output: ModeOutput) -> Params:
    row = ModeOutputRow(
        id=_NO_ID,
        thread_id=output.thread_id,
        mode_id=output.mode_id,
        created_at=output.created_at,
        content=output.content,
    )
    return _with_id(mappers.mode_output_to_params(row), output.id)
