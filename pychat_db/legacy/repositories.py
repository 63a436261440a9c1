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
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pychat_db.convert import timestamp_to_db
from pychat_db.errors import ConstraintViolation, NotFound
from pychat_db.exchange import contract
from pychat_db.exchange.codec import Row
from pychat_db.exchange.contract import Collection
from pychat_db.generated import mappers
from pychat_db.legacy import rows
from pychat_db.legacy.rows import check_row, missing_link
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

M = TypeVar("M", bound=Thread | Message | Mode | ModeOutput | Tag)


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

    def _check_links(self, collection: Collection, row: Row) -> None:
        for link in self._store.to_one.get(collection.name, ()):
            target = row[link.position]
            assert isinstance(target, int)
            if target not in self._store.objects[link.target.name]:
                column = collection.field(link.field).column
                raise missing_link(collection.table, column, link.target.table, target)

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


class _Objects(_Repository, Generic[M]):
    """What every collection of objects (all but the configuration) does alike, by its rows: `collection`,
    `to_row` (model -> row) and `from_row`. Each subclass declares its protocol's methods, signed as the
    protocol has them, over these, and adds what is its own."""

    def __init__(
        self, store: LegacyStore, collection: Collection, to_row: Callable[[M], Row], from_row: Callable[[Row], M]
    ) -> None:
        super().__init__(store)
        self._collection = collection
        self._to_row: Callable[[M], Row] = to_row
        self._from_row: Callable[[Row], M] = from_row

    def _get(self, id: int) -> M:
        return self._from_row(self._row_of(self._collection, id))

    def _all(self, key: Callable[[Row], Any]) -> builtins.list[M]:
        """Every object, ordered by `key` of its row."""
        return [self._from_row(row) for row in sorted(self._store.objects[self._collection.name].values(), key=key)]

    def _visible_rows(self, ids: Iterable[int], key: Callable[[Row], Any], *, reverse: bool = False) -> list[Row]:
        """The rows (links filled in) of the objects among `ids` a read may show, ordered by `key`."""
        found: list[Row] = []
        for id in ids:
            if self._visible(self._collection, id):
                row = self._store.get(self._collection, id)
                assert row is not None
                found.append(row)
        return sorted(found, key=key, reverse=reverse)

    def _links_written_with(self, obj: M) -> Callable[[int], None] | None:
        """What a create or update of `obj` also writes once the object has its id, checked before anything is
        written (a message: its tags); None: nothing (to-one links are fields of the row)."""
        return None

    def _create(self, obj: M) -> M:
        links = self._links_written_with(obj)
        row = self._to_row(obj)
        with self._store.transaction():
            id = self._insert(self._collection, row)
            self._set_links((id, *row[1:]))
            if links is not None:
                links(id)
        return self._get(id)

    def _update(self, obj: M) -> M:
        id = mapping.stored_id(obj)
        links = self._links_written_with(obj)
        row = self._to_row(obj)
        with self._store.transaction():
            if not self._replace(row):
                raise NotFound(self._collection.table, id)
            self._set_links(row)
            if links is not None:
                links(id)
        return self._get(id)

    def _replace(self, row: Row) -> bool:
        """Check and store new fields of an existing object; False when there is none. Call inside a transaction."""
        id = row[0]
        assert isinstance(id, int)
        check_row(self._collection, row)
        if self._store.get(self._collection, id) is None or not self._visible(self._collection, id):
            return False
        self._check_links(self._collection, row)
        self._store.put(self._collection, id, row)
        return True

    def _set_links(self, row: Row) -> None:
        id = row[0]
        assert isinstance(id, int)
        for link in self._store.to_one.get(self._collection.name, ()):
            target = row[link.position]
            assert isinstance(target, int)
            if self._store.get(self._collection, id) is None or link.get(id) != target:
                self._store.link(link, id, target)

    def _delete(self, id: int) -> None:
        """Delete the object, after the objects whose link points at it (SQLite's ON DELETE CASCADE: a thread's
        messages and mode outputs, a mode's outputs); the store's Isar delete then cleans every other link."""
        store = self._store
        if id not in store.objects[self._collection.name]:
            raise NotFound(self._collection.table, id)
        with store.transaction():
            for link in store.links_to(self._collection):
                for source_id in sorted(link.sources(id)):
                    store.delete_object(link.source, source_id)
            store.delete_object(self._collection, id)


class LegacyConfigurationRepository(_Repository):
    def _current(self) -> int | None:
        ids = self._store.objects[contract.CONFIGURATION.name]
        return next(iter(ids)) if ids else None

    def get(self) -> Configuration | None:
        id = self._current()
        return None if id is None else rows.configuration_from_row(self._row_of(contract.CONFIGURATION, id))

    def upsert(self, configuration: Configuration) -> Configuration:
        row = rows.configuration_row(configuration)
        with self._store.transaction():
            current = self._current()
            if row[0] is None and current is not None:
                row = (current, *row[1:])
            if current is not None:
                self._store.delete_object(contract.CONFIGURATION, current)
            id = self._insert(contract.CONFIGURATION, row)
        return rows.configuration_from_row(self._row_of(contract.CONFIGURATION, id))

    def delete(self) -> bool:
        id = self._current()
        if id is None:
            return False
        with self._store.transaction():
            self._store.delete_object(contract.CONFIGURATION, id)
        return True


class LegacyThreadRepository(_Objects[Thread]):
    def __init__(self, store: LegacyStore) -> None:
        super().__init__(store, contract.THREADS, rows.thread_row, rows.thread_from_row)

    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        page_limit = mapping.page_limit(limit)
        keyed = [(row[2], row[0], row) for row in self._store.objects[contract.THREADS.name].values()]
        keyed.sort(key=lambda k: (k[0], k[1]), reverse=True)
        if before is not None:
            cursor = before.cursor if isinstance(before, Thread) else before
            at = (timestamp_to_db(cursor.at), cursor.id)
            keyed = [k for k in keyed if (k[0], k[1]) < at]
        if page_limit is not None:
            keyed = keyed[:page_limit]
        return [rows.thread_from_row(k[2]) for k in keyed]

    def get(self, id: int) -> Thread:
        return self._get(id)

    def create(self, thread: Thread) -> Thread:
        return self._create(thread)

    def update(self, thread: Thread) -> Thread:
        return self._update(thread)

    def delete(self, id: int) -> None:
        self._delete(id)


class LegacyTagRepository(_Objects[Tag]):
    def __init__(self, store: LegacyStore) -> None:
        super().__init__(store, contract.TAGS, rows.tag_row, rows.tag_from_row)

    def list(self) -> builtins.list[Tag]:
        return self._all(key=lambda row: (row[1], row[0]))

    def get(self, id: int) -> Tag:
        return self._get(id)

    def create(self, tag: Tag) -> Tag:
        return self._create(tag)

    def update(self, tag: Tag) -> Tag:
        return self._update(tag)

    def delete(self, id: int) -> None:
        self._delete(id)  # Isar cleans the message links itself

    def of_message(self, message_id: int) -> builtins.list[Tag]:
        if not self._visible(contract.MESSAGES, message_id):
            return []
        return [self.get(tag_id) for tag_id in sorted(self._store.message_tags.targets(message_id))]

    def _require(self, collection: Collection, id: int) -> None:
        if not self._visible(collection, id):
            raise NotFound(collection.table, id)

    def attach(self, message_id: int, tag_id: int) -> bool:
        self._require(contract.MESSAGES, message_id)
        self._require(contract.TAGS, tag_id)
        with self._store.transaction():
            return self._store.add_link(self._store.message_tags, message_id, tag_id)

    def detach(self, message_id: int, tag_id: int) -> bool:
        with self._store.transaction():
            return self._store.remove_link(self._store.message_tags, message_id, tag_id)

    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        wanted = sorted(set(tag_ids))
        self._require(contract.MESSAGES, message_id)
        with self._store.transaction():
            self._replace_links(message_id, wanted, lambda tag_id: NotFound("tags", tag_id))
        return self.of_message(message_id)

    def _replace_links(self, message_id: int, tag_ids: Sequence[int], missing: Callable[[int], Exception]) -> None:
        """Make the message's links exactly `tag_ids` (inside the caller's transaction)."""
        store = self._store
        for tag_id in tag_ids:
            if tag_id not in store.objects[contract.TAGS.name]:
                raise missing(tag_id)
        keep = set(tag_ids)
        for tag_id in sorted(store.message_tags.targets(message_id) - keep):
            store.remove_link(store.message_tags, message_id, tag_id)
        for tag_id in tag_ids:
            store.add_link(store.message_tags, message_id, tag_id)


class LegacyMessageRepository(_Objects[Message]):
    def __init__(self, store: LegacyStore, tags: LegacyTagRepository) -> None:
        super().__init__(store, contract.MESSAGES, rows.message_row, self._message)
        self._tags = tags

    def _message(self, row: Row) -> Message:
        id = row[0]
        assert isinstance(id, int)
        return mapping.message(mappers.message_from_db(row), tuple(self._tags.of_message(id)))

    def _ordered(self, ids: Iterable[int]) -> builtins.list[Row]:
        """The visible messages among `ids`, oldest first."""
        return self._visible_rows(ids, key=lambda row: (row[3], row[0]))

    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        page_limit = mapping.page_limit(limit)
        ordered: Iterator[Row] = iter(self._ordered(self._store.message_thread.sources(thread_id)))
        if after is not None:
            cursor = after.cursor if isinstance(after, Message) else after
            at = (timestamp_to_db(cursor.at), cursor.id)
            ordered = (row for row in ordered if (row[3], row[0]) > at)
        page: builtins.list[Message] = []
        for row in ordered:
            if page_limit is not None and len(page) >= page_limit:
                break
            page.append(self._message(row))
        return page

    def list_before(
        self, thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        page_limit = mapping.page_limit(limit)
        ordered = self._ordered(self._store.message_thread.sources(thread_id))
        if before is not None:
            cursor = before.cursor if isinstance(before, Message) else before
            at = (timestamp_to_db(cursor.at), cursor.id)
            ordered = [row for row in ordered if (row[3], row[0]) < at]
        if page_limit is not None:
            ordered = ordered[len(ordered) - page_limit :] if page_limit else []
        return [self._message(row) for row in ordered]

    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        return [self._message(row) for row in self._ordered(self._store.message_tags.sources(tag_id))]

    def get(self, id: int) -> Message:
        return self._get(id)

    def _links_written_with(self, message: Message) -> Callable[[int], None]:
        """The message's tags (`Message.tags`, each stored first), linked by id."""
        ids = []
        for tag in message.tags:
            if tag.id is None:
                raise ValueError(f"Message.tags: tag {tag.name!r} has no id; create it first")
            ids.append(tag.id)
        tag_ids = sorted(set(ids))
        missing = functools.partial(missing_link, "message_tags", "tag_id", "tags")
        return lambda id: self._tags._replace_links(id, tag_ids, missing)

    def create(self, message: Message) -> Message:
        return self._create(message)

    def update(self, message: Message) -> Message:
        return self._update(message)

    def delete(self, id: int) -> None:
        self._delete(id)


class LegacyModeRepository(_Objects[Mode]):
    def __init__(self, store: LegacyStore) -> None:
        super().__init__(store, contract.MODES, rows.mode_row, rows.mode_from_row)

    def list(self) -> builtins.list[Mode]:
        return self._all(key=lambda row: (row[3], row[1], row[0]))

    def get(self, id: int) -> Mode:
        return self._get(id)

    def create(self, mode: Mode) -> Mode:
        return self._create(mode)

    def update(self, mode: Mode) -> Mode:
        return self._update(mode)

    def delete(self, id: int) -> None:
        self._delete(id)

    def seed_builtins(self) -> builtins.list[Mode]:
        if self._store.objects[contract.MODES.name]:
            return []
        with self._store.transaction():
            ids = [self._insert(contract.MODES, (None, name, prompt, 0)) for name, prompt in builtin_modes()]
        return [self.get(id) for id in ids]


class LegacyModeOutputRepository(_Objects[ModeOutput]):
    def __init__(self, store: LegacyStore) -> None:
        super().__init__(store, contract.MODE_OUTPUTS, rows.mode_output_row, rows.mode_output_from_row)

    def _newest_first(self, ids: Iterable[int]) -> builtins.list[ModeOutput]:
        return [self._from_row(row) for row in self._visible_rows(ids, key=lambda row: (row[3], row[0]), reverse=True)]

    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        return self._newest_first(self._store.output_thread.sources(thread_id))

    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        return self._newest_first(self._store.output_mode.sources(mode_id))

    def get(self, id: int) -> ModeOutput:
        return self._get(id)

    def create(self, output: ModeOutput) -> ModeOutput:
        return self._create(output)

    def update(self, output: ModeOutput) -> ModeOutput:
        return self._update(output)

    def delete(self, id: int) -> None:
        self._delete(id)


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


if TYPE_CHECKING:  # mypy checks that the repositories satisfy the protocols (each one's, too); never runs

    def _conforms(store: LegacyStore) -> None:
        _repositories: protocols.Repositories = LegacyRepositories(store)
