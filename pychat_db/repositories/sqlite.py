"""The repositories on SQLite: each method runs its plan (`pychat_db.repositories.plans`) on the connection.

The plans hold every method's body once (which generated queries, in which order, what
a missing row or a FOREIGN KEY failure means); `pychat_db.aio` runs the same plans on
APSW's async connection. The queries are the generated typed wrappers
(`pychat_db.generated.queries`, made of `pychat_db.querying`); APSW errors become the
library's own. A method writing more than one statement runs them in one transaction
(a savepoint when the caller already holds one), so either all of its writes are kept
or none.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from pychat_db.models import Configuration, Cursor, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories import protocols
from pychat_db.repositories.plans import (
    ConfigurationPlans,
    MessagePlans,
    ModeOutputPlans,
    ModePlans,
    Plan,
    TagPlans,
    ThreadPlans,
    run,
)
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


class _Repository:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._conn = session.conn

    def _run(self, plan: Plan[_R]) -> _R:
        return run(self._session, plan)


class SQLiteConfigurationRepository(_Repository):
    def get(self) -> Configuration | None:
        return self._run(ConfigurationPlans.get())

    def upsert(self, configuration: Configuration) -> Configuration:
        return self._run(ConfigurationPlans.upsert(configuration))

    def delete(self) -> bool:
        return self._run(ConfigurationPlans.delete())


class SQLiteThreadRepository(_Repository):
    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        return self._run(ThreadPlans.list(limit, before))

    def get(self, id: int) -> Thread:
        return self._run(ThreadPlans.get(id))

    def create(self, thread: Thread) -> Thread:
        return self._run(ThreadPlans.create(thread))

    def update(self, thread: Thread) -> Thread:
        return self._run(ThreadPlans.update(thread))

    def delete(self, id: int) -> None:
        return self._run(ThreadPlans.delete(id))


class SQLiteTagRepository(_Repository):
    def list(self) -> builtins.list[Tag]:
        return self._run(TagPlans.list())

    def get(self, id: int) -> Tag:
        return self._run(TagPlans.get(id))

    def create(self, tag: Tag) -> Tag:
        return self._run(TagPlans.create(tag))

    def update(self, tag: Tag) -> Tag:
        return self._run(TagPlans.update(tag))

    def delete(self, id: int) -> None:
        return self._run(TagPlans.delete(id))

    def of_message(self, message_id: int) -> builtins.list[Tag]:
        return self._run(TagPlans.of_message(message_id))

    def of_messages(self, message_ids: Sequence[int]) -> dict[int, tuple[Tag, ...]]:
        """The tags of many messages in one query: message id → its tags by id (messages without tags omitted)."""
        return self._run(TagPlans.of_messages(message_ids))

    def attach(self, message_id: int, tag_id: int) -> bool:
        return self._run(TagPlans.attach(message_id, tag_id))

    def detach(self, message_id: int, tag_id: int) -> bool:
        return self._run(TagPlans.detach(message_id, tag_id))

    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        return self._run(TagPlans.set_tags(message_id, tag_ids))


class SQLiteMessageRepository(_Repository):
    def __init__(self, session: Session, tags: SQLiteTagRepository) -> None:
        super().__init__(session)
        self._tags = tags

    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        return self._run(MessagePlans.list(thread_id, limit, after))

    def list_before(
        self, thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        return self._run(MessagePlans.list_before(thread_id, limit, before))

    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        return self._run(MessagePlans.list_by_tag(tag_id))

    def get(self, id: int) -> Message:
        return self._run(MessagePlans.get(id))

    def create(self, message: Message) -> Message:
        return self._run(MessagePlans.create(message))

    def update(self, message: Message) -> Message:
        return self._run(MessagePlans.update(message))

    def delete(self, id: int) -> None:
        return self._run(MessagePlans.delete(id))


class SQLiteModeRepository(_Repository):
    def list(self) -> builtins.list[Mode]:
        return self._run(ModePlans.list())

    def get(self, id: int) -> Mode:
        return self._run(ModePlans.get(id))

    def create(self, mode: Mode) -> Mode:
        return self._run(ModePlans.create(mode))

    def update(self, mode: Mode) -> Mode:
        return self._run(ModePlans.update(mode))

    def delete(self, id: int) -> None:
        return self._run(ModePlans.delete(id))

    def seed_builtins(self) -> builtins.list[Mode]:
        return self._run(ModePlans.seed_builtins())


class SQLiteModeOutputRepository(_Repository):
    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        return self._run(ModeOutputPlans.list_by_thread(thread_id))

    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        return self._run(ModeOutputPlans.list_by_mode(mode_id))

    def get(self, id: int) -> ModeOutput:
        return self._run(ModeOutputPlans.get(id))

    def create(self, output: ModeOutput) -> ModeOutput:
        return self._run(ModeOutputPlans.create(output))

    def update(self, output: ModeOutput) -> ModeOutput:
        return self._run(ModeOutputPlans.update(output))

    def delete(self, id: int) -> None:
        return self._run(ModeOutputPlans.delete(id))


if TYPE_CHECKING:  # mypy checks that each implementation satisfies its protocol; never runs

    def _conforms(session: Session) -> None:
        tags = SQLiteTagRepository(session)
        _configuration: protocols.ConfigurationRepository = SQLiteConfigurationRepository(session)
        _threads: protocols.ThreadRepository = SQLiteThreadRepository(session)
        _messages: protocols.MessageRepository = SQLiteMessageRepository(session, tags)
        _modes: protocols.ModeRepository = SQLiteModeRepository(session)
        _outputs: protocols.ModeOutputRepository = SQLiteModeOutputRepository(session)
        _tags: protocols.TagRepository = tags
