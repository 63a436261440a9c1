"""Proving that a database holds exactly an export (`python -m tools.verify`).

The export is read with the importer's own reader (`pychat_db.exchange.reader`),
so every value is normalised exactly as the import normalised it, and each row is
summarised by the same content digest (`codec.row_digest`: every field, type-tagged).
Per collection:

1. the export's rows are streamed once and merged, as they come, with the database
   table read in primary-key order (no sort): a row whose key is the database cursor's
   is compared at once (content digests); any other export row (out of order: the
   legacy store writes creation order; or absent from the database) goes, with its
   key, digest and location, to a temporary on-disk SQLite table, so memory stays
   bounded however large or unsorted the export;
2. at the end that table, in key order, is merged with the database rows not matched
   yet: a key on one side only, or a digest that differs, is a mismatch (a key the
   database holds but an earlier export row already matched is a duplicate id);
3. for the first rows whose digests differ, the export is read again to find those
   rows and the differing fields are named (the API key's value never is).

The SELECTs are built from `contract.py` (as tools.export's are), not kept in `queries/`:
the contract is the one list of columns and their order, and the digest depends on that order.

With `jobs` > 1 the database side (scan and digests) runs in a forked child process
and the link checks in a thread, each on its own read-only connection, while this
process parses the export: the two halves of the work use two cores.

Then every link stored in the database is checked to point at an existing row
(equal rows on both sides mean the export's links are the same ones), the
manifest's counts and file hashes are checked when there is a manifest, and
`samples` random messages are compared field by field together with their tags.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import operator
import random
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import apsw

from pychat_db.connection import connect
from pychat_db.errors import MigrationError, PychatDbError, SchemaMismatch
from pychat_db.exchange.codec import NaiveTimezone, Row, row_digest
from pychat_db.exchange.contract import BY_NAME, COLLECTIONS, MESSAGE_TAGS, MESSAGES, Collection, select_sql
from pychat_db.exchange.reader import Chunk, ExportDirectory, ExportError, Item, Problem, Source
from pychat_db.interrupts import STOP_SIGNALS, deferred_interrupts
from pychat_db.schema_check import open_at_head

SECRET_FIELDS = frozenset({("configuration", "apiKey")})
DETAILED_PER_COLLECTION = 20  # differing rows whose fields are named
LISTED_PER_KIND = 20  # mismatches of one kind listed per collection (all are counted)


class VerifyError(PychatDbError):
    """Verification could not run: the export is unreadable or invalid, or the database unusable."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference: `collection key: field: detail` (field None for the whole row)."""

    collection: str
    key: str
    field: str | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.collection} {self.key}"
        return f"{where}: {self.field}: {self.detail}" if self.field else f"{where}: {self.detail}"


@dataclass(slots=True)
class CollectionCheck:
    collection: str
    export_rows: int = 0
    db_rows: int = 0
    matching: int = 0
    only_in_export: int = 0
    only_in_db: int = 0
    differing: int = 0
    broken_links: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.export_rows == self.db_rows == self.matching and not (
            self.only_in_export or self.only_in_db or self.differing or self.broken_links
        )


@dataclass(slots=True)
class VerifyReport:
    export: str
    db: str
    collections: list[CollectionCheck] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)
    samples_requested: int = 0
    samples_checked: int = 0
    sample_mismatches: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            all(c.ok for c in self.collections)
            and not self.manifest_problems
            and not self.sample_mismatches
            and not self.mismatches
        )

    @property
    def rows(self) -> int:
        return sum(c.export_rows for c in self.collections)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "export": self.export,
            "db": self.db,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds > 0 else None,
            "collections": {
                c.collection: {k: v for k, v in asdict(c).items() if k != "collection"} | {"ok": c.ok}
                for c in self.collections
            },
            "samples": {
                "requested": self.samples_requested,
                "checked": self.samples_checked,
                "mismatches": self.sample_mismatches,
            },
            "manifest_problems": self.manifest_problems,
            "mismatches": [asdict(m) | {"message": str(m)} for m in self.mismatches],
        }


def key_positions(collection: Collection) -> tuple[int, ...]:
    return tuple(collection.field_names.index(name) for name in collection.key)


def describe_key(collection: Collection, key: tuple[Any, ...]) -> str:
    """`id 42` or `messageId 5, tagId 7`."""
    return ", ".join(f"{name} {value}" for name, value in zip(collection.key, key, strict=True))


SHORT_BYTES = 32  # a blob up to this long is shown whole; a longer one by length, SHA-256 and a prefix
SHORT_CHARS = 40  # a string is shown by a window of this many characters; a longer one also by its SHA-256
PREFIX_BYTES = 16


def stored_value(value: object) -> object:
    """`value` as SQLite stores it: a blob as `bytes`, whatever object holds it.

    A row of an Isar file's reader process holds its blobs as `memoryview`s of the frame
    they came in (`pychat_db.isar.worker`); read inline they are `bytes`. Both are the
    same blob, bound and digested alike (`codec.row_digest`), so they are compared as one.
    """
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def owned_row(row: Row) -> Row:
    """`row` with its blobs as `bytes` (a memoryview would keep the whole frame it views alive)."""
    if any(isinstance(v, memoryview | bytearray) for v in row):
        return tuple(bytes(v) if isinstance(v, memoryview | bytearray) else v for v in row)
    return row


def same_value(a: object, b: object) -> bool:
    """Whether two field values are the same stored value (a blob's holder does not matter; the
    storage class does: 1, 1.0, '1' and b'1' are four values)."""
    a, b = stored_value(a), stored_value(b)
    return type(a) is type(b) and a == b


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")).hexdigest()


def _short(text: str, at: int) -> str:
    start = max(0, at - 10)
    piece = text[start : start + SHORT_CHARS]
    return ("…" if start else "") + repr(piece) + ("…" if start + SHORT_CHARS < len(text) else "")


def show_value(value: object, at: int = 0) -> str:
    """A field value for a message, never long: a blob past SHORT_BYTES (or a string past SHORT_CHARS) as its
    length, SHA-256 and a short piece (a string's around character `at`)."""
    value = stored_value(value)
    if value is None:
        return "null"
    if isinstance(value, bytes):
        if len(value) <= SHORT_BYTES:
            return f"{len(value):,} bytes {value!r}"
        return f"{len(value):,} bytes (sha256 {_sha256(value)}, starts {value[:PREFIX_BYTES]!r}…)"
    if isinstance(value, str):
        if len(value) <= SHORT_CHARS:
            return f"{_short(value, at)} ({len(value):,} chars)"
        return f"{_short(value, at)} ({len(value):,} chars, sha256 {_sha256(value)})"
    return repr(value)


def _first_difference(a: bytes | str, b: bytes | str) -> int:
    """Index of the first unequal element (the shorter's length when one is a prefix of the other)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + 4096] == b[i : i + 4096]:  # a blob of megabytes: block by block, then element-wise
        i += 4096
    for j in range(i, min(i + 4096, n)):
        if a[j] != b[j]:
            return j
    return n


def describe_difference(collection: Collection, name: str, exported: object, stored: object) -> str:
    """What differs between a field's exported and stored value, without the API key's value.

    Values are shown short (`show_value`): never a whole blob, and never the object holding one.
    """
    if (collection.name, name) in SECRET_FIELDS:
        return "differs (value redacted: it is the API key)"
    exported, stored = stored_value(exported), stored_value(stored)
    if isinstance(exported, bytes) and isinstance(stored, bytes):
        at, unit = _first_difference(exported, stored), "byte"
    elif isinstance(exported, str) and isinstance(stored, str):
        at, unit = _first_difference(exported, stored), "character"
    else:
        return f"export {show_value(exported)}, database {show_value(stored)}"
    return f"export {show_value(exported, at)}, database {show_value(stored, at)}, first difference at {unit} {at:,}"


def field_differences(collection: Collection, exported: Row, stored: Row) -> list[tuple[str, str]]:
    """(field name, description) for each field whose values differ (`same_value`: value and storage class)."""
    out = []
    for f, a, b in zip(collection.fields, exported, stored, strict=True):
        if not same_value(a, b):
            out.append((f.name, describe_difference(collection, f.name, a, b)))
    return out


def open_database(path: Path) -> apsw.Connection:
    """Read-only connection to a database at the code's schema version, schema ours; VerifyError otherwise."""
    try:
        return open_at_head(path)
    except FileNotFoundError:
        raise VerifyError(f"{path}: no such database") from None
    except (MigrationError, SchemaMismatch) as exc:
        raise VerifyError(str(exc)) from None


READ_AHEAD = 20_000  # how far the database cursor may jump ahead to meet an export row
MAX_AHEAD = 50_000  # database rows kept in memory while unpaired (about 7 MB); the oldest overflow to disk
READ_CACHE = "PRAGMA cache_size = -4096"  # sequential scans and point lookups: a big cache buys nothing
_BATCH = 4096


def db_digests(conn: apsw.Connection, collection: Collection) -> Iterator[tuple[Any, str]]:
    """(key, row digest) of every row of the collection's table, in key order.

    The key is the id for id-keyed collections and (messageId, tagId) for message_tags.
    """
    getkey = operator.itemgetter(*key_positions(collection))
    for row in conn.execute(select_sql(collection)):
        yield getkey(row), row_digest(row)


def _digest_worker(db_path: str, names: list[str], out: Pipe, parent_end: Pipe) -> None:
    """Child process: send each collection's `db_digests` in batches, then None; a str on failure.

    Interruptions are the parent's to handle: Ctrl-C (which reaches the whole process group) is
    ignored here, and SIGTERM (the parent's `terminate()` when it stops) ends this process at once,
    without the parent's handler that a fork copied (`tools.cli.interrupt_on_sigterm`): no traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent across the fork
    parent_end.close()  # the fork's copy of the parent's end: with it closed, `send` fails if the parent dies
    try:
        conn = connect(db_path, readonly=True)
        conn.execute(READ_CACHE).fetchall()
        conn.execute("BEGIN")
        for name in names:
            batch: list[tuple[Any, str]] = []
            for item in db_digests(conn, BY_NAME[name]):
                batch.append(item)
                if len(batch) >= _BATCH:
                    out.send(batch)
                    batch = []
            out.send(batch)
            out.send(None)
        conn.close()
    except Exception as exc:  # reported by the parent as a VerifyError
        out.send(f"{type(exc).__name__}: {exc}")
    finally:
        out.close()


def broken_links(conn: apsw.Connection, collection: Collection) -> Iterator[tuple[tuple[Any, ...], str, str, Any]]:
    """(key, link field, target collection, value) of every stored link pointing at no row."""
    key_cols = ", ".join(f"c.{collection.field(name).column}" for name in collection.key)
    for link in collection.links:
        assert link.target is not None
        sql = (
            f"SELECT {key_cols}, c.{link.column} FROM {collection.table} AS c "
            f"WHERE NOT EXISTS (SELECT 1 FROM {link.target} AS p WHERE p.id = c.{link.column})"
        )
        for row in conn.execute(sql):
            yield tuple(row[:-1]), link.name, link.target, row[-1]


class Verifier:
    """One verification run of `export_dir` against `db_path` (see module doc)."""

    def __init__(
        self,
        export_dir: Path,
        db_path: Path,
        *,
        samples: int = 0,
        seed: int = 0,
        naive: NaiveTimezone = NaiveTimezone.REJECT,
        progress: bool = False,
        progress_stream: Any = None,
        source: Source | None = None,
        jobs: int = 2,
    ) -> None:
        self.export_dir = Path(export_dir)
        self.jobs = jobs
        self.db_path = Path(db_path)
        self.samples = samples
        self.rng = random.Random(seed)
        self.progress = progress
        self.stream = progress_stream
        try:
            self.source: Source = source if source is not None else ExportDirectory(self.export_dir, naive)
        except ExportError as exc:
            raise VerifyError(str(exc)) from None
        self.conn = open_database(self.db_path)
        self.conn.execute(READ_CACHE).fetchall()
        self._pipe: Pipe | None = None
        self._worker: Any = None
        self._links_thread: threading.Thread | None = None
        self.one_snapshot = True  # see run()
        self._link_results: dict[str, tuple[int, list[tuple[tuple[Any, ...], str, str, Any]]]] = {}
        self._link_error: BaseException | None = None
        self.spill = apsw.Connection("")  # a private temporary on-disk database, deleted on close
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384", "temp_store = FILE"):
            self.spill.execute(f"PRAGMA {pragma}").fetchall()
        self.report = VerifyReport(str(self.export_dir), str(self.db_path), samples_requested=samples)
        self._sampled: list[tuple[int, Row, str]] = []  # (message id, row, location)
        self._sample_tags: dict[int, set[int]] = {}

    def close(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            self._worker.terminate()
        if self._worker is not None:
            self._worker.join()
        if self._pipe is not None:
            self._pipe.close()
        if self._links_thread is not None:
            self._links_thread.join()
        self.spill.close()
        self.conn.close()

    # -- the database side ------------------------------------------------------------------
    def _start_workers(self) -> None:
        """With jobs > 1: database digests in a child process, link checks in a thread.

        Both read the database through their own read-only connections while this
        process reads the export, so the work is spread over two cores. Each
        connection reads its own snapshot, begun after this process's (`run()`): when
        another connection commits meanwhile, `verify()` reads again in this process alone.
        A source that reads in a process of its own (an Isar file's reader process) is the second
        process already: the database is then read here (at 1M messages, 13.4 s and 73 MB in all,
        against 12.9 s and 102 MB with a third process).
        """
        reads_elsewhere = getattr(self.source, "reader", None) is not None
        if self.jobs <= 1 or reads_elsewhere or "fork" not in multiprocessing.get_all_start_methods():
            return
        ctx = multiprocessing.get_context("fork")
        names = [c.name for c in COLLECTIONS]
        # Ctrl-C and SIGTERM wait until both are started and recorded (so that `close()` stops them): the
        # child must not run this process's handlers (SIGTERM raising KeyboardInterrupt) before
        # `_digest_worker` sets its own, and it unblocks them then, as this process does here.
        with deferred_interrupts():
            receiver, sender = ctx.Pipe(duplex=False)
            worker = ctx.Process(target=_digest_worker, args=(str(self.db_path), names, sender, receiver), daemon=True)
            worker.start()
            sender.close()
            links = threading.Thread(target=self._link_worker, name="verify-links", daemon=True)
            links.start()
            self._worker, self._pipe, self._links_thread = worker, receiver, links

    def _link_worker(self) -> None:
        try:
            conn = connect(self.db_path, readonly=True)
            conn.execute(READ_CACHE).fetchall()
            for collection in COLLECTIONS:
                self._link_results[collection.name] = self._collect_links(conn, collection)
            conn.close()
        except BaseException as exc:  # re-raised in run()
            self._link_error = exc

    @staticmethod
    def _collect_links(
        conn: apsw.Connection, collection: Collection
    ) -> tuple[int, list[tuple[tuple[Any, ...], str, str, Any]]]:
        count = 0
        listed: list[tuple[tuple[Any, ...], str, str, Any]] = []
        for found in broken_links(conn, collection):
            count += 1
            if len(listed) < LISTED_PER_KIND:
                listed.append(found)
        return count, listed

    def _stored(self, collection: Collection) -> Iterator[tuple[Any, str]]:
        """`db_digests` of the collection: from the child process when there is one."""
        if self._pipe is None:
            yield from db_digests(self.conn, collection)
            return
        while True:
            try:
                message = self._pipe.recv()
            except EOFError:
                raise VerifyError(f"{self.db_path}: the database reader stopped unexpectedly") from None
            if message is None:
                return
            if isinstance(message, str):
                raise VerifyError(f"{self.db_path}: {message}")
            yield from message

    # -- reading the export -----------------------------------------------------------------
    def _chunks(self, collection: Collection) -> Iterator[Chunk]:
        """The source's rows in chunks (no Item per accepted row), or its items one chunk each.

        `checked_chunks` (an Isar file's source) reads with every check of `items()`; the
        loader's `chunks()` may leave a check to the loader's SQL, which verify does not run.
        """
        chunks = getattr(self.source, "checked_chunks", None) or getattr(self.source, "chunks", None)
        if chunks is not None:
            yield from chunks(collection)
            return
        for item in self.source.items(collection):
            yield Chunk(item.location, item.line or 0, [], None, [item])

    def _rows_of(self, collection: Collection) -> Iterator[tuple[Row, Chunk, int]]:
        """(row, chunk, i) of every row: `chunk.item(i)` names it. VerifyError at the first row the
        importer would refuse (and at a refusal of the source)."""
        try:
            for chunk in self._chunks(collection):
                rows = chunk.rows
                if rows is not None:
                    for i, row in enumerate(rows):
                        yield row, chunk, i
                    continue
                assert chunk.items is not None
                for i, item in enumerate(chunk.items):
                    if item.error is not None or item.row is None:
                        raise VerifyError(f"{Problem.of(collection.name, item)} (the import refuses this export)")
                    yield item.row, chunk, i
        except ExportError as exc:
            raise VerifyError(str(exc)) from None

    def _export_rows(self, collection: Collection) -> Iterator[tuple[Row, str, int]]:
        """(row, location, line) of every row; VerifyError at the first row the importer would refuse."""
        for row, chunk, i in self._rows_of(collection):
            item: Item = chunk.item(i)
            yield row, item.location, item.line or 0

    def _reservoir(self, seen: int, row: Row, chunk: Chunk, i: int) -> None:
        message_id = row[0]
        assert isinstance(message_id, int)
        if len(self._sampled) < self.samples:
            self._sampled.append((message_id, owned_row(row), chunk.item(i).location))
            return
        j = self.rng.randrange(seen)
        if j < self.samples:
            self._sampled[j] = (message_id, owned_row(row), chunk.item(i).location)

    # -- one collection ---------------------------------------------------------------------
    def check_collection(self, collection: Collection) -> CollectionCheck:
        """Merge the export's rows with the table's, in key order; spill only what does not pair up.

        The database side is read in key order. An export row whose key is the database
        cursor's is compared at once and the cursor moves on. For any other export row the
        cursor reads ahead (at most READ_AHEAD rows) looking for its key, keeping the rows
        it passes in a bounded dict (`ahead`, MAX_AHEAD entries; the oldest overflow to a
        temporary table); an export row still without its database row goes to another
        temporary table. At the end the two tables are merged in key order. A canonical
        (sorted) export spills nothing; one in the legacy store's creation order (ascending
        ids with hashed ids interleaved) spills little more than those hashed ids.
        """
        started = time.perf_counter()
        check = CollectionCheck(collection.name)
        n = len(collection.key)
        positions = key_positions(collection)
        getkey = operator.itemgetter(*positions)
        table = f"e_{collection.name}"  # export rows without their database row yet
        dtable = f"d_{collection.name}"  # database rows without their export row yet
        keys = [f"k{i}" for i in range(n)]
        if n == 1:
            self.spill.execute(
                f"CREATE TABLE {table} (k0 INTEGER PRIMARY KEY, digest TEXT NOT NULL, location TEXT NOT NULL);"
                f"CREATE TABLE {dtable} (k0 INTEGER PRIMARY KEY, digest TEXT NOT NULL)"
            )
        else:
            cols = ", ".join(f"{k} INTEGER NOT NULL" for k in keys)
            pk = f"PRIMARY KEY ({', '.join(keys)})"
            self.spill.execute(
                f"CREATE TABLE {table} ({cols}, digest TEXT NOT NULL, location TEXT NOT NULL, {pk}) WITHOUT ROWID;"
                f"CREATE TABLE {dtable} ({cols}, digest TEXT NOT NULL, {pk}) WITHOUT ROWID"
            )
        insert = f"INSERT INTO {table} VALUES ({', '.join('?' * (n + 2))})"
        dinsert = f"INSERT INTO {dtable} VALUES ({', '.join('?' * (n + 1))})"
        ahead: OrderedDict[Any, str] = OrderedDict()  # database rows passed by the cursor, not paired yet
        dbatch: list[tuple[Any, ...]] = []
        columns = ", ".join(collection.field(name).column for name in collection.key)
        marks = ", ".join("?" * n)
        near = (
            f"SELECT count(*) FROM (SELECT 1 FROM {collection.table} "
            f"WHERE ({columns}) > ({marks}) AND ({columns}) < ({marks}) LIMIT {READ_AHEAD})"
        )
        if collection is MESSAGE_TAGS and self._sampled:
            self._sample_tags = {message_id: set() for message_id, _, _ in self._sampled}
        sampling = collection is MESSAGES and self.samples > 0
        tags = self._sample_tags if collection is MESSAGE_TAGS else {}
        differing: list[tuple[Any, ...]] = []
        batch: list[tuple[Any, ...]] = []
        stored = self._stored(collection)
        d = next(stored, None)
        d_key = d[0] if d is not None else None
        seen = 0
        try:
            for row, chunk, i in self._rows_of(collection):
                seen += 1
                if sampling:
                    self._reservoir(seen, row, chunk, i)
                if tags:
                    wanted = tags.get(row[0])  # type: ignore[arg-type]
                    if wanted is not None:
                        wanted.add(row[1])  # type: ignore[arg-type]
                key = getkey(row)
                if d is not None and key == d_key:
                    check.db_rows += 1
                    if row_digest(row) == d[1]:
                        check.matching += 1
                    else:
                        check.differing += 1
                        if len(differing) < DETAILED_PER_COLLECTION:
                            differing.append(key if n > 1 else (key,))
                    d = next(stored, None)
                    d_key = d[0] if d is not None else None
                    continue
                found = ahead.pop(key, None)
                if found is None and d is not None and d_key < key and self._near(near, d_key, key, n):
                    while d is not None and d_key < key:
                        ahead[d_key] = d[1]
                        d = next(stored, None)
                        d_key = d[0] if d is not None else None
                    if d is not None and d_key == key:
                        found = d[1]
                        d = next(stored, None)
                        d_key = d[0] if d is not None else None
                    if len(ahead) > MAX_AHEAD:
                        while len(ahead) > MAX_AHEAD // 2:
                            old, old_digest = ahead.popitem(last=False)
                            dbatch.append((*(old if n > 1 else (old,)), old_digest))
                        self._flush(dinsert, dbatch, collection)
                digest = row_digest(row)
                if found is not None:
                    check.db_rows += 1
                    if digest == found:
                        check.matching += 1
                    else:
                        check.differing += 1
                        if len(differing) < DETAILED_PER_COLLECTION:
                            differing.append(key if n > 1 else (key,))
                    continue
                batch.append((*(key if n > 1 else (key,)), digest, chunk.item(i).location))
                if len(batch) >= 10_000:
                    self._flush(insert, batch, collection)
        except ExportError as exc:
            raise VerifyError(str(exc)) from None
        self._flush(insert, batch, collection)
        check.export_rows = seen
        # The database rows not paired: those kept ahead and those the cursor has not reached.
        for old, old_digest in ahead.items():
            dbatch.append((*(old if n > 1 else (old,)), old_digest))
        ahead.clear()
        while d is not None:
            dbatch.append((*(d[0] if n > 1 else (d[0],)), d[1]))
            if len(dbatch) >= 10_000:
                self._flush(dinsert, dbatch, collection)
            d = next(stored, None)
        self._flush(dinsert, dbatch, collection)
        self._merge_rest(collection, check, table, dtable, differing)
        if differing:
            self._detail(collection, differing)
        if self._links_thread is None:
            self._record_links(collection, check, self._collect_links(self.conn, collection))
        self.spill.execute(f"DROP TABLE {table}; DROP TABLE {dtable}")
        check.seconds = time.perf_counter() - started
        self.report.collections.append(check)
        if self.progress and self.stream is not None:
            rate = check.export_rows / check.seconds if check.seconds > 0 else 0.0
            differs = check.only_in_export + check.only_in_db + check.differing
            print(
                f"verified {collection.name}: {check.export_rows:,} rows in {check.seconds:.1f} s "
                f"({rate:,.0f} rows/s), {differs} differ",
                file=self.stream,
            )
        return check

    def _near(self, sql: str, low: Any, high: Any, n: int) -> bool:
        """Whether fewer than READ_AHEAD database rows lie strictly between keys `low` and `high`.

        Asked only when an export row's key is ahead of the database cursor: near, the
        cursor reads on to it; far (a hashed id out of creation order), the row spills.
        """
        bounds = (*low, *high) if n > 1 else (low, high)
        row = self.conn.execute(sql, bounds).fetchone()
        return bool(row is not None and row[0] < READ_AHEAD)

    def _flush(self, insert: str, batch: list[tuple[Any, ...]], collection: Collection) -> None:
        if not batch:
            return
        try:
            with self.spill:
                self.spill.executemany(insert, batch)
        except apsw.ConstraintError:
            raise VerifyError(self._duplicate(collection)) from None
        batch.clear()

    def _duplicate(self, collection: Collection) -> str:
        """Name the duplicate key that the spill met (re-reads the export to find both lines)."""
        first: dict[tuple[Any, ...], str] = {}
        positions = key_positions(collection)
        for row, location, _ in self._export_rows(collection):
            key = tuple(row[p] for p in positions)
            if key in first:
                return (
                    f"{location}: {collection.key[0]}: duplicate {describe_key(collection, key)} "
                    f"(also at {first[key]}; the import refuses this export)"
                )
            first[key] = location
        return f"{collection.name}: duplicate key in the export"  # pragma: no cover - found above

    def _merge_rest(
        self,
        collection: Collection,
        check: CollectionCheck,
        table: str,
        dtable: str,
        differing: list[tuple[Any, ...]],
    ) -> None:
        """Merge the unpaired export rows with the unpaired database rows, both in key order."""
        n = len(collection.key)
        keys = ", ".join(f"k{i}" for i in range(n))
        exported = self.spill.execute(f"SELECT {keys}, digest, location FROM {table} ORDER BY {keys}")
        stored = self.spill.execute(f"SELECT {keys}, digest FROM {dtable} ORDER BY {keys}")
        where = " AND ".join(f"{collection.field(k).column} = ?" for k in collection.key)
        lookup = select_sql(collection, f" WHERE {where}")
        listed_export = listed_db = 0
        e = next(exported, None)
        d = next(stored, None)
        while e is not None or d is not None:
            e_key = tuple(e[:n]) if e is not None else None
            d_key = tuple(d[:n]) if d is not None else None
            if d_key is None or (e_key is not None and e_key < d_key):
                assert e is not None and e_key is not None
                if self.conn.execute(lookup, e_key).fetchone() is not None:
                    # The database has it, and another export row with the same key was paired with it.
                    raise VerifyError(
                        f"{e[n + 1]}: {collection.key[0]}: duplicate {describe_key(collection, e_key)} "
                        "(the import refuses this export)"
                    )
                check.only_in_export += 1
                if listed_export < LISTED_PER_KIND:
                    listed_export += 1
                    self._add(collection, e_key, None, f"in the export ({e[n + 1]}), missing from the database")
                e = next(exported, None)
                continue
            if e_key is None or d_key < e_key:
                assert d is not None
                check.db_rows += 1
                check.only_in_db += 1
                if listed_db < LISTED_PER_KIND:
                    listed_db += 1
                    self._add(collection, d_key, None, "in the database, not in the export")
                d = next(stored, None)
                continue
            assert e is not None and d is not None
            check.db_rows += 1
            if d[n] == e[n]:
                check.matching += 1
            else:
                check.differing += 1
                if len(differing) < DETAILED_PER_COLLECTION:
                    differing.append(e_key)
            e = next(exported, None)
            d = next(stored, None)

    def _detail(self, collection: Collection, keys: list[tuple[Any, ...]]) -> None:
        """Name the fields of the differing rows (second pass over the export for just these keys)."""
        wanted = set(keys)
        positions = key_positions(collection)
        found: dict[tuple[Any, ...], Row] = {}
        for row, _, _ in self._export_rows(collection):
            key = tuple(row[p] for p in positions)
            if key in wanted:  # read on to the end: the manifest check needs a complete pass
                found[key] = row
        where = " AND ".join(f"{collection.field(name).column} = ?" for name in collection.key)
        sql = select_sql(collection, f" WHERE {where}")
        for key in keys:
            stored = self.conn.execute(sql, key).fetchone()
            exported = found.get(key)
            if stored is None or exported is None:  # pragma: no cover - both sides were just seen
                continue
            diffs = field_differences(collection, exported, tuple(stored))
            for name, detail in diffs or [("row", "content digest differs")]:
                self._add(collection, key, name, detail)

    def _record_links(
        self,
        collection: Collection,
        check: CollectionCheck,
        found: tuple[int, list[tuple[tuple[Any, ...], str, str, Any]]],
    ) -> None:
        count, listed = found
        check.broken_links = count
        for key, name, target, value in listed:
            self._add(collection, key, name, f"links to {target} id {value}, which is not in the database")

    def _add(self, collection: Collection, key: tuple[Any, ...], name: str | None, detail: str) -> None:
        self.report.mismatches.append(Mismatch(collection.name, describe_key(collection, key), name, detail))

    # -- samples ----------------------------------------------------------------------------
    def check_samples(self) -> None:
        sql = select_sql(MESSAGES, " WHERE id = ?")
        for message_id, exported, location in sorted(self._sampled, key=lambda s: s[0]):
            self.report.samples_checked += 1
            key = (message_id,)
            stored = self.conn.execute(sql, key).fetchone()
            bad = False
            if stored is None:
                self._add(MESSAGES, key, None, f"sampled from {location}, missing from the database")
                bad = True
            else:
                for name, detail in field_differences(MESSAGES, exported, tuple(stored)):
                    self._add(MESSAGES, key, name, f"{detail} (sampled from {location})")
                    bad = True
            export_tags = sorted(self._sample_tags.get(message_id, set()))
            db_tags = [
                r[0]
                for r in self.conn.execute("SELECT tag_id FROM message_tags WHERE message_id = ? ORDER BY tag_id", key)
            ]
            if export_tags != db_tags:
                self._add(MESSAGES, key, "tags", f"export {export_tags}, database {db_tags}")
                bad = True
            self.report.sample_mismatches += bad

    # -- the whole run ----------------------------------------------------------------------
    def run(self) -> VerifyReport:
        """Verify; `one_snapshot` then says whether every connection read the same snapshot of the database."""
        started = time.perf_counter()
        self.conn.execute("BEGIN")
        version = self._data_version()  # this connection's snapshot begins here, before the workers' do
        self._start_workers()
        failure: VerifyError | None = None
        try:
            for collection in COLLECTIONS:
                self.check_collection(collection)
            self.check_samples()
        except VerifyError as exc:  # with workers, maybe only two snapshots disagreeing: judged below
            failure = exc
        finally:
            self.conn.execute("COMMIT")
        if self._links_thread is not None:
            self._links_thread.join()
        # With workers, each connection read its own snapshot: the same one only if nobody committed
        # meanwhile. If someone did, verify() reads again through this connection alone.
        self.one_snapshot = self._pipe is None or self._data_version() == version
        if not self.one_snapshot:
            return self.report
        if failure is not None:
            raise failure
        if self._links_thread is not None:
            if self._link_error is not None:
                raise VerifyError(f"{self.db_path}: checking links: {self._link_error}")
            checks = {c.collection: c for c in self.report.collections}
            for collection in COLLECTIONS:
                self._record_links(collection, checks[collection.name], self._link_results[collection.name])
        try:
            problems = self.source.final_checks()
        except ExportError as exc:
            raise VerifyError(str(exc)) from None
        self.report.manifest_problems = [str(p) for p in problems]
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _data_version(self) -> int:
        """SQLite's `data_version` of this connection: it changes when another connection commits."""
        row = self.conn.execute("PRAGMA data_version").fetchone()
        assert row is not None
        return int(row[0])


def verify(
    export_dir: Path,
    db_path: Path,
    *,
    samples: int = 0,
    seed: int = 0,
    naive: NaiveTimezone = NaiveTimezone.REJECT,
    progress_stream: Any = None,
    source: Source | None = None,
    jobs: int = 2,
) -> VerifyReport:
    """Compare `db_path` with `export_dir` (reads both, writes nothing); raises VerifyError if it cannot.

    `source` replaces the export directory as the origin of the rows (e.g. an Isar file's source).
    """
    verifier = Verifier(
        export_dir,
        db_path,
        samples=samples,
        seed=seed,
        naive=naive,
        progress=progress_stream is not None,
        progress_stream=progress_stream,
        source=source,
        jobs=jobs,
    )
    try:
        report = verifier.run()
    finally:
        verifier.close()
    if verifier.one_snapshot:
        return report
    # Another connection (the app) wrote while this process and its database process read: read again, all
    # in this process's one read transaction, so that the report describes one state of the database.
    if progress_stream is not None:
        print("the database changed while it was read; verifying again from one snapshot", file=progress_stream)
    return verify(
        export_dir,
        db_path,
        samples=samples,
        seed=seed,
        naive=naive,
        progress_stream=progress_stream,
        source=source,
        jobs=1,
    )
