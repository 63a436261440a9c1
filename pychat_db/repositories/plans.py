"""Every repository method written once, as a plan of queries that a sync or an async runner carries out.

A plan is a generator: it yields a step (a generated query with its arguments, or a
nested plan to run as a transaction or a snapshot) and receives the step's result,
so the method's logic (which queries, in which order, what a missing row or a
FOREIGN KEY failure means) has no I/O of its own. `run(session, plan)` carries it out
on a `Session`: the sync repositories call it directly, and `pychat_db.aio` calls it
in the worker thread of APSW's async connection, one trip per method. A step that
fails is thrown back into the plan as the library's error
(`pychat_db.errors.translate`), so a plan catches `ConstraintViolation` where it is
raised, as sync code would.

`yield from step` gives the step's typed result: `row = yield from query("threads",
threads_q.get_thread, id=id)` is a `ThreadRow | None` for mypy.

The plan classes (`ThreadPlans`, ...) have the methods of the repository protocols
(`pychat_db.repositories.protocols`), same names and arguments, each returning a
`Plan` of what the protocol's method returns; tests/test_aio_protocols.py checks the
signatures against the protocols.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence

from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.generated.queries import configuration as configuration_q
from pychat_db.generated.queries import messages as messages_q
from pychat_db.generated.queries import mode_outputs as mode_outputs_q
from pychat_db.generated.queries import modes as modes_q
from pychat_db.generated.queries import tags as tags_q
from pychat_db.generated.queries import threads as threads_q
from pychat_db.generated.rows import MessageRow, ModeOutputRow
from pychat_db.models import Configuration, Cursor, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories import mapping
from pychat_db.repositories.steps import (
    Atomic,
    Plan,
    Query,
    Step,
    exists,
    limit_of,
    missing_reference,
    query,
    returned,
    run,
    run_query,
    snapshot,
    transaction,
)

__all__ = [
    "PLANS",
    "Atomic",
    "ConfigurationPlans",
    "MessagePlans",
    "ModeOutputPlans",
    "ModePlans",
    "Plan",
    "Query",
    "Step",
    "TagPlans",
    "ThreadPlans",
    "query",
    "run",
    "run_query",
    "snapshot",
    "transaction",
]


class ConfigurationPlans:
    @staticmethod
    def get() -> Plan[Configuration | None]:
        row = yield from query("configuration", configuration_q.get_configuration)
        return None if row is None else mapping.configuration(row)

    @staticmethod
    def upsert(configuration: Configuration) -> Plan[Configuration]:
        row = yield from query(
            "configuration",
            configuration_q.upsert_configuration,
            id=configuration.id,
            api_key=configuration.api_key,
            base_url=configuration.base_url,
            model_name=configuration.model_name,
        )
        return mapping.configuration(returned(row, "configuration"))

    @staticmethod
    def delete() -> Plan[bool]:
        deleted = yield from query("configuration", configuration_q.delete_configuration)
        return deleted is not None


class ThreadPlans:
    @staticmethod
    def list(limit: int | None = None, before: Thread | Cursor | None = None) -> Plan[builtins.list[Thread]]:
        page_limit = limit_of(limit)
        if before is None:
            rows = yield from query("threads", threads_q.list_threads_first, page_limit=page_limit)
        else:
            cursor = before.cursor if isinstance(before, Thread) else before
            rows = yield from query(
                "threads",
                threads_q.list_threads_before,
                before_created_at=cursor.at,
                before_id=cursor.id,
                page_limit=page_limit,
            )
        return [mapping.thread(row) for row in rows]

    @staticmethod
    def get(id: int) -> Plan[Thread]:
        row = yield from query("threads", threads_q.get_thread, id=id)
        if row is None:
            raise NotFound("threads", id)
        return mapping.thread(row)

    @staticmethod
    def create(thread: Thread) -> Plan[Thread]:
        row = yield from query(
            "threads", threads_q.insert_thread, id=thread.id, name=thread.name, created_at=thread.created_at
        )
        return mapping.thread(returned(row, "threads"))

    @staticmethod
    def update(thread: Thread) -> Plan[Thread]:
        id = mapping.stored_id(thread)
        row = yield from query(
            "threads", threads_q.update_thread, id=id, name=thread.name, created_at=thread.created_at
        )
        if row is None:
            raise NotFound("threads", id)
        return mapping.thread(row)

    @staticmethod
    def delete(id: int) -> Plan[None]:
        deleted = yield from query("threads", threads_q.delete_thread, id=id)
        if deleted is None:
            raise NotFound("threads", id)


class TagPlans:
    @staticmethod
    def list() -> Plan[builtins.list[Tag]]:
        rows = yield from query("tags", tags_q.list_tags)
        return [mapping.tag(row) for row in rows]

    @staticmethod
    def get(id: int) -> Plan[Tag]:
        row = yield from query("tags", tags_q.get_tag, id=id)
        if row is None:
            raise NotFound("tags", id)
        return mapping.tag(row)

    @staticmethod
    def create(tag: Tag) -> Plan[Tag]:
        row = yield from query(
            "tags",
            tags_q.insert_tag,
            id=tag.id,
            name=tag.name,
            description=tag.description,
            is_editable=tag.is_editable,
        )
        return mapping.tag(returned(row, "tags"))

    @staticmethod
    def update(tag: Tag) -> Plan[Tag]:
        id = mapping.stored_id(tag)
        row = yield from query(
            "tags", tags_q.update_tag, id=id, name=tag.name, description=tag.description, is_editable=tag.is_editable
        )
        if row is None:
            raise NotFound("tags", id)
        return mapping.tag(row)

    @staticmethod
    def delete(id: int) -> Plan[None]:
        deleted = yield from query("tags", tags_q.delete_tag, id=id)
        if deleted is None:
            raise NotFound("tags", id)

    @staticmethod
    def of_message(message_id: int) -> Plan[builtins.list[Tag]]:
        rows = yield from query("message_tags", tags_q.list_tags_of_message, message_id=message_id)
        return [mapping.tag(row) for row in rows]

    @staticmethod
    def of_messages(message_ids: Sequence[int]) -> Plan[dict[int, tuple[Tag, ...]]]:
        """The tags of many messages in one query: message id → its tags by id (messages without tags omitted)."""
        if not message_ids:
            return {}
        rows = yield from query("message_tags", tags_q.list_tags_of_messages, message_ids=message_ids)
        found: dict[int, builtins.list[Tag]] = {}
        made: dict[int, Tag] = {}  # one Tag per tag: a page's messages share a few (models are immutable)
        for row in rows:
            tag = made.get(row.id)
            if tag is None:
                tag = made[row.id] = mapping.tag(row)
            found.setdefault(row.message_id, []).append(tag)
        return {message_id: tuple(tags) for message_id, tags in found.items()}

    @staticmethod
    def _require(table: str, id: int) -> Plan[None]:
        if not (yield from exists(table, id)):
            raise NotFound(table, id)

    @staticmethod
    def attach(message_id: int, tag_id: int) -> Plan[bool]:
        try:
            added = yield from query("message_tags", tags_q.attach_tag, message_id=message_id, tag_id=tag_id)
        except ConstraintViolation as exc:
            if exc.kind == "FOREIGN KEY":
                yield from TagPlans._require("messages", message_id)
                yield from TagPlans._require("tags", tag_id)
            raise
        return added is not None

    @staticmethod
    def detach(message_id: int, tag_id: int) -> Plan[bool]:
        detached = yield from query("message_tags", tags_q.detach_tag, message_id=message_id, tag_id=tag_id)
        return detached is not None

    @staticmethod
    def set_tags(message_id: int, tag_ids: Iterable[int]) -> Plan[builtins.list[Tag]]:
        wanted = sorted(set(tag_ids))
        return (yield from transaction(TagPlans._set_tags(message_id, wanted)))

    @staticmethod
    def _set_tags(message_id: int, tag_ids: Sequence[int]) -> Plan[builtins.list[Tag]]:
        yield from TagPlans._require("messages", message_id)
        missing = yield from TagPlans.replace_links(message_id, tag_ids)
        if missing is not None:
            raise NotFound("tags", missing)
        return (yield from TagPlans.of_message(message_id))

    @staticmethod
    def replace_links(message_id: int, tag_ids: Sequence[int]) -> Plan[int | None]:
        """Make the message's links exactly `tag_ids` (in the caller's transaction).

        Returns the first tag id that does not exist (nothing linked then; the
        caller raises, which rolls its transaction back), else None.
        """
        yield from query("message_tags", tags_q.detach_tags_not_in, message_id=message_id, tag_ids=tag_ids)
        if not tag_ids:
            return None
        try:
            yield from query("message_tags", tags_q.attach_tags, message_id=message_id, tag_ids=tag_ids)
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            for tag_id in tag_ids:
                if not (yield from exists("tags", tag_id)):
                    return tag_id
            raise
        return None


class MessagePlans:
    @staticmethod
    def _with_tags(rows: Sequence[MessageRow]) -> Plan[builtins.list[Message]]:
        tags = yield from TagPlans.of_messages([row.id for row in rows])
        return [mapping.message(row, tags.get(row.id, ())) for row in rows]

    @staticmethod
    def list(
        thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> Plan[builtins.list[Message]]:
        page_limit = limit_of(limit)
        return (yield from snapshot(MessagePlans._list(thread_id, page_limit, after)))

    @staticmethod
    def _list(thread_id: int, page_limit: int, after: Message | Cursor | None) -> Plan[builtins.list[Message]]:
        if after is None:
            rows = yield from query(
                "messages", messages_q.list_messages_first, thread_id=thread_id, page_limit=page_limit
            )
        else:
            cursor = after.cursor if isinstance(after, Message) else after
            rows = yield from query(
                "messages",
                messages_q.list_messages_after,
                thread_id=thread_id,
                after_timestamp=cursor.at,
                after_id=cursor.id,
                page_limit=page_limit,
            )
        return (yield from MessagePlans._with_tags(rows))

    @staticmethod
    def list_before(
        thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> Plan[builtins.list[Message]]:
        page_limit = limit_of(limit)
        return (yield from snapshot(MessagePlans._list_before(thread_id, page_limit, before)))

    @staticmethod
    def _list_before(thread_id: int, page_limit: int, before: Message | Cursor | None) -> Plan[builtins.list[Message]]:
        if before is None:
            rows = yield from query(
                "messages", messages_q.list_messages_last, thread_id=thread_id, page_limit=page_limit
            )
        else:
            cursor = before.cursor if isinstance(before, Message) else before
            rows = yield from query(
                "messages",
                messages_q.list_messages_before,
                thread_id=thread_id,
                before_timestamp=cursor.at,
                before_id=cursor.id,
                page_limit=page_limit,
            )
        rows.reverse()
        return (yield from MessagePlans._with_tags(rows))

    @staticmethod
    def list_by_tag(tag_id: int) -> Plan[builtins.list[Message]]:
        return (yield from snapshot(MessagePlans._list_by_tag(tag_id)))

    @staticmethod
    def _list_by_tag(tag_id: int) -> Plan[builtins.list[Message]]:
        rows = yield from query("messages", messages_q.list_messages_of_tag, tag_id=tag_id)
        return (yield from MessagePlans._with_tags(rows))

    @staticmethod
    def get(id: int) -> Plan[Message]:
        return (yield from snapshot(MessagePlans._get(id)))

    @staticmethod
    def _get(id: int) -> Plan[Message]:
        row = yield from query("messages", messages_q.get_message, id=id)
        if row is None:
            raise NotFound("messages", id)
        tags = yield from TagPlans.of_message(id)
        return mapping.message(row, tuple(tags))

    @staticmethod
    def _tag_ids(message: Message) -> builtins.list[int]:
        ids = set()
        for tag in message.tags:
            if tag.id is None:
                raise ValueError(f"Message.tags: tag {tag.name!r} has no id; create it first")
            ids.add(tag.id)
        return sorted(ids)

    @staticmethod
    def _write(message: Message, *, insert: bool) -> Plan[MessageRow | None]:
        try:
            if insert:
                step = query(
                    "messages",
                    messages_q.insert_message,
                    id=message.id,
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
            else:
                step = query(
                    "messages",
                    messages_q.update_message,
                    id=mapping.stored_id(message),
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
            return (yield from step)
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            refs = [("thread_id", "threads", message.thread_id)]
            raise (yield from missing_reference("messages", refs, exc)) from exc

    @staticmethod
    def _link(message_id: int, tag_ids: Sequence[int]) -> Plan[None]:
        missing = yield from TagPlans.replace_links(message_id, tag_ids)
        if missing is not None:
            raise ConstraintViolation(
                f"message_tags.tag_id: no tags row with id {missing!r} (FOREIGN KEY constraint failed)",
                kind="FOREIGN KEY",
                table="message_tags",
                column="tag_id",
            )

    @staticmethod
    def create(message: Message) -> Plan[Message]:
        tag_ids = MessagePlans._tag_ids(message)
        if not tag_ids:
            row = yield from MessagePlans._write(message, insert=True)
            return mapping.message(returned(row, "messages"), ())
        return (yield from transaction(MessagePlans._create_tagged(message, tag_ids)))

    @staticmethod
    def _create_tagged(message: Message, tag_ids: Sequence[int]) -> Plan[Message]:
        row = returned((yield from MessagePlans._write(message, insert=True)), "messages")
        yield from MessagePlans._link(row.id, tag_ids)
        tags = yield from TagPlans.of_message(row.id)
        return mapping.message(row, tuple(tags))

    @staticmethod
    def update(message: Message) -> Plan[Message]:
        id = mapping.stored_id(message)
        tag_ids = MessagePlans._tag_ids(message)
        return (yield from transaction(MessagePlans._update(message, id, tag_ids)))

    @staticmethod
    def _update(message: Message, id: int, tag_ids: Sequence[int]) -> Plan[Message]:
        row = yield from MessagePlans._write(message, insert=False)
        if row is None:
            raise NotFound("messages", id)
        yield from MessagePlans._link(id, tag_ids)
        tags = yield from TagPlans.of_message(id)
        return mapping.message(row, tuple(tags))

    @staticmethod
    def delete(id: int) -> Plan[None]:
        deleted = yield from query("messages", messages_q.delete_message, id=id)
        if deleted is None:
            raise NotFound("messages", id)


class ModePlans:
    @staticmethod
    def list() -> Plan[builtins.list[Mode]]:
        rows = yield from query("modes", modes_q.list_modes)
        return [mapping.mode(row) for row in rows]

    @staticmethod
    def get(id: int) -> Plan[Mode]:
        row = yield from query("modes", modes_q.get_mode, id=id)
        if row is None:
            raise NotFound("modes", id)
        return mapping.mode(row)

    @staticmethod
    def create(mode: Mode) -> Plan[Mode]:
        row = yield from query(
            "modes", modes_q.insert_mode, id=mode.id, name=mode.name, prompt=mode.prompt, is_editable=mode.is_editable
        )
        return mapping.mode(returned(row, "modes"))

    @staticmethod
    def update(mode: Mode) -> Plan[Mode]:
        id = mapping.stored_id(mode)
        row = yield from query(
            "modes", modes_q.update_mode, id=id, name=mode.name, prompt=mode.prompt, is_editable=mode.is_editable
        )
        if row is None:
            raise NotFound("modes", id)
        return mapping.mode(row)

    @staticmethod
    def delete(id: int) -> Plan[None]:
        deleted = yield from query("modes", modes_q.delete_mode, id=id)
        if deleted is None:
            raise NotFound("modes", id)

    @staticmethod
    def seed_builtins() -> Plan[builtins.list[Mode]]:
        rows = yield from query("modes", modes_q.seed_builtin_modes)
        return sorted((mapping.mode(row) for row in rows), key=lambda mode: mode.id or 0)


class ModeOutputPlans:
    @staticmethod
    def list_by_thread(thread_id: int) -> Plan[builtins.list[ModeOutput]]:
        rows = yield from query("mode_outputs", mode_outputs_q.list_mode_outputs_of_thread, thread_id=thread_id)
        return [mapping.mode_output(row) for row in rows]

    @staticmethod
    def list_by_mode(mode_id: int) -> Plan[builtins.list[ModeOutput]]:
        rows = yield from query("mode_outputs", mode_outputs_q.list_mode_outputs_of_mode, mode_id=mode_id)
        return [mapping.mode_output(row) for row in rows]

    @staticmethod
    def get(id: int) -> Plan[ModeOutput]:
        row = yield from query("mode_outputs", mode_outputs_q.get_mode_output, id=id)
        if row is None:
            raise NotFound("mode_outputs", id)
        return mapping.mode_output(row)

    @staticmethod
    def _write(output: ModeOutput, *, insert: bool) -> Plan[ModeOutputRow | None]:
        try:
            if insert:
                step = query(
                    "mode_outputs",
                    mode_outputs_q.insert_mode_output,
                    id=output.id,
                    thread_id=output.thread_id,
                    mode_id=output.mode_id,
                    created_at=output.created_at,
                    content=output.content,
                )
            else:
                step = query(
                    "mode_outputs",
                    mode_outputs_q.update_mode_output,
                    id=mapping.stored_id(output),
                    thread_id=output.thread_id,
                    mode_id=output.mode_id,
                    created_at=output.created_at,
                    content=output.content,
                )
            return (yield from step)
        except ConstraintViolation as exc:
            if exc.kind != "FOREIGN KEY":
                raise
            refs = [("thread_id", "threads", output.thread_id), ("mode_id", "modes", output.mode_id)]
            raise (yield from missing_reference("mode_outputs", refs, exc)) from exc

    @staticmethod
    def create(output: ModeOutput) -> Plan[ModeOutput]:
        row = yield from ModeOutputPlans._write(output, insert=True)
        return mapping.mode_output(returned(row, "mode_outputs"))

    @staticmethod
    def update(output: ModeOutput) -> Plan[ModeOutput]:
        id = mapping.stored_id(output)
        row = yield from ModeOutputPlans._write(output, insert=False)
        if row is None:
            raise NotFound("mode_outputs", id)
        return mapping.mode_output(row)

    @staticmethod
    def delete(id: int) -> Plan[None]:
        deleted = yield from query("mode_outputs", mode_outputs_q.delete_mode_output, id=id)
        if deleted is None:
            raise NotFound("mode_outputs", id)


# The plans of each attribute of `protocols.Repositories`.
PLANS: dict[str, type] = {
    "configuration": ConfigurationPlans,
    "threads": ThreadPlans,
    "messages": MessagePlans,
    "modes": ModePlans,
    "mode_outputs": ModeOutputPlans,
    "tags": TagPlans,
}
