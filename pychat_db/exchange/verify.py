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

Its parts: `verify_merge` (step 1 and 2), `verify_database` (the database side), `verify_values`
(how values compare and are shown), `verify_samples` (the sampled messages), `verify_report`.
"""

from __future__ import annotations

import multiprocessing
import operator
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw

from pychat_db.exchange.codec import NaiveTimezone, Row, row_digest
from pychat_db.exchange.contract import COLLECTIONS, MESSAGE_TAGS, MESSAGES, Collection, select_sql
from pychat_db.exchange.reader import Chunk, ExportDirectory, ExportError, Item, Problem, Source
from pychat_db.exchange.verify_database import (
    READ_CACHE,
    DatabaseHelpers,
    LinkCheck,
    check_links,
    db_digests,
    open_database,
)
from pychat_db.exchange.verify_merge import KeyMerge
from pychat_db.exchange.verify_report import CollectionCheck, Mismatch, VerifyError, VerifyReport
from pychat_db.exchange.verify_samples import Samples
from pychat_db.exchange.verify_values import describe_key, field_differences, key_positions
from pychat_db.interrupts import deferred_interrupts

__all__ = ["CollectionCheck", "Mismatch", "Verifier", "VerifyError", "VerifyReport", "open_database", "verify"]


class Verifier:
    """One verification run of `source` (the export directory `export_dir`, or what replaces it) against
    `db_path` (see module doc); progress lines go to `progress_stream` unless it is None."""

    def __init__(
        self, export_dir: Path, db_path: Path, source: Source, samples: Samples, progress_stream: Any, jobs: int
    ) -> None:
        self.source = source
        self.samples = samples
        self.stream = progress_stream
        self.report = VerifyReport(str(export_dir), str(db_path), samples_requested=samples.size)
        self.db_path = db_path
        self.conn = open_database(db_path)
        self.conn.execute(READ_CACHE).fetchall()
        self.jobs = jobs
        self.helpers: DatabaseHelpers | None = None  # see _start_helpers()
        self.one_snapshot = True  # see run()
        self.spill = apsw.Connection("")  # a private temporary on-disk database, deleted on close
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384", "temp_store = FILE"):
            self.spill.execute(f"PRAGMA {pragma}").fetchall()

    def close(self) -> None:
        if self.helpers is not None:
            self.helpers.close()
        self.spill.close()
        self.conn.close()

    # -- the database side ------------------------------------------------------------------
    def _start_helpers(self) -> None:
        """With jobs > 1: database digests in a child process, link checks in a thread (`DatabaseHelpers`).

        Both read the database through their own read-only connections while this
        process reads the export, so the work is spread over two cores. Each
        connection reads its own snapshot, begun after this process's (`run()`): when
        another connection commits meanwhile, `verify()` reads again in this process alone.
        A source that reads in a process of its own (an Isar file's reader process) is the second
        process already: the database is then read here, where a third process would cost more
        memory than the time it saves (docs/performance.md).
        """
        reads_elsewhere = self.source.second_process is not None
        if self.jobs <= 1 or reads_elsewhere or "fork" not in multiprocessing.get_all_start_methods():
            return
        with deferred_interrupts():  # until they are recorded where close() stops them (see DatabaseHelpers)
            self.helpers = DatabaseHelpers(self.db_path)

    def stored_digests(self, collection: Collection) -> Iterator[tuple[Any, str]]:
        """`db_digests` of the collection: from the child process when there is one."""
        if self.helpers is None:
            return db_digests(self.conn, collection)
        return self.helpers.digests()

    # -- reading the export -----------------------------------------------------------------
    def _chunks(self, collection: Collection) -> Iterator[Chunk]:
        """The source's rows in chunks (no Item per accepted row), or its items one chunk each.

        `checked_chunks` (an Isar file's source) reads with every check of `items()`; the
        loader's `chunks()` may leave a check to the loader's SQL, which verify does not run.
        """
        chunks = self.source.checked_chunks(collection)
        if chunks is None:
            chunks = self.source.chunks(collection)
        if chunks is not None:
            yield from chunks
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

    def duplicate_in_export(self, collection: Collection) -> str:
        """Name the duplicate key that a spill table met (re-reads the export to find both lines)."""
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

    # -- one collection ---------------------------------------------------------------------
    def check_collection(self, collection: Collection) -> CollectionCheck:
        """Compare one collection: pair the export's rows with the table's by key (`KeyMerge`), name the
        fields of the first differing rows, check the stored links; the result joins the report."""
        started = time.perf_counter()
        check = CollectionCheck(collection.name)
        merge = KeyMerge(
            collection,
            check,
            self.stored_digests(collection),
            conn=self.conn,
            spill=self.spill,
            mismatch=lambda key, detail: self.add(collection, key, None, detail),
            duplicate=lambda: self.duplicate_in_export(collection),
        )
        getkey = operator.itemgetter(*key_positions(collection))
        sampling = collection is MESSAGES and self.samples.size > 0
        tags = self.samples.expect_tags() if collection is MESSAGE_TAGS else {}
        seen = 0
        for row, chunk, i in self._rows_of(collection):
            seen += 1
            if sampling:
                self.samples.offer(seen, row, chunk, i)
            if tags:
                self.samples.add_tag(row)
            key = getkey(row)
            digest = row_digest(row)
            if not merge.pair(key, digest):
                merge.spill(key, digest, chunk.item(i).location)
        check.export_rows = seen
        merge.finish()
        if merge.differing:
            self._detail(collection, merge.differing)
        if self.helpers is None:
            self._record_links(collection, check, check_links(self.conn, collection))
        merge.drop()
        check.seconds = time.perf_counter() - started
        self.report.collections.append(check)
        if self.stream is not None:
            rate = check.export_rows / check.seconds if check.seconds > 0 else 0.0
            differs = check.only_in_export + check.only_in_db + check.differing
            print(
                f"verified {collection.name}: {check.export_rows:,} rows in {check.seconds:.1f} s "
                f"({rate:,.0f} rows/s), {differs} differ",
                file=self.stream,
            )
        return check

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
                self.add(collection, key, name, detail)

    def _record_links(self, collection: Collection, check: CollectionCheck, found: LinkCheck) -> None:
        count, listed = found
        check.broken_links = count
        for key, name, target, value in listed:
            self.add(collection, key, name, f"links to {target} id {value}, which is not in the database")

    def add(self, collection: Collection, key: tuple[Any, ...], name: str | None, detail: str) -> None:
        """Add a mismatch to the report."""
        self.report.mismatches.append(Mismatch(collection.name, describe_key(collection, key), name, detail))

    def check_samples(self) -> None:
        for key, differences in self.samples.compare(self.conn):
            self.report.samples_checked += 1
            for name, detail in differences:
                self.add(MESSAGES, key, name, detail)
            self.report.sample_mismatches += bool(differences)

    # -- the whole run ----------------------------------------------------------------------
    def run(self) -> VerifyReport:
        """Verify; `one_snapshot` then says whether every connection read the same snapshot of the database."""
        started = time.perf_counter()
        self.conn.execute("BEGIN")
        version = self._data_version()  # this connection's snapshot begins here, before the helpers' do
        self._start_helpers()
        failure: VerifyError | None = None
        try:
            for collection in COLLECTIONS:
                self.check_collection(collection)
            self.check_samples()
        except VerifyError as exc:  # with helpers, maybe only two snapshots disagreeing: judged below
            failure = exc
        finally:
            self.conn.execute("COMMIT")
        if self.helpers is not None:
            self.helpers.join_links()
        # With helpers, each connection read its own snapshot: the same one only if nobody committed
        # meanwhile. If someone did, verify() reads again through this connection alone.
        self.one_snapshot = self.helpers is None or self._data_version() == version
        if not self.one_snapshot:
            return self.report
        if failure is not None:
            raise failure
        if self.helpers is not None:
            links = self.helpers.links()
            checks = {c.collection: c for c in self.report.collections}
            for collection in COLLECTIONS:
                self._record_links(collection, checks[collection.name], links[collection.name])
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
    export_dir, db_path = Path(export_dir), Path(db_path)
    while True:
        try:
            rows = source if source is not None else ExportDirectory(export_dir, naive)
        except ExportError as exc:
            raise VerifyError(str(exc)) from None
        verifier = Verifier(export_dir, db_path, rows, Samples(samples, seed), progress_stream, jobs)
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
        jobs = 1
