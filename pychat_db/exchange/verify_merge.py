"""Pairing one collection's export rows with its database rows by key, in bounded memory (`verify`).

The database rows come in key order. An export row whose key is the database cursor's is
paired at once. For any other the cursor reads ahead (at most READ_AHEAD rows) to meet it,
keeping the rows it passes in a bounded dict (`ahead`, MAX_AHEAD entries; the oldest overflow
to a temporary table); an export row still without its database row goes to another temporary
table. At the end the two tables are merged in key order. A canonical (sorted) export spills
nothing; one in the legacy store's creation order (ascending ids with hashed ids interleaved)
spills little more than those hashed ids.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import apsw

from pychat_db.exchange.contract import Collection, select_sql
from pychat_db.exchange.verify_report import DETAILED_PER_COLLECTION, LISTED_PER_KIND, CollectionCheck, VerifyError
from pychat_db.exchange.verify_values import describe_key

READ_AHEAD = 20_000  # how far the database cursor may jump ahead to meet an export row
MAX_AHEAD = 50_000  # database rows kept in memory while unpaired (about 7 MB); the oldest overflow to disk
SPILL_BATCH = 10_000  # rows written to a spill table at once


def _one(key: Any) -> tuple[Any, ...]:
    return (key,)


class KeyMerge:
    """One collection's export rows paired with its database rows (see module doc); the tally goes to `check`.

    Feed it every export row (`pair`, else `spill`), then call `finish()` and `drop()`. Keys are as
    `operator.itemgetter` gives them (the id; a tuple for a two-field key), and tuples where they
    are stored or named. `stored` is the (key, digest) of every database row in key order; `conn`
    the database (to measure the read-ahead, and to tell a duplicate export row from a missing
    database row); `spill` the temporary database of the two tables; `mismatch(key, detail)`
    reports a row found on one side only; `duplicate()` names the duplicate key a spill table met.
    """

    def __init__(
        self,
        collection: Collection,
        check: CollectionCheck,
        stored: Iterator[tuple[Any, str]],
        *,
        conn: apsw.Connection,
        spill: apsw.Connection,
        mismatch: Callable[[tuple[Any, ...], str], None],
        duplicate: Callable[[], str],
    ) -> None:
        self.collection = collection
        self.check = check
        self.conn = conn
        self.spill_db = spill
        self.mismatch = mismatch
        self.duplicate = duplicate
        self.n = n = len(collection.key)
        self.as_tuple: Callable[[Any], tuple[Any, ...]] = tuple if n > 1 else _one
        self.differing: list[tuple[Any, ...]] = []  # keys of the first DETAILED_PER_COLLECTION differing rows
        self.stored = stored
        self.cursor: tuple[Any, str] | None = next(stored, None)  # (key, digest) of the database row under it
        self.ahead: OrderedDict[Any, str] = OrderedDict()  # database rows passed by the cursor, not paired yet
        self.export_pending: list[tuple[Any, ...]] = []  # (*key, digest, location), not written yet
        self.db_pending: list[tuple[Any, ...]] = []  # (*key, digest), not written yet
        self.export_table = table = f"e_{collection.name}"  # export rows without their database row yet
        self.db_table = dtable = f"d_{collection.name}"  # database rows without their export row yet
        keys = [f"k{i}" for i in range(n)]
        if n == 1:
            spill.execute(
                f"CREATE TABLE {table} (k0 INTEGER PRIMARY KEY, digest TEXT NOT NULL, location TEXT NOT NULL);"
                f"CREATE TABLE {dtable} (k0 INTEGER PRIMARY KEY, digest TEXT NOT NULL)"
            )
        else:
            cols = ", ".join(f"{k} INTEGER NOT NULL" for k in keys)
            pk = f"PRIMARY KEY ({', '.join(keys)})"
            spill.execute(
                f"CREATE TABLE {table} ({cols}, digest TEXT NOT NULL, location TEXT NOT NULL, {pk}) WITHOUT ROWID;"
                f"CREATE TABLE {dtable} ({cols}, digest TEXT NOT NULL, {pk}) WITHOUT ROWID"
            )
        self.export_insert = f"INSERT INTO {self.export_table} VALUES ({', '.join('?' * (n + 2))})"
        self.db_insert = f"INSERT INTO {self.db_table} VALUES ({', '.join('?' * (n + 1))})"
        columns = ", ".join(collection.field(name).column for name in collection.key)
        marks = ", ".join("?" * n)
        self.near_sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM {collection.table} "
            f"WHERE ({columns}) > ({marks}) AND ({columns}) < ({marks}) LIMIT {READ_AHEAD})"
        )

    # -- the tally --------------------------------------------------------------------------
    def tally(self, key: Any, exported: str, stored: str) -> None:
        """Count a paired row, matching or differing by digest (the keys of the first differing rows are kept)."""
        check = self.check
        check.db_rows += 1
        if exported == stored:
            check.matching += 1
        else:
            check.differing += 1
            if len(self.differing) < DETAILED_PER_COLLECTION:
                self.differing.append(self.as_tuple(key))

    # -- pairing as the export comes --------------------------------------------------------
    def pair(self, key: Any, digest: str) -> bool:
        """Pair an export row with its database row and count it; False when it has none yet (see `spill`)."""
        cursor = self.cursor
        if cursor is not None and key == cursor[0]:  # an export in key order pairs here, row after row
            self.cursor = next(self.stored, None)
            self.tally(key, digest, cursor[1])
            return True
        stored = self._off_cursor(key)
        if stored is None:
            return False
        self.tally(key, digest, stored)
        return True

    def spill(self, key: Any, digest: str, location: str) -> None:
        """Keep an export row without its database row for `finish()`."""
        self.export_pending.append((*self.as_tuple(key), digest, location))
        if len(self.export_pending) >= SPILL_BATCH:
            self._flush(self.export_insert, self.export_pending)

    def _advance(self) -> None:
        self.cursor = next(self.stored, None)

    def _off_cursor(self, key: Any) -> str | None:
        """The digest of the database row with a key not under the cursor: passed by it, or near ahead of it."""
        found = self.ahead.pop(key, None)
        if found is None and self.cursor is not None and self.cursor[0] < key and self._near(key):
            found = self._read_ahead_to(key)
        return found

    def _near(self, key: Any) -> bool:
        """Whether fewer than READ_AHEAD database rows lie strictly between the cursor and `key`.

        Asked only when an export row's key is ahead of the database cursor: near, the
        cursor reads on to it; far (a hashed id out of creation order), the row spills.
        """
        assert self.cursor is not None
        low = self.cursor[0]
        bounds = (*low, *key) if self.n > 1 else (low, key)
        row = self.conn.execute(self.near_sql, bounds).fetchone()
        return bool(row is not None and row[0] < READ_AHEAD)

    def _read_ahead_to(self, key: Any) -> str | None:
        """Move the cursor to `key`, keeping the rows it passes in `ahead`; the digest if it is there."""
        while self.cursor is not None and self.cursor[0] < key:
            self.ahead[self.cursor[0]] = self.cursor[1]
            self._advance()
        found = None
        if self.cursor is not None and self.cursor[0] == key:
            found = self.cursor[1]
            self._advance()
        if len(self.ahead) > MAX_AHEAD:
            while len(self.ahead) > MAX_AHEAD // 2:
                old, digest = self.ahead.popitem(last=False)
                self.db_pending.append((*self.as_tuple(old), digest))
            self._flush(self.db_insert, self.db_pending)
        return found

    def _flush(self, insert: str, batch: list[tuple[Any, ...]]) -> None:
        if not batch:
            return
        try:
            with self.spill_db:
                self.spill_db.executemany(insert, batch)
        except apsw.ConstraintError:
            raise VerifyError(self.duplicate()) from None
        batch.clear()

    # -- what is left at the end ------------------------------------------------------------
    def finish(self) -> None:
        """Merge the unpaired export rows with the unpaired database rows, both in key order."""
        self._flush(self.export_insert, self.export_pending)
        # The database rows not paired: those kept ahead and those the cursor has not reached.
        for old, digest in self.ahead.items():
            self.db_pending.append((*self.as_tuple(old), digest))
        self.ahead.clear()
        while self.cursor is not None:
            self.db_pending.append((*self.as_tuple(self.cursor[0]), self.cursor[1]))
            if len(self.db_pending) >= SPILL_BATCH:
                self._flush(self.db_insert, self.db_pending)
            self._advance()
        self._flush(self.db_insert, self.db_pending)
        self._merge_spilled()

    def _merge_spilled(self) -> None:
        """Walk both spill tables in key order: a key on one side only is a mismatch, one on both is paired."""
        collection, check, n, spill = self.collection, self.check, self.n, self.spill_db
        keys = ", ".join(f"k{i}" for i in range(n))
        exported = spill.execute(f"SELECT {keys}, digest, location FROM {self.export_table} ORDER BY {keys}")
        stored = spill.execute(f"SELECT {keys}, digest FROM {self.db_table} ORDER BY {keys}")
        where = " AND ".join(f"{collection.field(k).column} = ?" for k in collection.key)
        lookup = select_sql(collection, f" WHERE {where}")
        listed_export = listed_db = 0
        e = next(exported, None)
        d = next(stored, None)
        while e is not None or d is not None:
            e_key = tuple(e[:n]) if e is not None else None
            d_key = tuple(d[:n]) if d is not None else None
            if e is not None and e_key is not None and (d_key is None or e_key < d_key):
                location = e[n + 1]
                if self.conn.execute(lookup, e_key).fetchone() is not None:
                    # The database has it, and another export row with the same key was paired with it.
                    raise VerifyError(
                        f"{location}: {collection.key[0]}: duplicate {describe_key(collection, e_key)} "
                        "(the import refuses this export)"
                    )
                check.only_in_export += 1
                if listed_export < LISTED_PER_KIND:
                    listed_export += 1
                    self.mismatch(e_key, f"in the export ({location}), missing from the database")
                e = next(exported, None)
            elif d is not None and d_key is not None and (e_key is None or d_key < e_key):
                check.db_rows += 1
                check.only_in_db += 1
                if listed_db < LISTED_PER_KIND:
                    listed_db += 1
                    self.mismatch(d_key, "in the database, not in the export")
                d = next(stored, None)
            else:
                assert e is not None and d is not None and e_key is not None
                self.tally(e_key if n > 1 else e_key[0], e[n], d[n])  # the key as `pair` has it
                e = next(exported, None)
                d = next(stored, None)

    def drop(self) -> None:
        self.spill_db.execute(f"DROP TABLE {self.export_table}; DROP TABLE {self.db_table}")
