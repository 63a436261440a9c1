"""An opened Isar 3 file (`IsarFile`): its schemas from `_info`, its objects and links in key order.

Nothing here knows the chat app. Objects and link pairs are read a batch at a time (one call
each into `clibmdbx`), their ids decoded in C (`keys.decode_ids`); a key or value of another
length is refused, after what was read before it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

from pychat_db.isar.format import CollectionSchema, IsarFormatError, Link, ObjectReader, decode
from pychat_db.isar.keys import NEG, decode_ids, encode_ids, id_from_key
from pychat_db.isar.storage import MapInfo, Store

INFO_MAP = "_info"
LINK_BATCH = 1024  # link pairs read and decoded per call (16 bytes each)
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


class IsarFile:
    """An opened Isar 3 file (a `Store`): its schemas, objects and links, read lazily in key order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.map_info: dict[str, MapInfo] = {m.name: m for m in store.maps()}
        if INFO_MAP not in self.map_info:
            raise IsarFormatError("not an Isar 3 file: the MDBX file has no _info map")
        schemas: dict[str, CollectionSchema] = {}
        for key, value in store.items(INFO_MAP):
            name = key.decode("utf-8", "replace")
            schema = CollectionSchema.from_json(name, value)
            schemas[schema.name] = schema
        self.schemas = schemas
        self.embedded = {n: s for n, s in schemas.items() if s.embedded}
        self.collections = {n: s for n, s in schemas.items() if not s.embedded}
        for name in self.collections:
            info = self.map_info.get(name)
            if info is not None and not info.integer_key:
                raise IsarFormatError("not an Isar 3 collection map (keys are not 8-byte integers)", collection=name)

    @property
    def schema_versions(self) -> set[int]:
        return {s.version for s in self.schemas.values()}

    def count(self, collection: str) -> int:
        info = self.map_info.get(collection)
        return info.entries if info else 0

    def link_count(self, collection: str, link: Link) -> int:
        info = self.map_info.get(link.map_name(collection))
        return info.entries if info else 0

    def _pairs(self, map_name: str, collection: str, field: str | None = None) -> Iterator[tuple[int, bytes]]:
        """(id of the key, value) of a map, in key order; a key that is not 8 bytes is corrupt."""
        from_bytes = int.from_bytes
        neg = NEG
        for key, value in self.store.items(map_name):
            if len(key) != 8:
                raise IsarFormatError(f"corrupt key of {len(key)} bytes in map {map_name}", collection=collection)
            yield from_bytes(key, "little", signed=True) ^ neg, value

    def raw_objects(self, collection: str) -> Iterator[tuple[int, bytes]]:
        """(id, object bytes) of `collection` in id order; nothing when its map does not exist."""
        if collection not in self.map_info:
            return iter(())
        return self._pairs(collection, collection)

    def object_batches(self, collection: str, size: int) -> Iterator[tuple[Sequence[int], list[bytes]]]:
        """The objects of `raw_objects()` as (ids, object bytes) of up to `size` objects, each batch read in
        one call and its ids decoded in C (as `link_batches`). A key that is not 8 bytes is corrupt: it is
        refused after the objects before it were yielded."""
        if collection not in self.map_info:
            return
        for batch in self.store.batches(collection, size):
            keys = list(map(_FIRST, batch))
            datas = list(map(_SECOND, batch))
            if set(map(len, keys)) == {8}:
                yield decode_ids(keys), datas
                continue
            bad = next(i for i, key in enumerate(keys) if len(key) != 8)
            if bad:
                yield [id_from_key(key) for key in keys[:bad]], datas[:bad]
            raise IsarFormatError(f"corrupt key of {len(keys[bad])} bytes in map {collection}", collection=collection)

    def readers(self, collection: str) -> Iterator[ObjectReader]:
        """An `ObjectReader` per object of `collection`, in id order."""
        for id_, data in self.raw_objects(collection):
            yield ObjectReader(data, collection=collection, id=id_, embedded_schemas=self.embedded)

    def objects(self, collection: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """(id, {property: value}) for every object of `collection`, generically decoded, in id order."""
        schema = self.collections[collection]
        for reader in self.readers(collection):
            yield reader.id or 0, decode(reader, schema)

    def first_missing(self, collection: str, ids: Sequence[int]) -> int | None:
        """The index of the first of `ids` without an object in `collection`, or None (one lookup each)."""
        if not ids:
            return None
        if collection not in self.map_info:
            return 0
        return self.store.first_missing(collection, encode_ids(ids))

    def links(self, collection: str, link: Link) -> Iterator[tuple[int, int]]:
        """(source id, target id) pairs of one link, sorted by source then target."""
        return itertools.chain.from_iterable(itertools.starmap(zip, self.link_batches(collection, link)))

    def link_batches(self, collection: str, link: Link) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
        """The pairs of `links()` as (source ids, target ids) of up to LINK_BATCH pairs, decoded in C.

        A link map's keys and values are 8-byte ids (`key_from_id`): each batch is
        joined, its sign bits flipped back (`bytes.translate` on every 8th byte) and
        unpacked as little-endian i64 in one call each, instead of two
        `int.from_bytes` per pair. A batch with any other length is decoded pair by
        pair, which names the corrupt one.
        """
        name = link.map_name(collection)
        if name not in self.map_info:
            return
        for batch in self.store.batches(name, LINK_BATCH):
            keys = list(map(_FIRST, batch))
            values = list(map(_SECOND, batch))
            if set(map(len, keys)) != {8} or set(map(len, values)) != {8}:
                yield self._link_batch_slowly(name, collection, link, batch)
                continue
            yield decode_ids(keys), decode_ids(values)

    def _link_batch_slowly(
        self, name: str, collection: str, link: Link, batch: list[tuple[bytes, bytes]]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        from_bytes = int.from_bytes
        neg = NEG
        sources: list[int] = []
        targets: list[int] = []
        for key, value in batch:
            if len(key) != 8:
                raise IsarFormatError(f"corrupt key of {len(key)} bytes in map {name}", collection=collection)
            source = from_bytes(key, "little", signed=True) ^ neg
            if len(value) != 8:
                raise IsarFormatError(
                    f"corrupt link target of {len(value)} bytes", collection=collection, id=source, field=link.name
                )
            sources.append(source)
            targets.append(from_bytes(value, "little", signed=True) ^ neg)
        return tuple(sources), tuple(targets)
