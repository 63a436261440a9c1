"""A single link of the app's objects (Message.thread, ModeOutput.thread, ModeOutput.mode), joined to
its source collection as that is read: `LinkJoin`."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from pychat_db.isar.file import IsarFile
from pychat_db.isar.format import IsarFormatError
from pychat_db.isar.storage import StorageError


class LinkJoin:
    """One link's (source, target) pairs, walked alongside the source collection, both in id order.

    The pairs come a batch at a time (`IsarFile.link_batches`, decoded in C) into a buffer: `column(ids)`
    joins a whole batch of objects at once (a dict, set checks), `take_one(id)` one object (the walk that
    names what is wrong). A read error of the link map is kept and raised by the walk that needs the pairs
    past it, so it comes after the objects before it, as with any refusal.
    """

    def __init__(self, isar: IsarFile, collection: str, link: str, target: str, targets: frozenset[int]) -> None:
        """The link `collection`.`link` to `target`, whose ids are `targets`."""
        self.collection = collection
        self.link = link
        self.targets = targets
        self.target = target
        schema = isar.collections.get(collection)
        links = {lk.name: lk for lk in schema.links} if schema else {}
        self._batches = iter(isar.link_batches(collection, links[link]) if link in links else ())
        self._src: tuple[int, ...] = ()  # unread pairs: (_src[i], _dst[i]) for i >= _pos
        self._dst: tuple[int, ...] = ()
        self._pos = 0
        self._error: IsarFormatError | StorageError | None = None
        self._done = False

    def _more(self) -> bool:
        """Append the next batch of pairs to the buffer; False at the end of the map or at a read error."""
        if self._done:
            return False
        try:
            following = next(self._batches, None)
        except (IsarFormatError, StorageError) as exc:
            following, self._error = None, exc
        if following is None:
            self._done = True
            return False
        self._src = self._src[self._pos :] + following[0]
        self._dst = self._dst[self._pos :] + following[1]
        self._pos = 0
        return True

    def _peek(self) -> tuple[int, int] | None:
        """The next unread pair, or None at the end (raises the read error where it was met)."""
        while self._pos >= len(self._src):
            if not self._more():
                if self._error is not None:
                    raise self._error
                return None
        return self._src[self._pos], self._dst[self._pos]

    def _dangling(self, source: int) -> IsarFormatError:
        return IsarFormatError(
            "link from an object that does not exist", collection=self.collection, id=source, field=self.link
        )

    def column(self, ids: Sequence[int]) -> tuple[list[int | None], int] | None:
        """The target of each of `ids` (ascending, not empty) by this single link (None: no target) and the
        buffer position past their pairs (`commit` it). None when anything is unusual (a source with several
        targets or not among `ids`, a missing target, a read error): `take_one`, object by object, says what."""
        last = ids[-1]
        end = bisect.bisect_right(self._src, last, self._pos)
        while end == len(self._src) and self._more():
            end = bisect.bisect_right(self._src, last, self._pos)
        if end == len(self._src) and self._error is not None:
            return None
        pos = self._pos
        if end == pos:
            return [None] * len(ids), end
        sources = self._src[pos:end]
        found = dict(zip(sources, self._dst[pos:end], strict=True))
        if len(found) != len(sources) or not self.targets.issuperset(found.values()) or not found.keys() <= set(ids):
            return None
        return list(map(found.get, ids)), end

    def commit(self, end: int) -> None:
        self._pos = end

    def take(self, source: int) -> list[int]:
        """Target ids linked from `source` (checked to exist); pairs of missing sources are refused."""
        out: list[int] = []
        while (pending := self._peek()) is not None and pending[0] <= source:
            src, dst = pending
            if src < source:
                raise self._dangling(src)
            if dst not in self.targets:
                raise IsarFormatError(
                    f"link to {self.target} id {dst}, which does not exist",
                    collection=self.collection,
                    id=src,
                    field=self.link,
                )
            out.append(dst)
            self._pos += 1
        return out

    def take_one(self, source: int) -> int | None:
        """The target linked from `source` by a single link, or None; like `take`, and refuses several."""
        targets = self.take(source)  # the precise error, or the targets
        if len(targets) > 1:
            raise IsarFormatError(
                f"a single link holds {len(targets)} targets", collection=self.collection, id=source, field=self.link
            )
        return targets[0] if targets else None

    def finish(self) -> None:
        pending = self._peek()
        if pending is not None:
            raise self._dangling(pending[0])
