"""The database side of a verification (`pychat_db.exchange.verify`): row digests and broken links.

Read in this process through the verifier's connection, or beside it by `DatabaseHelpers`:
the digests in a forked child process and the link checks in a thread, each on its own
read-only connection, while this process parses the export (the two halves of the work
use two cores).
"""

from __future__ import annotations

import multiprocessing
import operator
import signal
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection as Pipe
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import apsw

from pychat_db.connection import connect
from pychat_db.errors import MigrationError, SchemaMismatch
from pychat_db.exchange.codec import row_digest
from pychat_db.exchange.contract import BY_NAME, COLLECTIONS, Collection, select_sql
from pychat_db.exchange.verify_report import LISTED_PER_KIND, VerifyError
from pychat_db.exchange.verify_values import key_positions
from pychat_db.interrupts import STOP_SIGNALS
from pychat_db.schema_check import open_at_head

READ_CACHE = "PRAGMA cache_size = -4096"  # sequential scans and point lookups: a big cache buys nothing
_BATCH = 4096

BrokenLink = tuple[tuple[Any, ...], str, str, Any]  # (key, link field, target collection, value)
LinkCheck = tuple[int, list[BrokenLink]]  # how many links point nowhere, and the first LISTED_PER_KIND of them


def open_database(path: Path) -> apsw.Connection:
    """Read-only connection to a database at the code's schema version, schema ours; VerifyError otherwise."""
    try:
        return open_at_head(path)
    except FileNotFoundError:
        raise VerifyError(f"{path}: no such database") from None
    except (MigrationError, SchemaMismatch) as exc:
        raise VerifyError(str(exc)) from None


def db_digests(conn: apsw.Connection, collection: Collection) -> Iterator[tuple[Any, str]]:
    """(key, row digest) of every row of the collection's table, in key order.

    The key is the id for id-keyed collections and (messageId, tagId) for message_tags.
    """
    getkey = operator.itemgetter(*key_positions(collection))
    for row in conn.execute(select_sql(collection)):
        yield getkey(row), row_digest(row)


def broken_links(conn: apsw.Connection, collection: Collection) -> Iterator[BrokenLink]:
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


def check_links(conn: apsw.Connection, collection: Collection) -> LinkCheck:
    """Count the collection's broken links, keeping the first LISTED_PER_KIND."""
    count = 0
    listed: list[BrokenLink] = []
    for found in broken_links(conn, collection):
        count += 1
        if len(listed) < LISTED_PER_KIND:
            listed.append(found)
    return count, listed


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


class DatabaseHelpers:
    """Reads the database beside this process: every collection's digests in a forked child
    process (in COLLECTIONS order), every collection's links in a thread.

    Each reads its own snapshot, through its own read-only connection, begun when it starts.
    The caller starts them with Ctrl-C and SIGTERM deferred (`interrupts.deferred_interrupts`)
    until they are recorded where its `close()` finds them: the child must not run this process's
    handlers before `_digest_worker` sets its own (it unblocks the signals then).
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._links: dict[str, LinkCheck] = {}
        self._links_error: BaseException | None = None
        ctx = multiprocessing.get_context("fork")
        names = [c.name for c in COLLECTIONS]
        receiver, sender = ctx.Pipe(duplex=False)
        worker = ctx.Process(target=_digest_worker, args=(str(db_path), names, sender, receiver), daemon=True)
        worker.start()
        sender.close()
        links = threading.Thread(target=self._link_worker, name="verify-links", daemon=True)
        links.start()
        self._worker: BaseProcess = worker
        self._pipe: Pipe = receiver
        self._links_thread = links

    def _link_worker(self) -> None:
        try:
            conn = connect(self.db_path, readonly=True)
            conn.execute(READ_CACHE).fetchall()
            for collection in COLLECTIONS:
                self._links[collection.name] = check_links(conn, collection)
            conn.close()
        except BaseException as exc:  # re-raised by links()
            self._links_error = exc

    def digests(self) -> Iterator[tuple[Any, str]]:
        """The child's `db_digests` of the next collection (they come in COLLECTIONS order)."""
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

    def join_links(self) -> None:
        self._links_thread.join()

    def links(self) -> dict[str, LinkCheck]:
        """Every collection's `check_links`, by name, once `join_links()` returned; VerifyError if it failed."""
        if self._links_error is not None:
            raise VerifyError(f"{self.db_path}: checking links: {self._links_error}")
        return self._links

    def close(self) -> None:
        """Stop the child process (if still running) and wait for both."""
        if self._worker.is_alive():
            self._worker.terminate()
        self._worker.join()
        self._pipe.close()
        self._links_thread.join()
