"""Isar 3 ids and their 8-byte keys: one at a time, and a batch at a time in C.

A collection map's keys, and a link map's keys and values, are the id XOR 1<<63 as 8
bytes little-endian (isar_core `object/id.rs`), so key order is signed id order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

SIGN = 1 << 63
NEG = -(1 << 63)  # XOR with it flips bit 63 of a two's complement value (bits 63 and up set)
_FLIP_SIGN = bytes(b ^ 0x80 for b in range(256))


def id_from_key(key: bytes) -> int:
    """Collection or link key (8 bytes LE of `id XOR 1<<63`) → signed id."""
    return int.from_bytes(key, "little", signed=True) ^ NEG


def key_from_id(id_: int) -> bytes:
    """Signed id → its 8-byte key."""
    return ((id_ % (1 << 64)) ^ SIGN).to_bytes(8, "little")


def decode_ids(keys: list[bytes]) -> tuple[int, ...]:
    """8-byte keys (`key_from_id`) → ids, in C: flip each key's sign bit back, unpack as i64."""
    joined = bytearray(b"".join(keys))
    joined[7::8] = joined[7::8].translate(_FLIP_SIGN)
    return struct.unpack(f"<{len(keys)}q", joined)


def encode_ids(ids: Sequence[int]) -> list[bytes]:
    """Ids → their 8-byte keys (`key_from_id`), packed in C."""
    joined = bytearray(struct.pack(f"<{len(ids)}q", *ids))
    joined[7::8] = joined[7::8].translate(_FLIP_SIGN)
    packed = bytes(joined)
    return [packed[i : i + 8] for i in range(0, len(packed), 8)]
