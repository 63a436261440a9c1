"""The repositories on SQLite: named queries (`queries/*.sql`, aiosql over APSW).

Every method runs its statements through a shared `Session` (the `Database`'s
connection); a method writing more than one statement runs them in one
transaction (a savepoint when the caller already holds one), so either all of
its writes are kept or none.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Sequence
from typing import Any

from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.models import Configuration, Cursor, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories import mapping
from pychat_db.repositories.session import Session

__all__ = [
    "SQLiteConfigurationRepository",
    "SQLiteMessageRepository",
    "SQLiteModeOutputRepository",
    "SQLiteModeRepository",
    "SQLiteTagRepository",
    "SQLiteThreadRepository",
]

_ALL = -1  # SQLite's LIMIT for "no limit"


def _page_limit(limit: int | None) -> int:
    if limit is None:
        return _ALL
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be None or an integer >= 0, got {limit!r}")
    return limit


def _stored_id(obj: Thread | Message | Mode | ModeOutput | Tag) -> int:
    if obj.id is None:
        raise ValueError(f"{type(obj).__name__} has no id: create it first, update needs the stored id")
    return obj.id


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
        self._q: Any = session.queries


class SQLiteConfigurationRepository(_Repository):
    def get(self) -> Configuration | None:
        row = self._session.run("configuration", self._q.get_configuration)
        return None if row is None else mapping.configuration_from_row(row)

    def upsert(self, configuration: Configuration) -> Configuration:
        row = self._session.run(
            "configuration", self._q.upsert_configuration, **mapping.configuration_params(configuration)
        )
        return mapping.configuration_from_row(row)

    def delete(self) -> bool:
        return self._session.run("configuration", self._q.delete_configuration) is not None


class SQLiteThreadRepository(_Repository):
    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        page_limit = _page_limit(limit)
        if before is None:
            rows = self._session.rows("threads", self._q.list_threads_first, page_limit=page_limit)
        else:
            cursor = before.cursor if isinstance(before, Thread) else before
            rows = self._session.rows(
                "threads",
                self._q.list_threads_before,
                before_created_at=mapping.timestamp_param(cursor.at),
                before_id=cursor.id,
                page_limit=page_limit,
            )
        return [mapping.thread_from_row(row) for row in rows]

    def get(self, id: int) -> Thread:
        row = self._session.run("threads", self._q.get_thread, id=id)
        if row is None:
            raise NotFound("threads", id)
        return mapping.thread_from_row(row)

    def create(self, thread: Thread) -> Thread:
        row = self._session.run("threads", self._q.insert_thread, **mapping.thread_params(thread))
        return mapping.thread_from_row(row)

    def update(self, thread: Thread) -> Thread:
        id = _stored_id(thread)
        row = self._session.run("threads", self._q.update_thread, **mapping.thread_params(thread))
        if row is None:
            raise NotFound("threads", id)
        return mapping.thread_from_row(row)

    def delete(self, id: int) -> None:
        if self._session.run("threads", self._q.delete_thread, id=id) is None:
            raise NotFound("threads", id)


class SQLiteTagRepository(_Repository):
    def list(self) -> builtins.list[Tag]:
        return [mapping.tag_from_row(row) for row in self._session.rows("tags", self._q.list_tags)]

    def get(self, id: int) -> Tag:
        row = self._session.run("tags", self._q.get_tag, id=id)
        if row is None:
            raise NotFound("tags", id)
        return mapping.tag_from_row(row)

    def create(self, tag: Tag) -> Tag:
        return mapping.tag_from_row(self._session.run("tags", self._q.insert_tag, **mapping.tag_params(tag)))

    def update(self, tag: Tag) -> Tag:
        id = _stored_id(tag)
        row = self._session.run("tags", self._q.update_tag, **mapping.tag_params(tag))
        if row is None:
            raise NotFound("tags", id)
        return mapping.tag_from_row(row)

    def delete(self, id: int) -> None:
        if self._session.run("tags", self._q.delete_tag, id=id) is None:
            raise NotFound("tags", id)

    def of_message(self, message_id: int) -> builtins.list[Tag]:
        rows = self._session.rows("message_tags", self._q.list_tags_of_message, message_id=message_id)
        return [mapping.tag_from_row(row) for row in rows]

    def of_messages(self, message_ids: Sequence[int]) -> dict[int, tuple[Tag, ...]]:
        """The tags of many messages in one query: message id → its tags by id (messages without tags omitted)."""
        if not message_ids:
            return {}
        rows = self._session.rows(
            "message_tags", self._q.list_tags_of_messages, message_ids=json.dumps(list(message_ids))
        )
        found: dict[int, list[Tag]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(mapping.tag_from_row(row[1:]))
        return {message_id: tuple(tags) for message_id, tags in found.items()}

    def _require(self, table: str, id: int) -> None:
        query = self._q.get_message if table == "messages" else self._q.get_tag
        if self._session.run(table, query, id=id) is None:
            raise NotFound(table, id)

    def attach(self, message_id: int, tag_id: int) -> bool:
        try:
            added = self._session.run("message_tags", self._q.attach_tag, message_id=message_id, tag_id=tag_id)
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            self._require("messages", message_id)
            self._require("tags", tag_id)
            raise
        return added is not None

    def detach(self, message_id: int, tag_id: int) -> bool:
        removed = self._session.run("message_tags", self._q.detach_tag, message_id=message_id, tag_id=tag_id)
        return removed is not None

    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        wanted = sorted(set(tag_ids))
        with self._session.transaction():
            self._require("messages", message_id)
            self._replace_links(message_id, wanted, lambda tag_id: NotFound("tags", tag_id))
            return self.of_message(message_id)

    def _replace_links(self, message_id: int, tag_ids: Sequence[int], missing: Any) -> None:
        """Make the message's links exactly `tag_ids` (inside the caller's transaction)."""
        ids = json.dumps(list(tag_ids))
        self._session.rows("message_tags", self._q.detach_tags_not_in, message_id=message_id, tag_ids=ids)
        if not tag_ids:
            return
        try:
            self._session.rows("message_tags", self._q.attach_tags, message_id=message_id, tag_ids=ids)
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            for tag_id in tag_ids:
                if self._session.run("tags", self._q.get_tag, id=tag_id) is None:
                    raise missing(tag_id) from exc
            raise


class SQLiteMessageRepository(_Repository):
    def __init__(self, session: Session, tags: SQLiteTagRepository) -> None:
        super().__init__(session)
        self._tags = tags

    def _with_tags(self, rows: Sequence[Sequence[Any]]) -> builtins.list[Message]:
        tags = self._tags.of_messages([row[0] for row in rows])
        return [mapping.message_from_row(row, tags.get(row[0], ())) for row in rows]

    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        page_limit = _page_limit(limit)
        with self._session.snapshot():
            if after is None:
                rows = self._session.rows(
                    "messages", self._q.list_messages_first, thread_id=thread_id, page_limit=page_limit
                )
            else:
                cursor = after.cursor if isinstance(after, Message) else after
                rows = self._session.rows(
                    "messages",
                    self._q.list_messages_after,
                    thread_id=thread_id,
                    after_timestamp=mapping.timestamp_param(cursor.at),
                    after_id=cursor.id,
                    page_limit=page_limit,
                )
            return self._with_tags(rows)

    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        with self._session.snapshot():
            return self._with_tags(self._session.rows("messages", self._q.list_messages_of_tag, tag_id=tag_id))

    def get(self, id: int) -> Message:
        with self._session.snapshot():
            row = self._session.run("messages", self._q.get_message, id=id)
            if row is None:
                raise NotFound("messages", id)
            return mapping.message_from_row(row, tuple(self._tags.of_message(id)))

    def _tag_ids(self, message: Message) -> builtins.list[int]:
        ids = []
        for tag in message.tags:
            if tag.id is None:
                raise ValueError(f"Message.tags: tag {tag.name!r} has no id; create it first")
            ids.append(tag.id)
        return sorted(set(ids))

    def _missing_tag(self, tag_id: int) -> ConstraintViolation:
        return ConstraintViolation(
            f"message_tags.tag_id: no tags row with id {tag_id!r} (FOREIGN KEY constraint failed)",
            kind="FOREIGN KEY",
            table="message_tags",
            column="tag_id",
        )

    def _write(self, query: Any, message: Message) -> Sequence[Any] | None:
        try:
            row: Sequence[Any] | None = self._session.run("messages", query, **mapping.message_params(message))
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            raise _missing_reference(
                self._session, "messages", [("thread_id", "threads", message.thread_id)], exc
            ) from exc
        return row

    def create(self, message: Message) -> Message:
        tag_ids = self._tag_ids(message)
        if not tag_ids:
            row = self._write(self._q.insert_message, message)
            assert row is not None
            return mapping.message_from_row(row, ())
        with self._session.transaction():
            row = self._write(self._q.insert_message, message)
            assert row is not None
            self._tags._replace_links(row[0], tag_ids, self._missing_tag)
            return mapping.message_from_row(row, tuple(self._tags.of_message(row[0])))

    def update(self, message: Message) -> Message:
        id = _stored_id(message)
        tag_ids = self._tag_ids(message)
        with self._session.transaction():
            row = self._write(self._q.update_message, message)
            if row is None:
                raise NotFound("messages", id)
            self._tags._replace_links(id, tag_ids, self._missing_tag)
            return mapping.message_from_row(row, tuple(self._tags.of_message(id)))

    def delete(self, id: int) -> None:
        if self._session.run("messages", self._q.delete_message, id=id) is None:
            raise NotFound("messages", id)


class SQLiteModeRepository(_Repository):
    def list(self) -> builtins.list[Mode]:
        return [mapping.mode_from_row(row) for row in self._session.rows("modes", self._q.list_modes)]

    def get(self, id: int) -> Mode:
        row = self._session.run("modes", self._q.get_mode, id=id)
        if row is None:
            raise NotFound("modes", id)
        return mapping.mode_from_row(row)

    def create(self, mode: Mode) -> Mode:
        return mapping.mode_from_row(self._session.run("modes", self._q.insert_mode, **mapping.mode_params(mode)))

    def update(self, mode: Mode) -> Mode:
        id = _stored_id(mode)
        row = self._session.run("modes", self._q.update_mode, **mapping.mode_params(mode))
        if row is None:
            raise NotFound("modes", id)
        return mapping.mode_from_row(row)

    def delete(self, id: int) -> None:
        if self._session.run("modes", self._q.delete_mode, id=id) is None:
            raise NotFound("modes", id)

    def seed_builtins(self) -> builtins.list[Mode]:
        rows = self._session.rows("modes", self._q.seed_builtin_modes)
        return sorted((mapping.mode_from_row(row) for row in rows), key=lambda mode: mode.id or 0)


class SQLiteModeOutputRepository(_Repository):
    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        rows = self._session.rows("mode_outputs", self._q.list_mode_outputs_of_thread, thread_id=thread_id)
        return [mapping.mode_output_from_row(row) for row in rows]

    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        rows = self._session.rows("mode_outputs", self._q.list_mode_outputs_of_mode, mode_id=mode_id)
        return [mapping.mode_output_from_row(row) for row in rows]

    def get(self, id: int) -> ModeOutput:
        row = self._session.run("mode_outputs", self._q.get_mode_output, id=id)
        if row is None:
            raise NotFound("mode_outputs", id)
        return mapping.mode_output_from_row(row)

    def _write(self, query: Any, output: ModeOutput) -> Sequence[Any] | None:
        try:
            row: Sequence[Any] | None = self._session.run("mode_outputs", query, **mapping.mode_output_params(output))
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            refs = [("thread_id", "threads", output.thread_id), ("mode_id", "modes", output.mode_id)]
            raise _missing_reference(self._session, "mode_outputs", refs, exc) from exc
        return row

    def create(self, output: ModeOutput) -> ModeOutput:
        row = self._write(self._q.insert_mode_output, output)
        assert row is not None
        return mapping.mode_output_from_row(row)

    def update(self, output: ModeOutput) -> ModeOutput:
        id = _stored_id(output)
        row = self._write(self._q.update_mode_output, output)
        if row is None:
            raise NotFound("mode_outputs", id)
        return mapping.mode_output_from_row(row)

    def delete(self, id: int) -> None:
        if self._session.run("mode_outputs", self._q.delete_mode_output, id=id) is None:
            raise NotFound("mode_outputs", id)
