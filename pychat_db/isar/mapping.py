"""The app mapping: the chat app's Isar collections, properties and links ← the export contract's.

`MAPPING` is the table (and docs/isar-format.md's): for each contract collection
(`pychat_db.exchange.contract`), its Isar collection, the property each field is read
from (the field's own name) with the stored types accepted (by the field's kind:
`STORED`), and the links that hold its link fields.
message_tags is the many-to-many link `TAGS_LINK`. `check_schema` refuses a file
holding what the table does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from pychat_db.exchange import contract
from pychat_db.exchange.contract import Collection, Kind
from pychat_db.isar.file import IsarFile
from pychat_db.isar.format import DataType, IsarFormatError

TEXT = (DataType.String,)
TIMESTAMP = (DataType.Long,)  # DateTime: Long µs since the epoch, UTC
BOOL = (DataType.Bool,)
ENUM = (DataType.String, DataType.Byte, DataType.Int)  # by name, or by ordinal in older builds
BYTES = (DataType.LongList, DataType.ByteList)  # List<int> or List<byte>


@dataclass(frozen=True, slots=True)
class PropertyMap:
    field: str  # contract field (camelCase)
    prop: str  # Isar property name
    types: tuple[DataType, ...]  # stored types accepted


@dataclass(frozen=True, slots=True)
class LinkMap:
    field: str  # contract field holding the target id
    link: str  # Isar link name
    target: str  # Isar collection linked to


@dataclass(frozen=True, slots=True)
class CollectionMap:
    contract: Collection
    isar: str  # Isar collection name
    properties: tuple[PropertyMap, ...]
    links: tuple[LinkMap, ...] = ()


# The stored types accepted for a contract field of each kind (an id or a link is not a property).
STORED: dict[Kind, tuple[DataType, ...]] = {
    Kind.TEXT: TEXT,
    Kind.TIMESTAMP: TIMESTAMP,
    Kind.BOOL: BOOL,
    Kind.ENUM: ENUM,
    Kind.BYTES: BYTES,
}


def mapped(collection: Collection, isar: str, *links: LinkMap) -> CollectionMap:
    """`collection` read from the Isar collection `isar`: each of its fields from the property of the same
    name, as the stored types of its kind (`STORED`); its link fields from `links`."""
    properties = tuple(PropertyMap(f.name, f.name, STORED[f.kind]) for f in collection.fields if f.kind in STORED)
    return CollectionMap(collection, isar, properties, links)


MAPPING: tuple[CollectionMap, ...] = (
    mapped(contract.CONFIGURATION, "Configuration"),
    mapped(contract.THREADS, "Thread"),
    mapped(contract.MODES, "Mode"),
    mapped(contract.TAGS, "Tag"),
    mapped(contract.MESSAGES, "Message", LinkMap("threadId", "thread", "Thread")),
    mapped(
        contract.MODE_OUTPUTS, "ModeOutput", LinkMap("threadId", "thread", "Thread"), LinkMap("modeId", "mode", "Mode")
    ),
)
BY_CONTRACT = {m.contract.name: m for m in MAPPING}
BY_ISAR = {m.isar: m for m in MAPPING}
# message_tags: the many-to-many link Message.tags → Tag.
TAGS_LINK = ("Message", "tags", "Tag")
KNOWN_LINKS = {("Message", "thread"), ("Message", "tags"), ("ModeOutput", "thread"), ("ModeOutput", "mode")}


def check_schema(isar: IsarFile) -> None:
    """Refuse a file holding what the mapping does not know (a map, a collection, a link with data: it
    would be lost), a property stored as a type the mapping does not read, or a link to another target."""
    for map_name, info in isar.map_info.items():
        if not map_name.startswith("_") and map_name not in isar.schemas and info.entries:
            raise IsarFormatError(
                f"map {map_name} holds {info.entries} entries but has no schema in _info; they would be lost",
                collection=map_name,
            )
    for name, schema in isar.collections.items():
        cmap = BY_ISAR.get(name)
        if cmap is None:
            first = next(isar.raw_objects(name), None)
            if first is not None:
                raise IsarFormatError(
                    f"collection {name} is not known to the app mapping; its {isar.count(name)} objects would be lost",
                    collection=name,
                    id=first[0],
                )
            continue
        known = {p.prop: p for p in cmap.properties}
        for prop in schema.named_properties:
            pm = known.get(prop.name or "")
            if pm is not None and prop.type not in pm.types:
                accepted = " or ".join(t.value for t in pm.types)
                raise IsarFormatError(
                    f"stored as {prop.type.value}; the mapping reads {accepted}", collection=name, field=prop.name
                )
        for link in schema.links:
            if (name, link.name) not in KNOWN_LINKS:
                first_link = next(isar.links(name, link), None)
                if first_link is not None:
                    raise IsarFormatError(
                        f"link {link.name} is not known to the app mapping; its {isar.link_count(name, link)} "
                        "entries would be lost",
                        collection=name,
                        id=first_link[0],
                        field=link.name,
                    )
                continue
            expected = "Tag" if (name, link.name) == ("Message", "tags") else None
            for lm in cmap.links:
                if lm.link == link.name:
                    expected = lm.target
            if link.target != expected:
                raise IsarFormatError(
                    f"links to {link.target}; the mapping expects {expected}", collection=name, field=link.name
                )
