"""Already decoded objects (e.g. the Isar reader's) as a `Source`, validated like an export's lines."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pychat_db.exchange.codec import FieldError, NaiveTimezone, RowCodec
from pychat_db.exchange.contract import Collection
from pychat_db.exchange.source import Item, Problem, ReadStats, SourceDefaults

ObjectsFactory = Callable[[], Iterable[tuple[str, Mapping[str, Any]]]]


@dataclass
class MappingSource(SourceDefaults):
    """A Source over already decoded objects: per collection, a callable returning (where, object) pairs.

    `where` describes the object for messages (e.g. "chat.isar: messages id=5");
    each object is a dict like a decoded JSON line (camelCase keys, timestamps as
    int µs or ISO text, fileData as base64 text, a list of ints, bytes or None).
    Each call of the factory must iterate the objects afresh.
    """

    source_name: str
    objects: Mapping[str, ObjectsFactory]
    naive: NaiveTimezone = NaiveTimezone.REJECT
    _stats: dict[str, ReadStats] = field(default_factory=dict)
    _codecs: dict[str, RowCodec] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source_name

    @property
    def bytes_read(self) -> int:
        return 0

    def size(self, collection: Collection) -> int | None:
        return None

    def stats(self, collection: Collection) -> ReadStats:
        return self._stats.setdefault(collection.name, ReadStats())

    def items(self, collection: Collection) -> Iterator[Item]:
        factory = self.objects.get(collection.name)
        stats = ReadStats(file=None)
        self._stats[collection.name] = stats
        if factory is None:
            stats.complete = True
            return
        codec = self._codecs.get(collection.name) or RowCodec(collection, self.naive)
        self._codecs[collection.name] = codec
        for where, obj in factory():
            stats.rows += 1
            try:
                yield Item(where, None, None, codec.convert(obj), None)
            except FieldError as exc:
                yield Item(where, None, None, None, exc)
        stats.complete = True

    def final_checks(self) -> list[Problem]:
        return []
