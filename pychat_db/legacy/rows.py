"""The legacy store's rows and the domain models, both ways, checked as SQLite checks a row.

The legacy repositories (`pychat_db.legacy.repositories`) keep contract rows (`pychat_db.exchange.contract`);
these functions turn models into rows and back, and refuse a row SQLite would refuse, with SQLite's error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pychat_db.errors import ConstraintViolation
from pychat_db.exchange.codec import INT64_MAX, INT64_MIN, Row
from pychat_db.exchange.contract import MESSAGE_TYPES, Collection, Kind
from pychat_db.generated import mappers
from pychat_db.generated.rows import ConfigurationRow, MessageRow, ModeOutputRow, ModeRow, TagRow, ThreadRow
from pychat_db.models import Configuration, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories import mapping

SQL_TYPE = {Kind.ID: "INTEGER", Kind.LINK: "INTEGER", Kind.BOOL: "INTEGER", Kind.BYTES: "BLOB"}


def value_type(value: object) -> str:
    return {int: "INTEGER", str: "TEXT", bytes: "BLOB", float: "REAL"}.get(type(value), type(value).__name__)


def check_row(collection: Collection, row: Row) -> None:
    """Refuse what SQLite's STRICT table, NOT NULL and CHECK constraints refuse, naming table and column."""
    table = collection.table
    for f, value in zip(collection.fields, row, strict=True):
        if f.kind in (Kind.ID, Kind.LINK) and f.name == "id" and value is None:
            continue  # assigned by the store
        where = f"{table}.{f.column}"
        if value is None:
            if not f.nullable:
                raise ConstraintViolation(
                    f"{where}: NOT NULL constraint failed", kind="NOT NULL", table=table, column=f.column
                )
            continue
        want = SQL_TYPE.get(f.kind, "TEXT")
        ok = type(value) is int if want == "INTEGER" else type(value) is (bytes if want == "BLOB" else str)
        if ok and want == "INTEGER" and not INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
            ok = False
        if not ok:
            raise ConstraintViolation(
                f"{where}: {value_type(value)} value where {want} is required (DATATYPE constraint failed)",
                kind="DATATYPE",
                table=table,
                column=f.column,
            )
        if (f.kind is Kind.BOOL and value not in (0, 1)) or (f.kind is Kind.ENUM and value not in MESSAGE_TYPES):
            raise ConstraintViolation(f"{where}: CHECK constraint failed", kind="CHECK", table=table, column=f.column)


# Domain object <-> stored row (contract order = table order), through the generated mappers: the same
# conversions as the SQLite side. Rows need an id; a domain object not stored yet has None.
NO_ID = 0


def with_id(values: Sequence[Any], id: int | None) -> Row:
    return (id, *values[1:])


def configuration_row(c: Configuration) -> Row:
    row = ConfigurationRow(id=NO_ID, api_key=c.api_key, base_url=c.base_url, model_name=c.model_name)
    return with_id(mappers.configuration_to_db(row), c.id)


def thread_row(t: Thread) -> Row:
    return with_id(mappers.thread_to_db(ThreadRow(id=NO_ID, name=t.name, created_at=t.created_at)), t.id)


def tag_row(t: Tag) -> Row:
    row = TagRow(id=NO_ID, name=t.name, description=t.description, is_editable=t.is_editable)
    return with_id(mappers.tag_to_db(row), t.id)


def mode_row(m: Mode) -> Row:
    return with_id(mappers.mode_to_db(ModeRow(id=NO_ID, name=m.name, prompt=m.prompt, is_editable=m.is_editable)), m.id)


def message_row(m: Message) -> Row:
    row = MessageRow(
        id=NO_ID,
        thread_id=m.thread_id,
        text=m.text,
        timestamp=m.timestamp,
        type=m.type,
        description=m.description,
        file_data=m.file_data,
        mime_type=m.mime_type,
        transcript=m.transcript,
        file_name=m.file_name,
    )
    return with_id(mappers.message_to_db(row), m.id)


def configuration_from_row(row: Row) -> Configuration:
    return mapping.configuration(mappers.configuration_from_db(row))


def thread_from_row(row: Row) -> Thread:
    return mapping.thread(mappers.thread_from_db(row))


def tag_from_row(row: Row) -> Tag:
    return mapping.tag(mappers.tag_from_db(row))


def mode_from_row(row: Row) -> Mode:
    return mapping.mode(mappers.mode_from_db(row))


def mode_output_from_row(row: Row) -> ModeOutput:
    return mapping.mode_output(mappers.mode_output_from_db(row))


def mode_output_row(o: ModeOutput) -> Row:
    row = ModeOutputRow(id=NO_ID, thread_id=o.thread_id, mode_id=o.mode_id, created_at=o.created_at, content=o.content)
    return with_id(mappers.mode_output_to_db(row), o.id)


def missing_link(table: str, column: str, parent: str, key: int) -> ConstraintViolation:
    return ConstraintViolation(
        f"{table}.{column}: no {parent} row with id {key!r} (FOREIGN KEY constraint failed)",
        kind="FOREIGN KEY",
        table=table,
        column=column,
    )
