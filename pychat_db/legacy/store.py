"""The old store's side: an in-memory document store with the Isar model's semantics.

Objects live in collections by id (`configuration`, `threads`, `modes`, `tags`,
`messages`, `mode_outputs`); each object's fields are held as the contract row of
its collection (`pychat_db.exchange.contract`: stored values in contract order),
except its links, which are held the way Isar holds them:

* `Message.thread`, `ModeOutput.thread`, `ModeOutput.mode`: `IsarLink`s (to-one,
  `ToOne`): a source points at one target or at nothing (an *empty* link);
* `Message.tags`: an `IsarLinks` (to-many, `ToMany`);
* every link keeps its backlink index (`ChatThread.messages`, `Tag.messages`, ...),
  so "who points at this object" is a lookup, not a scan.

`delete_object` has Isar's semantics: the object goes, its own links go, and links
*to* it from other objects are cleaned up — a message of a deleted thread stays,
with an empty thread link (an orphan). The repositories (`pychat_db.legacy.repositories`)
do what the app's services did and what SQLite's ON DELETE CASCADE does: they delete
the backlinked objects first (see that module).

Writes go through a few primitives that log their inverse while a transaction is
open (`transaction()` nests; an exception rolls back that level only). The store is
loaded from and saved as an export directory in the canonical export format
(the shared reader and writer); `save()` writes a staged directory and renames it
into place, so a crash leaves the previous save intact.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pychat_db import convert
from pychat_db.errors import PychatDbError
from pychat_db.exchange import contract
from pychat_db.exchange.codec import INT64_MAX, Row
from pychat_db.exchange.contract import Collection
from pychat_db.exchange.reader import ExportDirectory, ExportError, Problem
from pychat_db.exchange.writer import FileSummary, staged_directory, write_collection, write_manifest

__all__ = ["OBJECT_COLLECTIONS", "LegacyStore", "LegacyStoreError", "ToMany", "ToOne"]

OBJECT_COLLECTIONS: tuple[Collection, ...] = tuple(c for c in contract.COLLECTIONS if c.key == ("id",))
_MISSING = object()


class LegacyStoreError(PychatDbError):
    """The legacy export cannot be loaded or saved (names the file, line and field where there is one)."""


class ToOne:
    """An `IsarLink`: each source id points at one target id, or none (an empty link), with the backlink index."""

    def __init__(self, source: Collection, field: str, target: Collection) -> None:
        self.source = source
        self.field = field  # the contract name, e.g. "threadId"
        self.position = source.field_names.index(field)
        self.target = target
        self.forward: dict[int, int] = {}
        self.backward: dict[int, set[int]] = {}

    def get(self, source_id: int) -> int | None:
        return self.forward.get(source_id)

    def sources(self, target_id: int) -> set[int]:
        """The backlink: ids of the objects whose link points at `target_id` (a copy)."""
        return set(self.backward.get(target_id, ()))

    def _set(self, source_id: int, target_id: int | None) -> None:
        old = self.forward.pop(source_id, None)
        if old is not None:
            back = self.backward[old]
            back.discard(source_id)
            if not back:
                del self.backward[old]
        if target_id is not None:
            self.forward[source_id] = target_id
            self.backward.setdefault(target_id, set()).add(source_id)


class ToMany:
    """An `IsarLinks`: each source id points at a set of target ids, with the backlink index."""

    def __init__(self, source: Collection, target: Collection) -> None:
        self.source = source
        self.target = target
        self.forward: dict[int, set[int]] = {}
        self.backward: dict[int, set[int]] = {}

    def targets(self, source_id: int) -> set[int]:
        return set(self.forward.get(source_id, ()))

    def sources(self, target_id: int) -> set[int]:
        return set(self.backward.get(target_id, ()))

    def has(self, source_id: int, target_id: int) -> bool:
        return target_id in self.forward.get(source_id, ())

    def _add(self, source_id: int, target_id: int) -> None:
        self.forward.setdefault(source_id, set()).add(target_id)
        self.backward.setdefault(target_id, set()).add(source_id)

    def _remove(self, source_id: int, target_id: int) -> None:
        for index, key, value in ((self.forward, source_id, target_id), (self.backward, target_id, source_id)):
            members = index.get(key)
            if members is not None:
                members.discard(value)
                if not members:
                    del index[key]

    def pairs(self) -> Iterator[tuple[int, int]]:
        """Every (source, target) pair in key order."""
        for source_id in sorted(self.forward):
            for target_id in sorted(self.forward[source_id]):
                yield source_id, target_id


class LegacyStore:
    """The documents, their links and backlinks, in memory; see the module doc.

    `path` is the export directory it was loaded from and is saved to (None: not persisted).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.objects: dict[str, dict[int, Row]] = {c.name: {} for c in OBJECT_COLLECTIONS}
        self.message_thread = ToOne(contract.MESSAGES, "threadId", contract.THREADS)
        self.output_thread = ToOne(contract.MODE_OUTPUTS, "threadId", contract.THREADS)
        self.output_mode = ToOne(contract.MODE_OUTPUTS, "modeId", contract.MODES)
        self.message_tags = ToMany(contract.MESSAGES, contract.TAGS)
        self.to_one: dict[str, tuple[ToOne, ...]] = {
            contract.MESSAGES.name: (self.message_thread,),
            contract.MODE_OUTPUTS.name: (self.output_thread, self.output_mode),
        }
        self._undo: list[Callable[[], None]] | None = None
        self._max_id: dict[str, int | None] = {}
        self._random = random.Random(0)
        self.dirty = False
        self.autosave = False  # save after every committed outermost transaction
        self.saves = 0

    # -- reading --------------------------------------------------------------------------------

    def get(self, collection: Collection, id: int) -> Row | None:
        """The object's row with its links filled in (an empty link is None), or None when absent."""
        row = self.objects[collection.name].get(id)
        if row is None or collection.name not in self.to_one:
            return row
        values = list(row)
        for link in self.to_one[collection.name]:
            values[link.position] = link.get(id)
        return tuple(values)

    def links_to(self, collection: Collection) -> tuple[ToOne, ...]:
        """The to-one links that point at objects of `collection` (a thread: messages' and mode outputs')."""
        return tuple(link for links in self.to_one.values() for link in links if link.target is collection)

    def ids(self, collection: Collection) -> list[int]:
        return sorted(self.objects[collection.name])

    def count(self, collection: Collection) -> int:
        """Objects in `collection` (`message_tags`: links)."""
        if collection is contract.MESSAGE_TAGS:
            return sum(len(t) for t in self.message_tags.forward.values())
        return len(self.objects[collection.name])

    def rows(self, collection: Collection) -> Iterator[Row]:
        """Every row of a contract collection in key order, links filled in (what an export holds)."""
        if collection is contract.MESSAGE_TAGS:
            yield from self.message_tags.pairs()
            return
        for id in self.ids(collection):
            row = self.get(collection, id)
            assert row is not None
            yield row

    def next_id(self, collection: Collection) -> int:
        """The id SQLite would assign: 1 in an empty collection, else the largest + 1; a random unused one
        when the largest is the 64-bit limit (SQLite's own rule for an INTEGER PRIMARY KEY)."""
        objects = self.objects[collection.name]
        if not objects:
            return 1
        largest = self._max_id.get(collection.name)
        if largest is None or largest not in objects:
            largest = max(objects)
            self._max_id[collection.name] = largest
        if largest < INT64_MAX:
            return largest + 1
        while True:
            candidate = self._random.randint(1, INT64_MAX)
            if candidate not in objects:
                return candidate

    # -- transactions ---------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._undo is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes of the block kept, or none when it raises (nested levels roll back alone)."""
        outermost = self._undo is None
        if outermost:
            self._undo = []
        assert self._undo is not None
        undo = self._undo
        mark = len(undo)
        try:
            yield
        except BaseException:
            while len(undo) > mark:
                undo.pop()()
            raise
        finally:
            if outermost:
                self._undo = None
        if outermost and self.autosave and self.dirty and self.path is not None:
            self.save()

    def _log(self, inverse: Callable[[], None]) -> None:
        self.dirty = True
        if self._undo is not None:
            self._undo.append(inverse)

    # -- write primitives (each logs its inverse) ----------------------------------------------

    def put(self, collection: Collection, id: int, row: Row) -> None:
        """Store the object's fields (its link fields in `row` are ignored: set links with `link`)."""
        objects = self.objects[collection.name]
        previous = objects.get(id, _MISSING)
        objects[id] = row
        largest = self._max_id.get(collection.name)
        if largest is not None and id > largest:
            self._max_id[collection.name] = id

        def undo() -> None:
            if previous is _MISSING:
                objects.pop(id, None)
            else:
                objects[id] = previous  # type: ignore[assignment]

        self._log(undo)

    def link(self, link: ToOne, source_id: int, target_id: int | None) -> None:
        """Point `source_id`'s link at `target_id` (None empties it)."""
        previous = link.get(source_id)
        link._set(source_id, target_id)
        self._log(lambda: link._set(source_id, previous))

    def add_link(self, links: ToMany, source_id: int, target_id: int) -> bool:
        if links.has(source_id, target_id):
            return False
        links._add(source_id, target_id)
        self._log(lambda: links._remove(source_id, target_id))
        return True

    def remove_link(self, links: ToMany, source_id: int, target_id: int) -> bool:
        if not links.has(source_id, target_id):
            return False
        links._remove(source_id, target_id)
        self._log(lambda: links._add(source_id, target_id))
        return True

    def delete_object(self, collection: Collection, id: int) -> bool:
        """Isar's delete: remove the object and its own links; links to it from others become empty.

        Returns False when there was no such object. Deletes nothing else (see `repositories`).
        """
        objects = self.objects[collection.name]
        if id not in objects:
            return False
        row = objects.pop(id)
        self._log(lambda: objects.__setitem__(id, row))
        for link in self.to_one.get(collection.name, ()):
            self.link(link, id, None)
        for link in self.links_to(collection):
            for source_id in link.sources(id):
                self.link(link, source_id, None)
        if collection is contract.MESSAGES:
            for tag_id in self.message_tags.targets(id):
                self.remove_link(self.message_tags, id, tag_id)
        if collection is contract.TAGS:
            for message_id in self.message_tags.sources(id):
                self.remove_link(self.message_tags, message_id, id)
        return True

    # -- persistence ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LegacyStore:
        """The store saved in the export directory `path`; an empty store (saved there later) when it is absent
        or an empty directory. A directory holding other files but none of an export's is refused (`load`)."""
        target = Path(path)
        if not target.exists() or (target.is_dir() and not any(target.iterdir())):
            return cls(target)
        return cls.load(target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LegacyStore:
        """Read an export directory (any variant the contract accepts) into a new store.

        Raises LegacyStoreError naming `FILE:LINE: field: reason` for a bad row, a duplicate id,
        or a link to an object that does not exist. An empty link (null) is kept: Isar has them.
        """
        store = cls(path)
        try:
            source = ExportDirectory(path)
            for collection in contract.COLLECTIONS:
                for item in source.items(collection):
                    if item.error is not None:
                        raise LegacyStoreError(str(Problem.of(collection.name, item)))
                    assert item.row is not None
                    reason = store._load_row(collection, item.row)
                    if reason is not None:
                        field, text = reason
                        raise LegacyStoreError(str(Problem(collection.name, item.location, field, text)))
            problems = source.final_checks()
        except ExportError as exc:
            raise LegacyStoreError(str(exc)) from None
        if problems:
            raise LegacyStoreError(str(problems[0]))
        store.dirty = False
        return store

    def _load_row(self, collection: Collection, row: Row) -> tuple[str | None, str] | None:
        """Add one loaded row; (field, reason) when it cannot be added."""
        if collection is contract.MESSAGE_TAGS:
            message_id, tag_id = row
            assert isinstance(message_id, int) and isinstance(tag_id, int)
            if message_id not in self.objects[contract.MESSAGES.name]:
                return "messageId", f"no messages object with id {message_id}"
            if tag_id not in self.objects[contract.TAGS.name]:
                return "tagId", f"no tags object with id {tag_id}"
            if not self.add_link(self.message_tags, message_id, tag_id):
                return None, f"duplicate link ({message_id}, {tag_id})"
            return None
        id = row[0]
        assert isinstance(id, int)
        if id in self.objects[collection.name]:
            return "id", f"duplicate id {id}"
        for link in self.to_one.get(collection.name, ()):
            target = row[link.position]
            assert target is None or isinstance(target, int)
            if target is not None and target not in self.objects[link.target.name]:
                return link.field, f"no {link.target.name} object with id {target}"
        self.put(collection, id, row)
        for link in self.to_one.get(collection.name, ()):
            target = row[link.position]
            assert target is None or isinstance(target, int)
            self.link(link, id, target)
        return None

    def save(self, path: str | os.PathLike[str] | None = None, *, exported_at: str | None = None) -> list[FileSummary]:
        """Write the whole store as a canonical export directory at `path` (default: where it came from).

        Written into a staged directory beside the target and renamed into place (the previous
        save stays intact until then). Refuses while a transaction is open (it would save
        writes that may still be rolled back).
        """
        if self._undo is not None:
            raise LegacyStoreError("cannot save inside a transaction")
        target = Path(path) if path is not None else self.path
        if target is None:
            raise LegacyStoreError("this store has no directory to save to: pass one")
        when = exported_at or convert.timestamp_to_db(dt.datetime.now(dt.UTC))
        summaries: list[FileSummary] = []
        try:
            with staged_directory(target, force=True) as stage:
                for collection in contract.COLLECTIONS:
                    summaries.append(write_collection(stage, collection, self.rows(collection)))
                write_manifest(stage, summaries, when)
        except (OSError, PychatDbError) as exc:
            raise LegacyStoreError(f"{target}: cannot save: {exc}") from exc
        if path is None or Path(path) == self.path:
            self.dirty = False
        self.saves += 1
        return summaries
