"""Loading a Source of contract rows into a new SQLite database, atomically.

`import_source(source, target, options)` builds the database in a temporary
file beside `target` (created 0600; the files are `publish.py`'s job): schema by
the migration runner, the big tables' indexes dropped, foreign keys off, every
collection inserted in import order in one transaction, links checked with SQL
(rows pointing nowhere are mapped back to their line by re-reading that
collection), indexes rebuilt, then `foreign_key_check`, `quick_check` and row
counts against what was read and against the source's own checks (the
manifest). Only when all of that passed is the file committed, switched to WAL,
fsynced and renamed over `target` (then the directory is fsynced). An existing
`target` that another connection has open is never replaced (`pychat_db.locks`:
checked before the work and again at the rename, which runs holding SQLite's
locks on it). Any failure, or a kill at any moment, leaves `target` as it was;
a temporary file left by a killed run is removed by the next run on the same target.

Speed (docs/performance.md): a source that reads in chunks (`chunks()`) has each
chunk of accepted rows inserted by one `executemany` over its list; the links are
checked by one `foreign_key_check` before the indexes are built (each link is
scanned on its own, to name the rows, only when it finds something, and its
result stands for the final check: only indexes are built in between); the pages
loaded are fsynced in a thread while the links, indexes and checks run.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apsw

from pychat_db.connection import connect
from pychat_db.errors import PychatDbError
from pychat_db.exchange.codec import INT64_MAX, INT64_MIN, FieldError, Row
from pychat_db.exchange.contract import COLLECTIONS, THREADS, Collection, Kind
from pychat_db.exchange.importing import (
    CollectionReport,
    ImportFailed,
    ImportOptions,
    ImportReport,
    Progress,
    RejectWriter,
)
from pychat_db.exchange.publish import BackgroundSync, StagedDatabase, remove_stale_temps, temp_path_pattern
from pychat_db.exchange.reader import Chunk, ExportError, Item, Problem, Source
from pychat_db.locks import DatabaseInUse, ensure_not_in_use
from pychat_db.migrations import migrate

RECOVERY_THREAD_NAME = "Recovered messages"
ADOPT_HINT = "use --orphans adopt to keep it in a recovery thread"
_PROGRESS_EVERY = 2048

__all__ = [
    "RECOVERY_THREAD_NAME",
    "CollectionReport",
    "ImportFailed",
    "ImportOptions",
    "ImportReport",
    "Progress",
    "RejectWriter",
    "import_source",
    "temp_path_pattern",
]


class _Stop(Exception):
    """Enough problems were listed."""


class _Loader:
    def __init__(self, source: Source, conn: apsw.Connection, options: ImportOptions, report: ImportReport) -> None:
        self.source = source
        self.conn = conn
        self.options = options
        self.report = report
        self.recovery_id: int | None = None
        self.recovery_used = False

    # -- problems ---------------------------------------------------------------------------
    def problem(self, problem: Problem, collection: CollectionReport | None = None) -> None:
        """Record a refused row: into the reject file (and count it) or into the list of errors."""
        options = self.options
        if options.reject is not None:
            options.reject.write(problem)
            if collection is not None:
                collection.rejected += 1
            if len(self.report.rejected_samples) < 100:
                self.report.rejected_samples.append(problem)
            if options.max_errors is not None and options.reject.count > options.max_errors:
                self.fatal(
                    Problem(None, self.source.name, None, f"more than {options.max_errors} rows refused (--max-errors)")
                )
            return
        self.report.problems.append(problem)
        if options.max_errors is not None and len(self.report.problems) >= options.max_errors:
            raise _Stop

    def fatal(self, problem: Problem) -> None:
        """Record a problem that fails the import whatever the options, and stop."""
        self.report.problems.append(problem)
        raise _Stop

    # -- loading ----------------------------------------------------------------------------
    def load(self, collection: Collection) -> None:
        stats = self.report.collections[collection.name]
        progress = self.options.progress
        progress.begin(collection.name, self.source.size(collection))
        started = time.perf_counter()
        bytes_before = self.source.bytes_read
        columns = ", ".join(collection.columns)
        marks = ", ".join("?" * len(collection.columns))
        sql = f"INSERT INTO {collection.table} ({columns}) VALUES ({marks})"
        chunks = self.source.chunks(collection)  # a source that reads in chunks: ExportDirectory, IsarSource
        if chunks is not None:
            self._load_chunks(collection, sql, stats, bytes_before, chunks)
        else:
            self._insert_items(collection, sql, stats, bytes_before, self.source.items(collection))
        stats.seconds = time.perf_counter() - started
        stats.bytes = self.source.bytes_read - bytes_before
        progress.end(collection.name, stats.read, stats.seconds)

    def _load_chunks(
        self, collection: Collection, sql: str, stats: CollectionReport, bytes_before: int, chunks: Iterator[Chunk]
    ) -> None:
        """Insert an export file's chunks: a chunk of accepted rows with one `executemany` over its list.

        The same checks and the same problems in the same order as `_insert_items`,
        which takes any other chunk (a refused row, an empty link). A row the database
        refuses is found by the count of rows inserted before it (a failed row is
        undone, the ones before it stay, as in `_insert_items`).
        """
        links = [
            operator.itemgetter(i)
            for i, f in enumerate(collection.fields)
            if f.kind is Kind.LINK and collection.key == ("id",)
        ]
        cursor = self.conn.cursor()
        conn = self.conn
        progress = self.options.progress
        source = self.source
        for chunk in chunks:
            rows = chunk.rows
            if rows is None or any(None in map(link, rows) for link in links):
                self._insert_items(collection, sql, stats, bytes_before, iter(chunk.all_items()))
                continue
            read_before = stats.read
            start = 0
            while start < len(rows):
                inserted_before = conn.total_changes()
                try:
                    cursor.executemany(sql, rows if start == 0 else rows[start:])
                    break
                except (apsw.ConstraintError, UnicodeEncodeError) as exc:
                    failed = start + conn.total_changes() - inserted_before
                    stats.read = read_before + failed + 1
                    item = chunk.item(failed)
                    if isinstance(exc, apsw.ConstraintError):
                        error = self._constraint_error(collection, item, exc)
                    else:
                        error = FieldError(None, "a string holds a lone UTF-16 surrogate")
                    self.problem(Problem.of(collection.name, item, error), stats)
                    start = failed + 1
            stats.read = read_before + len(rows)
            progress.update(stats.read, source.bytes_read - bytes_before)

    def _insert_items(
        self, collection: Collection, sql: str, stats: CollectionReport, bytes_before: int, items: Iterator[Item]
    ) -> None:
        progress = self.options.progress
        empty_links = [
            (i, f) for i, f in enumerate(collection.fields) if f.kind is Kind.LINK and collection.key == ("id",)
        ]
        current: list[Item | None] = [None]

        def rows() -> Iterator[Row]:
            source = self.source
            for item in items:
                stats.read += 1
                if stats.read % _PROGRESS_EVERY == 0:
                    progress.update(stats.read, source.bytes_read - bytes_before)
                row = item.row
                if row is None:
                    self.problem(Problem.of(collection.name, item), stats)
                    continue
                adopted = False
                for i, f in empty_links:
                    if row[i] is None:
                        if f.target == THREADS.name and self.options.adopt_orphans:
                            row = (*row[:i], self._recovery_thread(), *row[i + 1 :])
                            adopted = True
                            continue
                        hint = f"; {ADOPT_HINT}" if f.target == THREADS.name else ""
                        self.problem(
                            Problem.of(
                                collection.name, item, FieldError(f.name, f"empty link: no {f.target} row{hint}")
                            ),
                            stats,
                        )
                        row = None
                        break
                if row is None:
                    continue
                stats.adopted += adopted
                current[0] = item
                yield row

        cursor = self.conn.cursor()
        pending = rows()
        while True:
            try:
                cursor.executemany(sql, pending)
                break
            except apsw.ConstraintError as exc:
                item = current[0]
                assert item is not None and item.row is not None
                self.problem(Problem.of(collection.name, item, self._constraint_error(collection, item, exc)), stats)
            except UnicodeEncodeError:
                item = current[0]
                assert item is not None
                self.problem(
                    Problem.of(collection.name, item, FieldError(None, "a string holds a lone UTF-16 surrogate")),
                    stats,
                )

    def _constraint_error(self, collection: Collection, item: Item, exc: apsw.ConstraintError) -> FieldError:
        assert item.row is not None
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            if collection.key == ("id",):
                return FieldError("id", f"duplicate id {item.row[0]!r} in {collection.name}")
            pair = ", ".join(f"{n}={v!r}" for n, v in zip(collection.key, item.row, strict=False))
            return FieldError(None, f"duplicate {collection.name} link ({pair})")
        return FieldError(None, f"refused by the database: {exc}")

    def _recovery_thread(self) -> int:
        if self.recovery_id is None:
            row = self.conn.execute("SELECT min(id), max(id) FROM threads").fetchone()
            assert row is not None
            low, high = row
            if high is None:
                self.recovery_id = 1
            elif high < INT64_MAX:
                self.recovery_id = int(high) + 1
            elif low > INT64_MIN:
                self.recovery_id = int(low) - 1
            else:
                gap = self.conn.execute(
                    "SELECT t.id + 1 FROM threads AS t WHERE t.id < ?1 AND NOT EXISTS "
                    "(SELECT 1 FROM threads AS u WHERE u.id = t.id + 1) ORDER BY t.id LIMIT 1",
                    (INT64_MAX,),
                ).fetchone()
                assert gap is not None  # fewer than 2**64 threads
                self.recovery_id = int(gap[0])
        self.recovery_used = True
        assert self.recovery_id is not None
        return self.recovery_id

    def create_recovery_thread(self) -> None:
        if not self.recovery_used or self.recovery_id is None:
            return
        row = self.conn.execute(
            "SELECT min(t) FROM (SELECT min(timestamp) AS t FROM messages WHERE thread_id = ?1 "
            "UNION ALL SELECT min(created_at) FROM mode_outputs WHERE thread_id = ?1)",
            (self.recovery_id,),
        ).fetchone()
        created_at = row[0] if row and row[0] else "1970-01-01T00:00:00.000000Z"
        self.conn.execute(
            "INSERT INTO threads (id, name, created_at) VALUES (?, ?, ?)",
            (self.recovery_id, RECOVERY_THREAD_NAME, created_at),
        )
        self.report.recovery_thread_id = self.recovery_id

    # -- links ------------------------------------------------------------------------------
    def check_links(self, collection: Collection) -> None:
        """Find rows whose links point nowhere: adopt them, or refuse them naming their line."""
        stats = self.report.collections[collection.name]
        key_cols = ", ".join(collection.field(k).column for k in collection.key)
        for f in collection.links:
            assert f.target is not None
            where = f"NOT EXISTS (SELECT 1 FROM {f.target} AS p WHERE p.id = c.{f.column})"
            if f.target == THREADS.name and self.options.adopt_orphans:
                if self.recovery_id is not None:  # rows adopted while loading point to the thread made at the end
                    where += f" AND c.{f.column} != {int(self.recovery_id)}"
                count = self.conn.execute(f"SELECT count(*) FROM {collection.table} AS c WHERE {where}").fetchone()
                if count and count[0]:
                    self.conn.execute(
                        f"UPDATE {collection.table} AS c SET {f.column} = ? WHERE {where}", (self._recovery_thread(),)
                    )
                    stats.adopted += int(count[0])
                continue
            limit = self.options.max_errors if self.options.reject is None else None
            sql = f"SELECT {key_cols}, c.{f.column} FROM {collection.table} AS c WHERE {where}"
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            dangling = {tuple(r[:-1]): r[-1] for r in self.conn.execute(sql)}
            if not dangling:
                continue
            self.options.progress.phase(f"{collection.name}: finding the lines of {len(dangling)} broken links")
            key_index = [collection.field_names.index(k) for k in collection.key]
            found: dict[tuple[object, ...], Item] = {}
            for item in self.source.items(collection):
                if item.row is not None:
                    key = tuple(item.row[i] for i in key_index)
                    if key in dangling and key not in found:
                        found[key] = item
            hint = f"; {ADOPT_HINT}" if f.target == THREADS.name else ""
            for key, value in dangling.items():
                error = FieldError(f.name, f"{value} points to no {f.target} row{hint}")
                item_or_none = found.get(key)
                if item_or_none is None:
                    problem = Problem(collection.name, f"{collection.name} {key}", error.field, error.reason)
                else:
                    problem = Problem.of(collection.name, item_or_none, error)
                if self.options.reject is not None:
                    cond = " AND ".join(f"{collection.field(k).column} = ?" for k in collection.key)
                    self.conn.execute(f"DELETE FROM {collection.table} WHERE {cond}", key)
                self.problem(problem, stats)


def _drop_indexes(conn: apsw.Connection) -> list[str]:
    """Drop the indexes of the bulk-loaded tables; return their CREATE statements."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL AND tbl_name != 'configuration'"
    ).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [str(sql) for _, sql in rows]


def import_source(source: Source, target: str | os.PathLike[str], options: ImportOptions | None = None) -> ImportReport:
    """Import every collection of `source` into a new database at `target`, atomically.

    Writes `target` (replacing it only with `options.force`) when every check passed
    and not `options.dry_run`; raises ImportFailed (target untouched) otherwise.
    """
    options = options or ImportOptions()
    started = time.perf_counter()
    shown = os.fspath(target)  # as the caller gave it, for the in-use refusal
    target = Path(target).absolute()
    report = ImportReport(source.name, str(target), options.dry_run)
    report.collections = {c.name: CollectionReport(c.name) for c in COLLECTIONS}

    def refuse(reason: str) -> ImportFailed:
        report.problems.append(Problem(None, str(target), None, reason))
        return ImportFailed(report)

    if not target.parent.is_dir():
        raise refuse(f"directory {target.parent} does not exist")
    if target.exists() and not options.force and not options.dry_run:
        raise refuse("exists; pass --force to replace it (only once the import succeeded)")
    if target.exists() and not options.dry_run:
        try:  # at once, before the work: the app must be stopped (checked again when renaming)
            ensure_not_in_use(target, shown)
        except DatabaseInUse as exc:
            raise _in_use(report, exc) from exc
        except OSError as exc:
            raise refuse(str(exc)) from None
    for name in remove_stale_temps(target):
        report.notes.append(f"removed {name}, left by an interrupted import")
    staged = StagedDatabase(target)
    staged.create()
    conn: apsw.Connection | None = None
    syncer = BackgroundSync(staged.path)
    try:
        conn = connect(staged.path, pragmas=False)
        for pragma in ("foreign_keys = OFF", "synchronous = OFF", "cache_size = -8192", "temp_store = FILE"):
            conn.execute(f"PRAGMA {pragma}").fetchall()
        migrate(conn)
        indexes = _drop_indexes(conn)
        loader = _Loader(source, conn, options, report)
        try:
            _load_all(loader, conn, source, indexes, report, options, syncer)
        except _Stop:
            pass
        except ExportError as exc:
            report.problems.append(exc.problem)
        if report.problems:
            raise ImportFailed(report)
        if options.dry_run:
            conn.execute("ROLLBACK")
            report.ok = True
            return report
        conn.execute("COMMIT")
        t = time.perf_counter()
        options.progress.phase("switching to WAL, syncing and renaming into place")
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
        conn.close()
        conn = None
        syncer.join()
        staged.publish(shown)
        report.timings["publish"] = time.perf_counter() - t
        report.ok = True
        return report
    except DatabaseInUse as exc:
        raise _in_use(report, exc) from exc
    except ImportFailed:
        raise
    except (OSError, apsw.Error, PychatDbError) as exc:  # I/O error, full disk, failed migration
        raise refuse(f"cannot write: {exc}") from None
    finally:
        report.timings["total"] = time.perf_counter() - started
        with contextlib.suppress(OSError):
            syncer.join()
        if conn is not None:
            conn.close()
        if not report.ok or options.dry_run:
            staged.discard()


@dataclass(frozen=True, slots=True)
class _Said(Problem):
    """A problem whose reason is a whole sentence naming the file: `chat.db is open in another process; ...`."""

    def __str__(self) -> str:
        return self.reason


def _in_use(report: ImportReport, exc: DatabaseInUse) -> ImportFailed:
    """The refusal to replace a database another connection has open (the evidence as notes)."""
    report.notes.extend(exc.evidence)
    report.problems.append(_Said(None, exc.shown, None, str(exc)))
    return ImportFailed(report)


def _every_link_declared(conn: apsw.Connection) -> bool:
    """Whether the schema declares every link of the contract as a foreign key (so foreign_key_check covers it)."""
    for collection in COLLECTIONS:
        declared = {(r[3], r[2], r[4]) for r in conn.execute(f"PRAGMA foreign_key_list({collection.table})")}
        if any((f.column, f.target, "id") not in declared for f in collection.links):
            return False
    return True


def _foreign_key_violations(conn: apsw.Connection, limit: int | None = None) -> list[tuple[object, ...]]:
    """`PRAGMA foreign_key_check` rows (table, rowid, parent, fkid), at most `limit`."""
    cursor = conn.cursor()
    try:
        cursor.execute("PRAGMA foreign_key_check")
        return [tuple(r) for r in (cursor.fetchall() if limit is None else itertools.islice(cursor, limit))]
    finally:
        cursor.close()


def _load_all(
    loader: _Loader,
    conn: apsw.Connection,
    source: Source,
    indexes: list[str],
    report: ImportReport,
    options: ImportOptions,
    syncer: BackgroundSync,
) -> None:
    conn.execute("BEGIN")
    t = time.perf_counter()
    for collection in COLLECTIONS:
        loader.load(collection)
    report.timings["load"] = time.perf_counter() - t
    if not options.dry_run:
        syncer.start()  # the pages written so far go to disk while the links, indexes and checks run
    t = time.perf_counter()
    options.progress.phase("checking links")
    # One `foreign_key_check` finds whether any link points nowhere (the schema declares every
    # link of the contract); only then is each link scanned on its own, to name the rows.
    links_clean = _every_link_declared(conn) and not _foreign_key_violations(conn, limit=1)
    if not links_clean:
        for collection in COLLECTIONS:
            if collection.links:
                loader.check_links(collection)
    loader.create_recovery_thread()
    report.timings["links"] = time.perf_counter() - t
    report.problems.extend(source.final_checks())
    if report.problems:
        return
    t = time.perf_counter()
    if not options.dry_run:
        options.progress.phase("building indexes")
        for sql in indexes:
            conn.execute(sql)
    report.timings["indexes"] = time.perf_counter() - t
    t = time.perf_counter()
    options.progress.phase("checking foreign keys, integrity and counts")
    # When the links phase found no violation, nothing has changed the rows since (indexes only).
    broken = [] if links_clean else _foreign_key_violations(conn)
    if broken:
        table, rowid, parent, _ = broken[0]
        loader.fatal(
            Problem(None, "check", None, f"foreign_key_check: {table} rowid {rowid} points to no {parent} row")
        )
    quick = conn.execute("PRAGMA quick_check").fetchall()
    if quick != [("ok",)]:
        loader.fatal(Problem(None, "check", None, f"quick_check: {quick[0][0]}"))
    for collection in COLLECTIONS:
        stats = report.collections[collection.name]
        counted = conn.execute(f"SELECT count(*) FROM {collection.table}").fetchone()
        assert counted is not None
        stats.imported = int(counted[0])
        expected = stats.read - stats.rejected
        if collection is THREADS and report.recovery_thread_id is not None:
            expected += 1
        if stats.imported != expected:
            loader.fatal(
                Problem(
                    None,
                    "check",
                    None,
                    f"{collection.name}: {stats.imported} rows in the database, "
                    f"expected {expected} ({stats.read} read - {stats.rejected} rejected)",
                )
            )
    report.timings["checks"] = time.perf_counter() - t
