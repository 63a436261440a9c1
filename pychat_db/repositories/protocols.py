"""What the app's screens and services may ask of storage, as `typing.Protocol`s.

The SQLite implementations (`pychat_db.repositories.sqlite`) and the async protocols
(`pychat_db.aio.protocols`) are generated from these declarations by `python -m codegen`
(signatures and docstrings as written here); tests hold an in-memory model to the same
protocols. Conventions shared by every repository:

* `create` stores an object and returns it as stored, with its id; an id given
  on the object (a legacy one) is kept, `None` lets SQLite assign one.
* `get`, `update` and `delete` raise `pychat_db.errors.NotFound` for an unknown id.
* A write that breaks a constraint raises `pychat_db.errors.ConstraintViolation`
  naming table and column (a reference to a missing row is kind "FOREIGN KEY",
  e.g. `messages.thread_id`); nothing of that write is kept.
* Listings return `list`s in a fixed order, ties broken by id.

Every method is marked `@reads` or `@writes(<ids it touches>, replay=...)`
(`pychat_db.repositories.methods`): the switch-over's forwarders and the async
repositories are derived from those marks, so a new method needs its declaration and
mark here, its plan (`repositories/plans.py`), its legacy implementation
(`legacy/repositories.py`) and `make codegen`, nothing more.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol

from pychat_db.models import Configuration, Cursor, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories.methods import RESULT_ID, Replay, reads, writes

__all__ = [
    "ConfigurationRepository",
    "MessageRepository",
    "ModeOutputRepository",
    "ModeRepository",
    "Repositories",
    "TagRepository",
    "ThreadRepository",
]

_stored = writes(RESULT_ID, replay=Replay.RESULT)  # create/update/upsert: repeated with the object as stored
_by_id = writes("id", replay=Replay.ARGUMENTS)  # delete(id)


class ConfigurationRepository(Protocol):
    @reads
    def get(self) -> Configuration | None:
        """The saved configuration, None when there is none."""
        ...

    @_stored
    def upsert(self, configuration: Configuration) -> Configuration:
        """Save the configuration (the one row: inserted or replaced) and return it as stored."""
        ...

    @writes(replay=Replay.ARGUMENTS)
    def delete(self) -> bool:
        """Remove the configuration; False when there was none."""
        ...


class ThreadRepository(Protocol):
    @reads
    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        """Threads newest first (created_at, then id, descending), at most `limit`.

        `before` is the last thread of the previous page (or its `cursor`): the
        page starts just after it.
        """
        ...

    @reads
    def get(self, id: int) -> Thread: ...

    @_stored
    def create(self, thread: Thread) -> Thread: ...

    @_stored
    def update(self, thread: Thread) -> Thread: ...

    @_by_id
    def delete(self, id: int) -> None:
        """Delete the thread with its messages (and their tag links) and mode outputs."""
        ...


class MessageRepository(Protocol):
    @reads
    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        """A thread's messages with their tags, in (timestamp, id) order, at most `limit`.

        `after` is the last message of the previous page (or its `cursor`).
        """
        ...

    @reads
    def list_before(
        self, thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        """The `limit` messages just before `before` (default: the thread's latest), in (timestamp, id) order.

        A chat screen opens on `list_before(thread_id, 50)` and scrolls back
        with `before=page[0]`.
        """
        ...

    @reads
    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        """The messages carrying a tag, with their tags, in (timestamp, id) order."""
        ...

    @reads
    def get(self, id: int) -> Message: ...

    @_stored
    def create(self, message: Message) -> Message:
        """Store the message and link its `tags` (which must be stored tags)."""
        ...

    @_stored
    def update(self, message: Message) -> Message:
        """Store the message's fields and make its tag links exactly `message.tags`."""
        ...

    @_by_id
    def delete(self, id: int) -> None: ...


class ModeRepository(Protocol):
    @reads
    def list(self) -> builtins.list[Mode]:
        """Every mode: built-in (not editable) ones first, then by name and id."""
        ...

    @reads
    def get(self, id: int) -> Mode: ...

    @_stored
    def create(self, mode: Mode) -> Mode: ...

    @_stored
    def update(self, mode: Mode) -> Mode: ...

    @_by_id
    def delete(self, id: int) -> None:
        """Delete the mode and its outputs."""
        ...

    @writes(replay=Replay.CREATE_EACH)
    def seed_builtins(self) -> builtins.list[Mode]:
        """Insert the built-in modes if there are no modes at all; return those inserted."""
        ...


class ModeOutputRepository(Protocol):
    @reads
    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        """A thread's mode outputs, newest first (created_at, then id, descending)."""
        ...

    @reads
    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        """A mode's outputs over every thread, newest first."""
        ...

    @reads
    def get(self, id: int) -> ModeOutput: ...

    @_stored
    def create(self, output: ModeOutput) -> ModeOutput: ...

    @_stored
    def update(self, output: ModeOutput) -> ModeOutput: ...

    @_by_id
    def delete(self, id: int) -> None: ...


class TagRepository(Protocol):
    @reads
    def list(self) -> builtins.list[Tag]:
        """Every tag, by name and id."""
        ...

    @reads
    def get(self, id: int) -> Tag: ...

    @_stored
    def create(self, tag: Tag) -> Tag: ...

    @_stored
    def update(self, tag: Tag) -> Tag: ...

    @_by_id
    def delete(self, id: int) -> None:
        """Delete the tag and its links to messages."""
        ...

    @reads
    def of_message(self, message_id: int) -> builtins.list[Tag]:
        """The tags of a message, by id."""
        ...

    @writes("message_id", "tag_id", replay=Replay.ARGUMENTS)
    def attach(self, message_id: int, tag_id: int) -> bool:
        """Link the tag to the message; False when it already was. NotFound for an unknown message or tag."""
        ...

    @writes("message_id", "tag_id", replay=Replay.ARGUMENTS)
    def detach(self, message_id: int, tag_id: int) -> bool:
        """Unlink the tag from the message; False when it was not linked."""
        ...

    @writes("message_id", replay=Replay.ARGUMENTS)
    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        """Make the message's tags exactly `tag_ids`; return them by id. NotFound for an unknown message or tag."""
        ...


class Repositories(Protocol):
    """The app's view of storage: `Database`, `LegacyRepositories` and the switch-over wrappers all offer it.

    Its properties name the repositories that `methods.describe_all(Repositories)` describes.
    """

    @property
    def configuration(self) -> ConfigurationRepository: ...

    @property
    def threads(self) -> ThreadRepository: ...

    @property
    def messages(self) -> MessageRepository: ...

    @property
    def modes(self) -> ModeRepository: ...

    @property
    def mode_outputs(self) -> ModeOutputRepository: ...

    @property
    def tags(self) -> TagRepository: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...
