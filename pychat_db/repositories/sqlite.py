"""The repositories on SQLite: the named queries of `queries/*.sql` through their generated typed wrappers.

The wrappers (`pychat_db.generated.queries`, made of `pychat_db.querying`) run the
queries aiosql loads on APSW, typed end to end, and map rows with the generated
mappers; this module turns rows into domain objects and APSW errors into the
library's own. A method writing more than one statement runs them in one
transaction (a savepoint when the caller already holds one), so either all of its
writes are kept or none.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.generated.queries import configuration as configuration_q
from pychat_db.generated.queries import messages as messages_q
from pychat_db.generated.queries import mode_outputs as mode_outputs_q
from pychat_db.generated.queries import modes as modes_q
from pychat_db.generated.queries import tags as tags_q
from pychat_db.generated.queries import threads as threads_q
from pychat_db.generated.rows import MessageRow, ModeOutputRow
from pychat_db.models import Configuration, Cursor, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories import mapping, protocols
from pychat_db.repositories.session import Session

__all__ = [
    "SQLiteConfigurationRepository",
    "SQLiteMessageRepository",
    "SQLiteModeOutputRepository",
    "SQLiteModeRepository",
    "SQLiteTagRepository",
    "SQLiteThreadRepository",
]

_R = TypeVar("_R")
_ALL = -1  # SQLite's LIMIT for "no limit"


def _page_limit(limit: int | None) -> int:
    checked = mapping.page_limit(limit)
    return _ALL if checked is None else checked


def _returned(row: _R | None, table: str) -> _R:
    """The row of an INSERT ... RETURNING (one that did not raise always returns it)."""
    if row is None:  # pragma: no cover - SQLite guarantees it
        raise AssertionError(f"{table}: INSERT returned no row")
    return row


def _missing_reference(
    session: Session, table: str, refs: Sequence[tuple[str, str, int]], cause: ConstraintViolation
) -> ConstraintViolation:
    """Name the column of a FOREIGN KEY failure: the first `(column, parent table, id)` whose parent is absent."""
    for column, parent, key in refs:
        if session.conn.execute(f"SELECT 1 FROM {parent} WHERE id = ?", (key,)).fetchone() is None:
            return ConstraintViolation(
                f"{table}.{column}: no {parent} row with id {key!r} (FOREIGN KEY constraint failed)",
                kind="FOREIGN KEY",
                table=table,
                column=column,
                code=cause.code,
            )
    return cause


class _Repository:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._conn = session.conn


class SQLiteConfigurationRepository(_Repository):
    def get(self) -> Configuration | None:
        with self._session.errors("configuration"):
            row = configuration_q.get_configuration(self._conn)
        return None if row is None else mapping.configuration(row)

    def upsert(self, configuration: Configuration) -> Configuration:
        with self._session.errors("configuration"):
            row = configuration_q.upsert_configuration(
                self._conn,
                id=configuration.id,
                api_key=configuration.api_key,
                base_url=configuration.base_url,
                model_name=configuration.model_name,
            )
        row = _returned(row, "configuration")
        return mapping.configuration(row)

    def delete(self) -> bool:
        with self._session.errors("configuration"):
            return configuration_q.delete_configuration(self._conn) is not None


class SQLiteThreadRepository(_Repository):
    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        page_limit = _page_limit(limit)
        with self._session.errors("threads"):
            if before is None:
                rows = threads_q.list_threads_first(self._conn, page_limit=page_limit)
            else:
                cursor = before.cursor if isinstance(before, Thread) else before
                rows = threads_q.list_threads_before(
                    self._conn, before_created_at=cursor.at, before_id=cursor.id, page_limit=page_limit
                )
        return [mapping.thread(row) for row in rows]

    def get(self, id: int) -> Thread:
        with self._session.errors("threads"):
            row = threads_q.get_thread(self._conn, id=id)
        if row is None:
            raise NotFound("threads", id)
        return mapping.thread(row)

    def create(self, thread: Thread) -> Thread:
        with self._session.errors("threads"):
            row = threads_q.insert_thread(self._conn, id=thread.id, name=thread.name, created_at=thread.created_at)
        row = _returned(row, "threads")
        return mapping.thread(row)

    def update(self, thread: Thread) -> Thread:
        id = mapping.stored_id(thread)
        with self._session.errors("threads"):
            row = threads_q.update_thread(self._conn, id=id, name=thread.name, created_at=thread.created_at)
        if row is None:
            raise NotFound("threads", id)
        return mapping.thread(row)

    def delete(self, id: int) -> None:
        with self._session.errors("threads"):
            deleted = threads_q.delete_thread(self._conn, id=id)
        if deleted is None:
            raise NotFound("threads", id)


class SQLiteTagRepository(_Repository):
    def list(self) -> builtins.list[Tag]:
        with self._session.errors("tags"):
            rows = tags_q.list_tags(self._conn)
        return [mapping.tag(row) for row in rows]

    def get(self, id: int) -> Tag:
        with self._session.errors("tags"):
            row = tags_q.get_tag(self._conn, id=id)
        if row is None:
            raise NotFound("tags", id)
        return mapping.tag(row)

    def create(self, tag: Tag) -> Tag:
        with self._session.errors("tags"):
            row = tags_q.insert_tag(
                self._conn, id=tag.id, name=tag.name, description=tag.description, is_editable=tag.is_editable
            )
        row = _returned(row, "tags")
        return mapping.tag(row)

    def update(self, tag: Tag) -> Tag:
        id = mapping.stored_id(tag)
        with self._session.errors("tags"):
            row = tags_q.update_tag(
                self._conn, id=id, name=tag.name, description=tag.description, is_editable=tag.is_editable
            )
        if row is None:
            raise NotFound("tags", id)
        return mapping.tag(row)

    def delete(self, id: int) -> None:
        with self._session.errors("tags"):
            deleted = tags_q.delete_tag(self._conn, id=id)
        if deleted is None:
            raise NotFound("tags", id)

    def of_message(self, message_id: int) -> builtins.list[Tag]:
        with self._session.errors("message_tags"):
            rows = tags_q.list_tags_of_message(self._conn, message_id=message_id)
        return [mapping.tag(row) for row in rows]

    def of_messages(self, message_ids: Sequence[int]) -> dict[int, tuple[Tag, ...]]:
        """The tags of many messages in one query: message id → its tags by id (messages without tags omitted)."""
        if not message_ids:
            return {}
        with self._session.errors("message_tags"):
            rows = tags_q.list_tags_of_messages(self._conn, message_ids=message_ids)
        found: dict[int, builtins.list[Tag]] = {}
        for row in rows:
            found.setdefault(row.message_id, []).append(mapping.tag(row))
        return {message_id: tuple(tags) for message_id, tags in found.items()}

    def _exists(self, table: str, id: int) -> bool:
        with self._session.errors(table):
            if table == "messages":
                return messages_q.get_message(self._conn, id=id) is not None
            return tags_q.get_tag(self._conn, id=id) is not None

    def _require(self, table: str, id: int) -> None:
        if not self._exists(table, id):
            raise NotFound(table, id)

    def attach(self, message_id: int, tag_id: int) -> bool:
        try:
            with self._session.errors("message_tags"):
                added = tags_q.attach_tag(self._conn, message_id=message_id, tag_id=tag_id)
        except ConstraintViolation as exc:
            if exc.kind == "FOREIGN KEY":
                self._require("messages", message_id)
                self._require("tags", tag_id)
            raise
        return added is not None

    def detach(self, message_id: int, tag_id: int) -> bool:
        with self._session.errors("message_tags"):
            return tags_q.detach_tag(self._conn, message_id=message_id, tag_id=tag_id) is not None

    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        wanted = sorted(set(tag_ids))
        with self._session.transaction():
            self._require("messages", message_id)
            missing = self._replace_links(message_id, wanted)
            if missing is not None:
                raise NotFound("tags", missing)
            return self.of_message(message_id)

    def _replace_links(self, message_id: int, tag_ids: Sequence[int]) -> int | None:
        """Make the message's links exactly `tag_ids` (in the caller's transaction).

        Returns the first tag id that does not exist (nothing linked then; the
        caller raises, which rolls its transaction back), else None.
        """
        with self._session.errors("message_tags"):
            tags_q.detach_tags_not_in(self._conn, message_id=message_id, tag_ids=tag_ids)
        if not tag_ids:
            return None
        try:
            with self._session.errors("message_tags"):
                tags_q.attach_tags(self._conn, message_id=message_id, tag_ids=tag_ids)
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            for tag_id in tag_ids:
                if not self._exists("tags", tag_id):
                    return tag_id
            raise
        return None


class SQLiteMessageRepository(_Repository):
    def __init__(self, session: Session, tags: SQLiteTagRepository) -> None:
        super().__init__(session)
        self._tags = tags

    def _with_tags(self, rows: Sequence[MessageRow]) -> builtins.list[Message]:
        tags = self._tags.of_messages([row.id for row in rows])
        return [mapping.message(row, tags.get(row.id, ())) for row in rows]

    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        page_limit = _page_limit(limit)
        with self._session.snapshot(), self._session.errors("messages"):
            if after is None:
                rows = messages_q.list_messages_first(self._conn, thread_id=thread_id, page_limit=page_limit)
            else:
                cursor = after.cursor if isinstance(after, Message) else after
                rows = messages_q.list_messages_after(
                    self._conn,
                    thread_id=thread_id,
                    after_timestamp=cursor.at,
                    after_id=cursor.id,
                    page_limit=page_limit,
                )
            return self._with_tags(rows)

    def list_before(
        self, thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        page_limit = _page_limit(limit)
        with self._session.snapshot(), self._session.errors("messages"):
            if before is None:
                rows = messages_q.list_messages_last(self._conn, thread_id=thread_id, page_limit=page_limit)
            else:
                cursor = before.cursor if isinstance(before, Message) else before
                rows = messages_q.list_messages_before(
                    self._conn,
                    thread_id=thread_id,
                    before_timestamp=cursor.at,
                    before_id=cursor.id,
                    page_limit=page_limit,
                )
            rows.reverse()
            return self._with_tags(rows)

    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        with self._session.snapshot(), self._session.errors("messages"):
            return self._with_tags(messages_q.list_messages_of_tag(self._conn, tag_id=tag_id))

    def get(self, id: int) -> Message:
        with self._session.snapshot():
            with self._session.errors("messages"):
                row = messages_q.get_message(self._conn, id=id)
            if row is None:
                raise NotFound("messages", id)
            return mapping.message(row, tuple(self._tags.of_message(id)))

    @staticmethod
    def _tag_ids(message: Message) -> builtins.list[int]:
        ids = set()
        for tag in message.tags:
            if tag.id is None:
                raise ValueError(f"Message.tags: tag {tag.name!r} has no id; create it first")
            ids.add(tag.id)
        return sorted(ids)

    def _write(self, message: Message, *, insert: bool) -> MessageRow | None:
        query = messages_q.insert_message if insert else messages_q.update_message
        try:
            with self._session.errors("messages"):
                return query(
                    self._conn,
                    id=message.id,  # type: ignore[arg-type]  # update: checked by _stored_id
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
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            refs = [("thread_id", "threads", message.thread_id)]
            raise _missing_reference(self._session, "messages", refs, exc) from exc

    def _link(self, message_id: int, tag_ids: Sequence[int]) -> None:
        missing = self._tags._replace_links(message_id, tag_ids)
        if missing is not None:
            raise ConstraintViolation(
                f"message_tags.tag_id: no tags row with id {missing!r} (FOREIGN KEY constraint failed)",
                kind="FOREIGN KEY",
                table="message_tags",
                column="tag_id",
            )

    def create(self, message: Message) -> Message:
        tag_ids = self._tag_ids(message)
        if not tag_ids:
            row = self._write(message, insert=True)
            row = _returned(row, "messages")
            return mapping.message(row, ())
        with self._session.transaction():
            row = self._write(message, insert=True)
            row = _returned(row, "messages")
            self._link(row.id, tag_ids)
            return mapping.message(row, tuple(self._tags.of_message(row.id)))

    def update(self, message: Message) -> Message:
        id = mapping.stored_id(message)
        tag_ids = self._tag_ids(message)
        with self._session.transaction():
            row = self._write(message, insert=False)
            if row is None:
                raise NotFound("messages", id)
            self._link(id, tag_ids)
            return mapping.message(row, tuple(self._tags.of_message(id)))

    def delete(self, id: int) -> None:
        with self._session.errors("messages"):
            deleted = messages_q.delete_message(self._conn, id=id)
        if deleted is None:
            raise NotFound("messages", id)


class SQLiteModeRepository(_Repository):
    def list(self) -> builtins.list[Mode]:
        with self._session.errors("modes"):
            rows = modes_q.list_modes(self._conn)
        return [mapping.mode(row) for row in rows]

    def get(self, id: int) -> Mode:
        with self._session.errors("modes"):
            row = modes_q.get_mode(self._conn, id=id)
        if row is None:
            raise NotFound("modes", id)
        return mapping.mode(row)

    def create(self, mode: Mode) -> Mode:
        with self._session.errors("modes"):
            row = modes_q.insert_mode(
                self._conn, id=mode.id, name=mode.name, prompt=mode.prompt, is_editable=mode.is_editable
            )
        row = _returned(row, "modes")
        return mapping.mode(row)

    def update(self, mode: Mode) -> Mode:
        id = mapping.stored_id(mode)
        with self._session.errors("modes"):
            row = modes_q.update_mode(
                self._conn, id=id, name=mode.name, prompt=mode.prompt, is_editable=mode.is_editable
            )
        if row is None:
            raise NotFound("modes", id)
        return mapping.mode(row)

    def delete(self, id: int) -> None:
        with self._session.errors("modes"):
            deleted = modes_q.delete_mode(self._conn, id=id)
        if deleted is None:
            raise NotFound("modes", id)

    def seed_builtins(self) -> builtins.list[Mode]:
        with self._session.errors("modes"):
            rows = modes_q.seed_builtin_modes(self._conn)
        return sorted((mapping.mode(row) for row in rows), key=lambda mode: mode.id or 0)


class SQLiteModeOutputRepository(_Repository):
    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        with self._session.errors("mode_outputs"):
            rows = mode_outputs_q.list_mode_outputs_of_thread(self._conn, thread_id=thread_id)
        return [mapping.mode_output(row) for row in rows]

    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        with self._session.errors("mode_outputs"):
            rows = mode_outputs_q.list_mode_outputs_of_mode(self._conn, mode_id=mode_id)
        return [mapping.mode_output(row) for row in rows]

    def get(self, id: int) -> ModeOutput:
        with self._session.errors("mode_outputs"):
            row = mode_outputs_q.get_mode_output(self._conn, id=id)
        if row is None:
            raise NotFound("mode_outputs", id)
        return mapping.mode_output(row)

    def _write(self, output: ModeOutput, *, insert: bool) -> ModeOutputRow | None:
        query = mode_outputs_q.insert_mode_output if insert else mode_outputs_q.update_mode_output
        try:
            with self._session.errors("mode_outputs"):
                return query(
                    self._conn,
                    id=output.id,  # type: ignore[arg-type]  # update: checked by _stored_id
                    thread_id=output.thread_id,
                    mode_id=output.mode_id,
                    created_at=output.created_at,
                    content=output.content,
                )
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            refs = [("thread_id", "threads", output.thread_id), ("mode_id", "modes", output.mode_id)]
            raise _missing_reference(self._session, "mode_outputs", refs, exc) from exc

    def create(self, output: ModeOutput) -> ModeOutput:
        row = self._write(output, insert=True)
        row = _returned(row, "mode_outputs")
        return mapping.mode_output(row)

    def update(self, output: ModeOutput) -> ModeOutput:
        id = mapping.stored_id(output)
        row = self._write(output, insert=False)
        if row is None:
            raise NotFound("mode_outputs", id)
        return mapping.mode_output(row)

    def delete(self, id: int) -> None:
        with self._session.errors("mode_outputs"):
            deleted = mode_outputs_q.delete_mode_output(self._conn, id=id)
        if deleted is None:
            raise NotFound("mode_outputs", id)


if TYPE_CHECKING:  # mypy checks that each implementation satisfies its protocol; never runs

    def _conforms(session: Session) -> None:
        tags = SQLiteTagRepository(session)
        _configuration: protocols.ConfigurationRepository = SQLiteConfigurationRepository(session)
        _threads: protocols.ThreadRepository = SQLiteThreadRepository(session)
        _messages: protocols.MessageRepository = SQLiteMessageRepository(session, tags)
        _modes: protocols.ModeRepository = SQLiteModeRepository(session)
        _outputs: protocols.ModeOutputRepository = SQLiteModeOutputRepository(session)
        _tags: protocols.TagRepository = tags
