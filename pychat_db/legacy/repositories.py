"""The repository protocols (`pychat_db.repositories.protocols`) over the legacy document store.

Behind the protocols the legacy side answers exactly what SQLite answers, so the
two can be swapped, written in parallel and compared:

* values are converted by the same generated mappers as the SQLite side and kept
  as the stored (contract) values, so orderings compare the same text;
* ids: a given id is kept; otherwise the id SQLite would assign (largest + 1);
* refusals carry the same exceptions, tables, columns and kinds: `NotFound`,
  `ConstraintViolation` (PRIMARY KEY for a taken id, FOREIGN KEY for a link to a
  missing object, NOT NULL / DATATYPE / CHECK for bad values), checked in the
  order SQLite checks them; each write is atomic (a store transaction);
* deletes cascade like SQLite's ON DELETE CASCADE. Isar itself does not cascade:
  deleting a thread there leaves its messages with an empty thread link. The old
  app's services deleted a thread's messages and mode outputs themselves, in the
  same write transaction; that is what these repositories do (the backlinks give
  the objects to delete), then the store's Isar-style `delete_object` cleans every
  remaining link. A store loaded from Isar data may still hold such orphans (an
  empty link): they are kept and saved as they are (nothing is lost), but no
  repository read shows them (`get` raises NotFound), as SQLite has no such rows.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pychat_db.convert import timestamp_to_db
from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.exchange.codec import Row
from pychat_db.exchange.contract import (
    CONFIGURATION,
    MESSAGES,
    MODE_OUTPUTS,
    MODES,
    TAGS,
    THREADS,
    Collection,
)
from pychat_db.generated import mappers
from pychat_db.legacy.rows import (
    check_row,
    configuration_from_row,
    configuration_row,
    message_row,
    missing_link,
    mode_from_row,
    mode_output_from_row,
    mode_output_row,
    mode_row,
    tag_from_row,
    tag_row,
    thread_from_row,
    thread_row,
)
from pychat_db.legacy.store import LegacyStore
from pychat_db.models import Configuration, Cursor, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories import mapping, protocols

__all__ = [
    "LegacyConfigurationRepository",
    "LegacyMessageRepository",
    "LegacyModeOutputRepository",
    "LegacyModeRepository",
    "LegacyRepositories",
    "LegacyTagRepository",
    "LegacyThreadRepository",
    "builtin_modes",
]


@functools.cache
def builtin_modes() -> tuple[tuple[str, str], ...]:
    """(name, prompt) of the built-in modes, in seeding order, from their one definition (queries/modes.sql)."""
    from pychat_db.database import Database  # late: database imports the SQLite side only

    with Database(":memory:") as db:
        return tuple((m.name, m.prompt) for m in sorted(db.modes.list(), key=lambda m: m.id or 0))


class _Repository:
    def __init__(self, store: LegacyStore) -> None:
        self._store = store

    def _insert(self, collection: Collection, row: Row) -> int:
        """Check and store a new object (links set by the caller); return its id. Call inside a transaction."""
        check_row(collection, row)
        id = row[0]
        if id is None:
            id = self._store.next_id(collection)
        assert isinstance(id, int)
        if id in self._store.objects[collection.name]:
            raise ConstraintViolation(
                f"{collection.table}.id: PRIMARY KEY constraint failed",
                kind="PRIMARY KEY",
                table=collection.table,
                column="id",
            )
        self._check_links(collection, row)
        self._store.put(collection, id, (id, *row[1:]))
        return id

    def _replace(self, collection: Collection, row: Row) -> bool:
        """Check and store new fields of an existing object; False when there is none. Call inside a transaction."""
        id = row[0]
        assert isinstance(id, int)
        check_row(collection, row)
        if self._store.get(collection, id) is None or not self._visible(collection, id):
            return False
        self._check_links(collection, row)
        self._store.put(collection, id, row)
        return True

    def _check_links(self, collection: Collection, row: Row) -> None:
        for link in self._store.to_one.get(collection.name, ()):
            target = row[link.position]
            assert isinstance(target, int)
            if target not in self._store.objects[link.target.name]:
                column = collection.field(link.field).column
                raise missing_link(collection.table, column, link.target.table, target)

    def _set_links(self, collection: Collection, row: Row) -> None:
        id = row[0]
        assert isinstance(id, int)
        for link in self._store.to_one.get(collection.name, ()):
            target = row[link.position]
            assert isinstance(target, int)
            if self._store.get(collection, id) is None or link.get(id) != target:
                self._store.link(link, id, target)

    def _visible(self, collection: Collection, id: int) -> bool:
        """Stored, with no empty link (an orphan from Isar data is not shown)."""
        if id not in self._store.objects[collection.name]:
            return False
        return all(link.get(id) is not None for link in self._store.to_one.get(collection.name, ()))

    def _row_of(self, collection: Collection, id: int) -> Row:
        if not self._visible(collection, id):
            raise NotFound(collection.table, id)
        row = self._store.get(collection, id)
        assert row is not None
        return row


class LegacyConfigurationRepository(_Repository):
    def _current(self) -> int | None:
        ids = self._store.objects[CONFIGURATION.name]
        return next(iter(ids)) if ids else None

    def get(self) -> Configuration | None:
        id = self._current()
        return None if id is None else configuration_from_row(self._row_of(CONFIGURATION, id))

    def upsert(self, configuration: Configuration) -> Configuration:
        row = configuration_row(configuration)
        with self._store.transaction():
            current = self._current()
            if row[0] is None and current is not None:
                row = (current, *row[1:])
            if current is not None:
                self._store.delete_object(CONFIGURATION, current)
            id = self._insert(CONFIGURATION, row)
        return configuration_from_row(self._row_of(CONFIGURATION, id))

    def delete(self) -> bool:
        id = self._current()
        if id is None:
            return False
        with self._store.transaction():
            self._store.delete_object(CONFIGURATION, id)
        return True


class LegacyThreadRepository(_Repository):
    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        page_limit = mapping.page_limit(limit)
        keyed = [(row[2], row[0], row) for row in self._store.objects[THREADS.name].values()]
        keyed.sort(key=lambda k: (k[0], k[1]), reverse=True)
        if before is not None:
            cursor = before.cursor if isinstance(before, Thread) else before
            at = (timestamp_to_db(cursor.at), cursor.id)
            keyed = [k for k in keyed if (k[0], k[1]) < at]
        if page_limit is not None:
            keyed = keyed[:page_limit]
        return [thread_from_row(k[2]) for k in keyed]

    def get(self, id: int) -> Thread:
        return thread_from_row(self._row_of(THREADS, id))

    def create(self, thread: Thread) -> Thread:
        with self._store.transaction():
            id = self._insert(THREADS, thread_row(thread))
        return self.get(id)

    def update(self, thread: Thread) -> Thread:
        id = mapping.stored_id(thread)
        with self._store.transaction():
            if not self._replace(THREADS, thread_row(thread)):
                raise NotFound("threads", id)
        return self.get(id)

    def delete(self, id: int) -> None:
        if id not in self._store.objects[THREADS.name]:
            raise NotFound("threads", id)
        store = self._store
        with store.transaction():
            for message_id in sorted(store.message_thread.sources(id)):
                store.delete_object(MESSAGES, message_id)
            for output_id in sorted(store.output_thread.sources(id)):
                store.delete_object(MODE_OUTPUTS, output_id)
            store.delete_object(THREADS, id)


class LegacyTagRepository(_Repository):
    def list(self) -> builtins.list[Tag]:
        rows = sorted(self._store.objects[TAGS.name].values(), key=lambda row: (row[1], row[0]))
        return [tag_from_row(row) for row in rows]

    def get(self, id: int) -> Tag:
        return tag_from_row(self._row_of(TAGS, id))

    def create(self, tag: Tag) -> Tag:
        with self._store.transaction():
            id = self._insert(TAGS, tag_row(tag))
        return self.get(id)

    def update(self, tag: Tag) -> Tag:
        id = mapping.stored_id(tag)
        with self._store.transaction():
            if not self._replace(TAGS, tag_row(tag)):
                raise NotFound("tags", id)
        return self.get(id)

    def delete(self, id: int) -> None:
        with self._store.transaction():
            if not self._store.delete_object(TAGS, id):  # Isar cleans the message links itself
                raise NotFound("tags", id)

    def of_message(self, message_id: int) -> builtins.list[Tag]:
        if not self._visible(MESSAGES, message_id):
            return []
        return [self.get(tag_id) for tag_id in sorted(self._store.message_tags.targets(message_id))]

    def _require(self, collection: Collection, id: int) -> None:
        if not self._visible(collection, id):
            raise NotFound(collection.table, id)

    def attach(self, message_id: int, tag_id: int) -> bool:
        self._require(MESSAGES, message_id)
        self._require(TAGS, tag_id)
        with self._store.transaction():
            return self._store.add_link(self._store.message_tags, message_id, tag_id)

    def detach(self, message_id: int, tag_id: int) -> bool:
        with self._store.transaction():
            return self._store.remove_link(self._store.message_tags, message_id, tag_id)

    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        wanted = sorted(set(tag_ids))
        self._require(MESSAGES, message_id)
        with self._store.transaction():
            self._replace_links(message_id, wanted, lambda tag_id: NotFound("tags", tag_id))
        return self.of_message(message_id)

    def _replace_links(self, message_id: int, tag_ids: Sequence[int], missing: Callable[[int], Exception]) -> None:
        """Make the message's links exactly `tag_ids` (inside the caller's transaction)."""
        store = self._store
        for tag_id in tag_ids:
            if tag_id not in store.objects[TAGS.name]:
                raise missing(tag_id)
        keep = set(tag_ids)
        for tag_id in sorted(store.message_tags.targets(message_id) - keep):
            store.remove_link(store.message_tags, message_id, tag_id)
        for tag_id in tag_ids:
            store.add_link(store.message_tags, message_id, tag_id)


class LegacyMessageRepository(_Repository):
    def __init__(self, store: LegacyStore, tags: LegacyTagRepository) -> None:
        super().__init__(store)
        self._tags = tags

    def _message(self, row: Row) -> Message:
        id = row[0]
        assert isinstance(id, int)
        return mapping.message(mappers.message_from_db(row), tuple(self._tags.of_message(id)))

    def _ordered(self, ids: Iterable[int]) -> Iterator[Row]:
        rows = []
        for id in ids:
            if self._visible(MESSAGES, id):
                row = self._store.get(MESSAGES, id)
                assert row is not None
                rows.append(row)
        rows.sort(key=lambda row: (row[3], row[0]))
        return iter(rows)

    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        page_limit = mapping.page_limit(limit)
        rows = self._ordered(self._store.message_thread.sources(thread_id))
        if after is not None:
            cursor = after.cursor if isinstance(after, Message) else after
            at = (timestamp_to_db(cursor.at), cursor.id)
            rows = (row for row in rows if (row[3], row[0]) > at)
        page: builtins.list[Message] = []
        for row in rows:
            if page_limit is not None and len(page) >= page_limit:
                break
            page.append(self._message(row))
        return page

    def list_before(
        self, thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        page_limit = mapping.page_limit(limit)
        rows = list(self._ordered(self._store.message_thread.sources(thread_id)))
        if before is not None:
            cursor = before.cursor if isinstance(before, Message) else before
            at = (timestamp_to_db(cursor.at), cursor.id)
            rows = [row for row in rows if (row[3], row[0]) < at]
        if page_limit is not None:
            rows = rows[len(rows) - page_limit :] if page_limit else []
        return [self._message(row) for row in rows]

    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        return [self._message(row) for row in self._ordered(self._store.message_tags.sources(tag_id))]

    def get(self, id: int) -> Message:
        return self._message(self._row_of(MESSAGES, id))

    def _tag_ids(self, message: Message) -> builtins.list[int]:
        ids = []
        for tag in message.tags:
            if tag.id is None:
                raise ValueError(f"Message.tags: tag {tag.name!r} has no id; create it first")
            ids.append(tag.id)
        return sorted(set(ids))

    def _missing_tag(self, tag_id: int) -> ConstraintViolation:
        return missing_link("message_tags", "tag_id", "tags", tag_id)

    def create(self, message: Message) -> Message:
        tag_ids = self._tag_ids(message)
        row = message_row(message)
        with self._store.transaction():
            id = self._insert(MESSAGES, row)
            self._set_links(MESSAGES, (id, *row[1:]))
            self._tags._replace_links(id, tag_ids, self._missing_tag)
        return self.get(id)

    def update(self, message: Message) -> Message:
        id = mapping.stored_id(message)
        tag_ids = self._tag_ids(message)
        row = message_row(message)
        with self._store.transaction():
            if not self._replace(MESSAGES, row):
                raise NotFound("messages", id)
            self._set_links(MESSAGES, row)
            self._tags._replace_links(id, tag_ids, self._missing_tag)
        return self.get(id)

    def delete(self, id: int) -> None:
        with self._store.transaction():
            if not self._store.delete_object(MESSAGES, id):
                raise NotFound("messages", id)


class LegacyModeRepository(_Repository):
    def list(self) -> builtins.list[Mode]:
        rows = sorted(self._store.objects[MODES.name].values(), key=lambda row: (row[3], row[1], row[0]))
        return [mode_from_row(row) for row in rows]

    def get(self, id: int) -> Mode:
        return mode_from_row(self._row_of(MODES, id))

    def create(self, mode: Mode) -> Mode:
        with self._store.transaction():
            id = self._insert(MODES, mode_row(mode))
        return self.get(id)

    def update(self, mode: Mode) -> Mode:
        id = mapping.stored_id(mode)
        with self._store.transaction():
            if not self._replace(MODES, mode_row(mode)):
                raise NotFound("modes", id)
        return self.get(id)

    def delete(self, id: int) -> None:
        store = self._store
        if id not in store.objects[MODES.name]:
            raise NotFound("modes", id)
        with store.transaction():
            for output_id in sorted(store.output_mode.sources(id)):
                store.delete_object(MODE_OUTPUTS, output_id)
            store.delete_object(MODES, id)

    def seed_builtins(self) -> builtins.list[Mode]:
        if self._store.objects[MODES.name]:
            return []
        with self._store.transaction():
            ids = [self._insert(MODES, (None, name, prompt, 0)) for name, prompt in builtin_modes()]
        return [self.get(id) for id in ids]


class LegacyModeOutputRepository(_Repository):
    def _newest_first(self, ids: Iterable[int]) -> builtins.list[ModeOutput]:
        rows = [self._store.get(MODE_OUTPUTS, id) for id in ids if self._visible(MODE_OUTPUTS, id)]
        rows.sort(key=lambda row: (row[3], row[0]), reverse=True)  # type: ignore[index]
        return [mode_output_from_row(row) for row in rows if row is not None]

    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        return self._newest_first(self._store.output_thread.sources(thread_id))

    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        return self._newest_first(self._store.output_mode.sources(mode_id))

    def get(self, id: int) -> ModeOutput:
        return mode_output_from_row(self._row_of(MODE_OUTPUTS, id))

    def create(self, output: ModeOutput) -> ModeOutput:
        row = mode_output_row(output)
        with self._store.transaction():
            id = self._insert(MODE_OUTPUTS, row)
            self._set_links(MODE_OUTPUTS, (id, *row[1:]))
        return self.get(id)

    def update(self, output: ModeOutput) -> ModeOutput:
        id = mapping.stored_id(output)
        row = mode_output_row(output)
        with self._store.transaction():
            if not self._replace(MODE_OUTPUTS, row):
                raise NotFound("mode_outputs", id)
            self._set_links(MODE_OUTPUTS, row)
        return self.get(id)

    def delete(self, id: int) -> None:
        with self._store.transaction():
            if not self._store.delete_object(MODE_OUTPUTS, id):
                raise NotFound("mode_outputs", id)


class LegacyRepositories:
    """The legacy store behind the repository protocols: `configuration`, `threads`, `messages`, `modes`,
    `mode_outputs`, `tags`, like `Database`.

    `store`: an open `LegacyStore` (see `open`). `transaction()` nests like the SQLite one.
    Persistence: `save()` writes the export directory atomically; `close()` saves unsaved writes;
    with `store.autosave` every committed outermost write is saved at once.
    """

    def __init__(self, store: LegacyStore) -> None:
        self.store = store
        self.configuration = LegacyConfigurationRepository(store)
        self.threads = LegacyThreadRepository(store)
        self.tags = LegacyTagRepository(store)
        self.messages = LegacyMessageRepository(store, self.tags)
        self.modes = LegacyModeRepository(store)
        self.mode_outputs = LegacyModeOutputRepository(store)

    @classmethod
    def open(cls, path: str, *, autosave: bool = False, seed_modes: bool = False) -> LegacyRepositories:
        """The legacy store saved in the export directory `path` (empty when absent)."""
        store = LegacyStore.open(path)
        store.autosave = autosave
        repositories = cls(store)
        if seed_modes:
            repositories.modes.seed_builtins()
        return repositories

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes of the block kept, or none when it raises; nested levels roll back alone."""
        with self.store.transaction():
            yield

    def save(self) -> None:
        """Write the store to its export directory (atomically)."""
        self.store.save()

    def close(self) -> None:
        """Save unsaved writes (when the store has a directory). Idempotent."""
        if self.store.dirty and self.store.path is not None and not self.store.in_transaction:
            self.store.save()


if TYPE_CHECKING:  # mypy checks that each implementation satisfies its protocol; never runs

    def _conforms(store: LegacyStore) -> None:
        tags = LegacyTagRepository(store)
        _configuration: protocols.ConfigurationRepository = LegacyConfigurationRepository(store)
        _threads: protocols.ThreadRepository = LegacyThreadRepository(store)
        _messages: protocols.MessageRepository = LegacyMessageRepository(store, tags)
        _modes: protocols.ModeRepository = LegacyModeRepository(store)
        _outputs: protocols.ModeOutputRepository = LegacyModeOutputRepository(store)
        _tags: protocols.TagRepository = tags
