"""A synthetic export of realistic shape (`pychat-db generate`, `python -m tools.generate`).

Deterministic: the same arguments give the same bytes. Streams every collection
(constant memory however many messages). What it holds:
  * threads (default messages/100), modes (8, the first 3 built in: not editable),
    tags (default 50), messages, mode outputs (default messages/10), about 1.5 tag
    links per message (0-4 distinct tags), one configuration row with an API key;
  * text with emoji (ZWJ sequences, flags, skin tones), combining marks, CJK, Hangul,
    RTL scripts, astral characters, quotes, backslashes, tabs, newlines, U+FEFF inside
    text and, in some rows, NUL;
  * `--blob-ratio` of the messages are audio or image messages carrying a blob of
    `--blob-size` bytes (some with an empty blob, distinct from no blob), with mime
    type, file name and (audio) transcript, `""` and null both used;
  * ids: mostly 1, 2, 3, ... (the legacy store's auto-increment) with a few hashed ids
    spread over the whole signed 64-bit range (including -2**63 and 2**63-1, and
    beyond 2**53 where a float-based JSON reader would lose digits);
  * timestamps mostly 2020-2025 with microseconds, some before 1970, the epoch itself
    and one microsecond before it.

Variants:
  * `canonical` (default): exactly what `python -m tools.export` writes (NDJSON in id
    order, base64 blobs, canonical timestamps, manifest.json);
  * `legacy`: what the old store's own JSON export writes: `NAME.json` files each
    holding one compact JSON array (no line breaks) in creation order (hashed ids
    out of order), keys as the legacy store orders them (id, then alphabetical),
    timestamps as integer microseconds since the epoch, blobs as arrays of integers,
    `configuration.json` a single object, no manifest.
The two variants hold the same data: importing either gives the same database.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pychat_db.convert import micros_to_timestamp_text
from pychat_db.exchange.contract import (
    Collection,
    Kind,
)
from pychat_db.exchange.writer import FileSummary, HashingWriter, write_file

# manifest.json's exportedAt in a generated canonical export (fixed: same args, same bytes).
GENERATED_AT = "2026-01-01T00:00:00.000000Z"
_T0 = 1_577_836_800_000_000  # 2020-01-01T00:00:00Z in µs
_SPAN = 5 * 365 * 86_400 * 1_000_000  # five years
_MIN_I64 = -(2**63)
_MAX_I64 = 2**63 - 1
_POOL_SIZE = 1 << 20

WORDS = [
    "the",
    "model",
    "answer",
    "question",
    "thread",
    "message",
    "please",
    "could",
    "you",
    "explain",
    "why",
    "how",
    "what",
    "when",
    "summary",
    "translate",
    "code",
    "python",
    "function",
    "error",
    "result",
    "data",
    "table",
    "query",
    "index",
    "fast",
    "slow",
    "hello",
    "thanks",
    "again",
    "maybe",
    "later",
    "tomorrow",
    "today",
    "morning",
    "meeting",
    "notes",
    "draft",
    "review",
    "idea",
]
UNICODE = [
    "héllo",
    "naïve",
    "café",
    "e\u0301",  # e + combining acute
    "a\u0308\u0301",  # stacked combining marks
    "Z\u0351\u0357\u0342",
    "日本語のテキスト",
    "中文消息",
    "한국어",
    "😀",
    "👩\u200d👩\u200d👧\u200d👦",  # ZWJ family
    "🇫🇷",
    "👍🏽",
    "שלום",
    "مرحبا بالعالم",
    "Ωμέγα",
    "∑∫√∞",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",  # astral (Fraktur)
    "zero\u200bwidth",
    "tab\there",
    "line\nbreak",
    "crlf\r\nend",
    '"quoted"',
    "back\\slash",
    "bom\ufeffinside",
    "</script>",
    "\u2028sep",
]
MODE_NAMES = ["Summarize", "Translate", "Explain code", "Brainstorm", "Proofread", "Outline", "Critique", "Haiku ✍️"]
TAG_NAMES = ["work", "personal", "ideas", "🔥 hot", "日本", "todo", "read later", "naïve", "code", "music"]
MIMES_AUDIO = [("audio/mp4", ".m4a", b"\x00\x00\x00\x20ftypM4A "), ("audio/wav", ".wav", b"RIFF\x24\x00\x00\x00WAVE")]
MIMES_IMAGE = [("image/png", ".png", b"\x89PNG\r\n\x1a\n"), ("image/jpeg", ".jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF")]


def _seed_int(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


class IdSpace:
    """Row index (creation order) → id: `i + 1` except a few hashed ids over the signed 64-bit range.

    `creation_order()` and `id_order()` both visit the ordinary rows in ascending index,
    so a row's content, drawn from a shared stream for ordinary rows and from its own
    stream for hashed ones, is the same whichever order the rows are written in.
    """

    def __init__(self, seed: int, name: str, count: int) -> None:
        self.count = count
        hashed = 0 if count < 8 else max(4, min(count // 100, 512))
        self.step = count // hashed if hashed else 0
        self.hashed: dict[int, int] = {}  # index -> id
        used: set[int] = set()
        for k in range(hashed):
            i = k * self.step + self.step // 2
            if k == 0:
                value = _MIN_I64
            elif k == 1:
                value = _MAX_I64
            else:
                u = _seed_int(seed, name, "id", i)
                magnitude = 2**53 + u % (_MAX_I64 - 2**53)
                value = -magnitude if k % 2 else magnitude
            while value in used:
                value -= 1
            used.add(value)
            self.hashed[i] = value
        self._sorted = sorted((v, i) for i, v in self.hashed.items())
        self._ids = [v for v, _ in self._sorted]

    def id_of(self, i: int) -> int:
        return self.hashed.get(i, i + 1)

    def creation_order(self) -> Iterator[int]:
        return iter(range(self.count))

    def id_order(self) -> Iterator[int]:
        split = bisect.bisect_left(self._ids, 0)
        for _, i in self._sorted[:split]:
            yield i
        for i in range(self.count):
            if i not in self.hashed:
                yield i
        for _, i in self._sorted[split:]:
            yield i


@dataclass(frozen=True, slots=True)
class Spec:
    seed: int
    messages: int
    threads: int
    tags: int
    modes: int
    mode_outputs: int
    blob_ratio: float
    blob_min: int
    blob_max: int


class Generator:
    """The rows of each collection, with timestamps as µs (the caller converts for its variant)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.ids = {
            "threads": IdSpace(spec.seed, "threads", spec.threads),
            "modes": IdSpace(spec.seed, "modes", spec.modes),
            "tags": IdSpace(spec.seed, "tags", spec.tags),
            "messages": IdSpace(spec.seed, "messages", spec.messages),
            "mode_outputs": IdSpace(spec.seed, "mode_outputs", spec.mode_outputs),
        }
        self.pool = random.Random(_seed_int(spec.seed, "pool")).randbytes(_POOL_SIZE + spec.blob_max)

    # -- rows ---------------------------------------------------------------------------------
    def _stream(
        self, name: str, space: IdSpace, order: Iterable[int], make: Callable[[int, random.Random], tuple[object, ...]]
    ) -> Iterator[tuple[object, ...]]:
        shared = random.Random(_seed_int(self.spec.seed, name, "shared"))
        for i in order:
            rng = random.Random(_seed_int(self.spec.seed, name, "row", i)) if i in space.hashed else shared
            yield make(i, rng)

    def rows(self, name: str, *, sorted_by_id: bool) -> Iterator[tuple[object, ...]]:
        if name == "configuration":
            return iter([self.configuration()])
        if name == "message_tags":
            return self.message_tags(sorted_by_id=sorted_by_id)
        space = self.ids[name]
        order = space.id_order() if sorted_by_id else space.creation_order()
        make = {
            "threads": self._thread,
            "modes": self._mode,
            "tags": self._tag,
            "messages": self._message,
            "mode_outputs": self._mode_output,
        }[name]
        return self._stream(name, space, order, make)

    def configuration(self) -> tuple[object, ...]:
        rng = random.Random(_seed_int(self.spec.seed, "configuration"))
        api_key = "sk-gen-" + rng.randbytes(20).hex()
        return (0, api_key, "https://api.example.com/v1", "gpt-4o-mini")

    @staticmethod
    def _text(rng: random.Random, low: int, high: int) -> str:
        words = rng.choices(WORDS, k=rng.randint(low, high))
        for _ in range(rng.randint(0, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(UNICODE))
        return " ".join(words)

    def _when(self, rng: random.Random, i: int, count: int, *, before_1970_every: int) -> int:
        if i % before_1970_every == 3:
            return -rng.randrange(1, 40 * 365 * 86_400 * 1_000_000)
        return _T0 + i * (_SPAN // max(count, 1)) + rng.randrange(3_600_000_000)

    def _thread(self, i: int, rng: random.Random) -> tuple[object, ...]:
        created = self._when(rng, i, self.spec.threads, before_1970_every=97)
        name = f"Thread {i + 1}: {self._text(rng, 1, 5)}"
        return (self.ids["threads"].id_of(i), name, created)

    def _mode(self, i: int, rng: random.Random) -> tuple[object, ...]:
        base = MODE_NAMES[i % len(MODE_NAMES)]
        name = base if i < len(MODE_NAMES) else f"{base} {i + 1}"
        prompt = f"You are a helpful assistant. {name}: " + self._text(rng, 5, 30)
        return (self.ids["modes"].id_of(i), name, prompt, 0 if i < 3 else 1)

    def _tag(self, i: int, rng: random.Random) -> tuple[object, ...]:
        base = TAG_NAMES[i % len(TAG_NAMES)]
        name = base if i < len(TAG_NAMES) else f"{base} {i // len(TAG_NAMES)}"
        description = "" if rng.random() < 0.3 else self._text(rng, 1, 8)
        return (self.ids["tags"].id_of(i), name, description, 1 if rng.random() < 0.8 else 0)

    def _thread_for(self, rng: random.Random, i: int, count: int) -> int:
        n = self.spec.threads
        t = rng.randrange(n) if rng.random() < 0.1 else min(n - 1, i * n // max(count, 1))
        return self.ids["threads"].id_of(t)

    def _message(self, i: int, rng: random.Random) -> tuple[object, ...]:
        spec = self.spec
        thread_id = self._thread_for(rng, i, spec.messages)
        if i == 1:
            timestamp = 0
        elif i == 2:
            timestamp = -1
        else:
            timestamp = self._when(rng, i, spec.messages, before_1970_every=499)
        text = self._text(rng, 1, 40)
        if i % 211 == 7:
            text += " \x00 nul"
        description = self._text(rng, 1, 6) if rng.random() < 0.1 else ""
        empty_blob = spec.blob_ratio > 0 and i % 1009 == 5
        has_blob = empty_blob or rng.random() < spec.blob_ratio
        if not has_blob:
            return (
                self.ids["messages"].id_of(i),
                thread_id,
                text,
                timestamp,
                "text",
                description,
                None,
                None,
                None,
                None,
            )
        audio = rng.random() < 0.5
        mime, ext, header = rng.choice(MIMES_AUDIO if audio else MIMES_IMAGE)
        size = 0 if empty_blob else rng.randint(spec.blob_min, spec.blob_max)
        offset = rng.randrange(_POOL_SIZE)
        data = (header + self.pool[offset : offset + size])[:size]
        file_name: str | None
        if audio:
            kind = "audio"
            transcript: str | None = "" if rng.random() < 0.2 else self._text(rng, 3, 30)
            file_name = f"voice-{i + 1}{ext}" if rng.random() < 0.7 else None
        else:
            kind = "image"
            transcript = None
            file_name = f"IMG_{i + 1:04d}{ext}" if rng.random() < 0.9 else ""
        return (
            self.ids["messages"].id_of(i),
            thread_id,
            text,
            timestamp,
            kind,
            description,
            data,
            mime,
            transcript,
            file_name,
        )

    def _mode_output(self, i: int, rng: random.Random) -> tuple[object, ...]:
        spec = self.spec
        thread_id = self._thread_for(rng, i, spec.mode_outputs)
        mode_id = self.ids["modes"].id_of(rng.randrange(spec.modes))
        created = self._when(rng, i, spec.mode_outputs, before_1970_every=211)
        return (self.ids["mode_outputs"].id_of(i), thread_id, mode_id, created, self._text(rng, 10, 120))

    def message_tags(self, *, sorted_by_id: bool) -> Iterator[tuple[object, ...]]:
        """(messageId, tagId) pairs: 0-4 distinct tags per message, about 1.5 on average."""
        space = self.ids["messages"]
        tags = self.ids["tags"]
        order = space.id_order() if sorted_by_id else space.creation_order()
        weights = (20, 35, 25, 15, 5)
        for i, rng in zip(order, self._rngs("message_tags", space, sorted_by_id), strict=True):
            k = min(rng.choices(range(5), weights=weights)[0], self.spec.tags)
            chosen = sorted(tags.id_of(t) for t in rng.sample(range(self.spec.tags), k))
            message_id = space.id_of(i)
            for tag_id in chosen:
                yield (message_id, tag_id)

    def _rngs(self, name: str, space: IdSpace, sorted_by_id: bool) -> Iterator[random.Random]:
        shared = random.Random(_seed_int(self.spec.seed, name, "shared"))
        order = space.id_order() if sorted_by_id else space.creation_order()
        for i in order:
            yield random.Random(_seed_int(self.spec.seed, name, "row", i)) if i in space.hashed else shared


# -- writing --------------------------------------------------------------------------------------
def _timestamp_positions(collection: Collection) -> tuple[int, ...]:
    return tuple(i for i, f in enumerate(collection.fields) if f.kind is Kind.TIMESTAMP)


def to_stored(collection: Collection, rows: Iterable[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    positions = _timestamp_positions(collection)
    if not positions:
        yield from rows
        return
    for row in rows:
        values = list(row)
        for p in positions:
            micros = values[p]
            assert isinstance(micros, int)
            values[p] = micros_to_timestamp_text(micros)
        yield tuple(values)


def legacy_encoder(collection: Collection) -> Callable[[Sequence[object]], bytes]:
    """Row (µs timestamps) → the legacy store's JSON object: id first, other keys alphabetical."""
    fields = list(collection.fields)
    order = sorted(range(len(fields)), key=lambda i: (fields[i].name != "id", fields[i].name))
    encode = msgspec.json.Encoder().encode

    def enc(row: Sequence[object]) -> bytes:
        obj: dict[str, object] = {}
        for i in order:
            value = row[i]
            kind = fields[i].kind
            if kind is Kind.BOOL:
                value = bool(value)
            elif kind is Kind.BYTES and isinstance(value, bytes):
                value = list(value)
            obj[fields[i].name] = value
        return encode(obj)

    return enc


def write_legacy(directory: Path, collection: Collection, rows: Iterable[Sequence[object]]) -> FileSummary:
    """One compact JSON array (`NAME.json`), or for configuration a single object."""
    encode = legacy_encoder(collection)

    def write(out: HashingWriter) -> int:
        count = 0
        if collection.single_object:
            for row in rows:
                out.write(encode(row))
                count += 1
        else:
            out.write(b"[")
            for row in rows:
                if count:
                    out.write(b",")
                out.write(encode(row))
                count += 1
            out.write(b"]")
        return count

    return write_file(directory / f"{collection.name}.json", collection, write)
