"""Random messages of the export compared field by field, with their tags (`verify`'s `samples`)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import apsw

from pychat_db.exchange.codec import Row
from pychat_db.exchange.contract import MESSAGES, select_sql
from pychat_db.exchange.reader import Chunk
from pychat_db.exchange.verify_values import field_differences, owned_row


class Samples:
    """Up to `size` messages of the export, each equally likely (reservoir sampling, seeded), and their tags."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.rows: list[tuple[int, Row, str]] = []  # (message id, row, location)
        self.tags: dict[int, set[int]] = {}  # the sampled messages' tag ids, as the export links them

    def offer(self, seen: int, row: Row, chunk: Chunk, i: int) -> None:
        """Consider the `seen`-th message of the export (`chunk.item(i)` names it)."""
        message_id = row[0]
        assert isinstance(message_id, int)
        if len(self.rows) < self.size:
            self.rows.append((message_id, owned_row(row), chunk.item(i).location))
            return
        j = self.rng.randrange(seen)
        if j < self.size:
            self.rows[j] = (message_id, owned_row(row), chunk.item(i).location)

    def expect_tags(self) -> dict[int, set[int]]:
        """Begin collecting the sampled messages' tag links; the map `add_tag` fills (empty: nothing to collect)."""
        if self.rows:
            self.tags = {message_id: set() for message_id, _, _ in self.rows}
        return self.tags

    def add_tag(self, row: Row) -> None:
        """A message_tags row of the export: kept when its message is sampled."""
        wanted = self.tags.get(row[0])  # type: ignore[arg-type]
        if wanted is not None:
            wanted.add(row[1])  # type: ignore[arg-type]

    def compare(self, conn: apsw.Connection) -> Iterator[tuple[tuple[int], list[tuple[str | None, str]]]]:
        """Each sampled message's key, in id order, with what differs in the database: (field, detail) pairs,
        field None when the message is missing, "tags" when its tags differ."""
        sql = select_sql(MESSAGES, " WHERE id = ?")
        for message_id, exported, location in sorted(self.rows, key=lambda s: s[0]):
            key = (message_id,)
            stored = conn.execute(sql, key).fetchone()
            found: list[tuple[str | None, str]] = []
            if stored is None:
                found.append((None, f"sampled from {location}, missing from the database"))
            else:
                for name, detail in field_differences(MESSAGES, exported, tuple(stored)):
                    found.append((name, f"{detail} (sampled from {location})"))
            export_tags = sorted(self.tags.get(message_id, set()))
            db_tags = [
                r[0] for r in conn.execute("SELECT tag_id FROM message_tags WHERE message_id = ? ORDER BY tag_id", key)
            ]
            if export_tags != db_tags:
                found.append(("tags", f"export {export_tags}, database {db_tags}"))
            yield key, found
