"""Every listing query reads through an index (EXPLAIN QUERY PLAN), and keyset pages need no sort."""

from __future__ import annotations

import re
from typing import Any

import aiosql
import apsw
import apsw.ext
import pytest

from pychat_db.resources import QUERIES_DIR

QUERIES: Any = aiosql.from_path(QUERIES_DIR, "apsw")

# Whole-table listings of small tables the user curates by hand (a few dozen rows): a scan and a sort are fine.
SMALL_TABLE_LISTINGS = {"list_modes": "modes", "list_tags": "tags"}
# Paginated or per-parent listings: rows must come out of the index already in order (no sort step).
NO_SORT = {
    "list_threads_first",
    "list_threads_before",
    "list_messages_first",
    "list_messages_after",
    "list_messages_last",
    "list_messages_before",
    "list_mode_outputs_of_thread",
    "list_mode_outputs_of_mode",
    "list_tags_of_message",
}
LISTINGS = sorted(
    name for name in QUERIES.available_queries if name.startswith("list_") and not name.endswith("_cursor")
)
_BARE_SCAN = re.compile(r"^SCAN (\w+)$")


def plan_details(conn: apsw.Connection, sql: str) -> list[str]:
    info = apsw.ext.query_info(conn, sql, explain_query_plan=True)
    details: list[str] = []
    todo = [info.query_plan]
    while todo:
        node = todo.pop()
        if node is None:
            continue
        details.append(node.detail)
        todo.extend(node.sub or [])
    return details


def test_the_listing_queries_are_all_here() -> None:
    assert set(NO_SORT) | set(SMALL_TABLE_LISTINGS) <= set(LISTINGS)


@pytest.mark.parametrize("name", LISTINGS)
def test_listing_uses_an_index(memory_db: apsw.Connection, name: str) -> None:
    details = plan_details(memory_db, getattr(QUERIES, name).sql)
    bare = [match[1] for d in details if (match := _BARE_SCAN.match(d))]
    assert bare == ([SMALL_TABLE_LISTINGS[name]] if name in SMALL_TABLE_LISTINGS else []), details
    if name not in SMALL_TABLE_LISTINGS:
        # SEARCH ... USING (INDEX|PRIMARY KEY), or SCAN ... USING INDEX (index order, stopped by LIMIT).
        assert any(re.search(r" USING .*(INDEX|PRIMARY KEY)", d) for d in details), details
    if name in NO_SORT:
        assert not any("TEMP B-TREE" in d for d in details), details
