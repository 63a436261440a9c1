"""`pychat_db.querying`: the typed layer the generated wrappers are made of.

The wrappers themselves are run by the golden `wrappers` case (tests/test_codegen.py) and by every
repository test; this file checks what is particular to the layer: the wrappers' types reach mypy
(a wrong call is an error, async variants too), a stale wrapper fails at import, `_iter` releases its
statement, a single value's stored type is checked, and each kind of wrapper's async variant gives
what the sync one gives, on APSW's async connection.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import apsw
import pytest
import trio

from pychat_db import convert
from pychat_db.connection import connect
from pychat_db.generated.mappers import thread_from_db
from pychat_db.generated.queries import threads
from pychat_db.generated.rows import ThreadRow
from pychat_db.migrations import migrate
from pychat_db.querying import Params, QueryFile, SQLiteValue

ROOT = Path(__file__).resolve().parent.parent
WHEN = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

SQL = """\
-- name: list_threads()
-- Every thread, by id.
SELECT id, name, created_at FROM threads ORDER BY id;

-- name: count_threads()$
-- How many threads there are, as text (its annotation would lie).
SELECT CAST(count(*) AS TEXT) AS n FROM threads;

-- name: rename_thread(id, name)!
-- Rename a thread.
UPDATE threads SET name = :name WHERE id = :id;
"""


@pytest.fixture
def queries(tmp_path: Path) -> QueryFile:
    path = tmp_path / "threads.sql"
    path.write_text(SQL, encoding="utf-8")
    return QueryFile(path)


def _add_threads(conn: apsw.Connection, count: int) -> None:
    with conn:
        for i in range(1, count + 1):
            threads.insert_thread(conn, id=i, name=f"t{i}", created_at=WHEN)


def test_a_wrapper_reads_as_the_function_it_stands_for() -> None:
    assert threads.get_thread.__name__ == "get_thread"
    assert threads.get_thread.__module__ == "pychat_db.generated.queries.threads"
    assert threads.get_thread.__doc__ == "One thread by id."
    assert "SELECT" in threads.get_thread.sql and ":id" in threads.get_thread.sql


def test_a_wrapper_whose_query_is_gone_or_changed_fails_at_import(queries: QueryFile) -> None:
    def renamed() -> Params:
        return {}

    with pytest.raises(LookupError, match=r"threads\.sql: no query named renamed; rerun python -m codegen"):
        queries.select(thread_from_db)(renamed)

    def list_threads() -> Params:
        return {}

    with pytest.raises(LookupError, match=r"query list_threads is SELECT, its wrapper expects SELECT_VALUE"):
        queries.select_value(convert.int_from_db)(list_threads)


def test_iter_gives_the_list_s_rows_and_releases_its_statement_when_closed(memory_db: apsw.Connection) -> None:
    _add_threads(memory_db, 3)
    everything = threads.list_threads_first(memory_db, page_limit=-1)
    assert [t.id for t in everything] == [3, 2, 1]  # newest first; ties by id
    assert list(threads.list_threads_first_iter(memory_db, page_limit=-1)) == everything

    rows = threads.list_threads_first_iter(memory_db, page_limit=-1)
    assert next(rows) == everything[0]
    # An unfinished statement reads the table: SQLite will not drop it.
    with pytest.raises(apsw.LockedError):
        memory_db.execute("DROP TABLE message_tags")
    rows.close()
    memory_db.execute("DROP TABLE message_tags")


def test_a_single_value_s_stored_type_is_checked(queries: QueryFile, memory_db: apsw.Connection) -> None:
    _add_threads(memory_db, 2)

    def as_int(value: SQLiteValue) -> int | None:
        return None if value is None else convert.int_from_db(value)

    def count_threads() -> Params:
        return {}

    counted = queries.select_value(as_int)(count_threads)
    with pytest.raises(TypeError, match="expected an INTEGER value from SQLite, got str"):
        counted(memory_db)


def test_execute_counts_the_rows_it_changed(queries: QueryFile, memory_db: apsw.Connection) -> None:
    _add_threads(memory_db, 1)

    def rename_thread(*, id: int, name: str) -> Params:
        return {"id": id, "name": name}

    rename = queries.execute(rename_thread)
    assert rename(memory_db, id=1, name="renamed") == 1
    assert rename(memory_db, id=9, name="nobody") == 0
    assert threads.get_thread(memory_db, id=1) == ThreadRow(1, "renamed", WHEN)


@pytest.mark.parametrize(
    ("convert_", "good", "bad"),
    [
        (convert.int_from_db, 7, "7"),
        (convert.float_from_db, 1.5, b"1.5"),
        (convert.str_from_db, "x", 1),
        (convert.bytes_from_db, b"x", "x"),
    ],
)
def test_checked_single_values(convert_: object, good: SQLiteValue, bad: SQLiteValue) -> None:
    assert callable(convert_)
    assert convert_(good) == good
    with pytest.raises(TypeError, match="from SQLite, got"):
        convert_(bad)


def test_float_from_db_keeps_an_integer_as_it_is() -> None:
    assert type(convert.float_from_db(2)) is int


# Each line marked `# E: code` must be a mypy error of that code; no other line may be.
_CALLS = """\
from __future__ import annotations

import datetime as dt

import apsw

from pychat_db.generated.mappers import thread_from_db
from pychat_db.generated.queries import messages, tags, threads
from pychat_db.generated.rows import ThreadRow
from pychat_db.querying import Params, QueryFile


async def async_calls(aconn: apsw.AsyncConnection) -> None:
    found: ThreadRow | None = await threads.get_thread_async(aconn, id=1)
    await threads.get_thread_async(aconn, id="1")  # E: arg-type
    await threads.get_thread_async(conn=aconn, id=1)  # E: call-arg
    page: list[ThreadRow] = await threads.list_threads_first_async(aconn, page_limit=5)
    changed: int = await tags.delete_tag_async(aconn, id=1)  # E: assignment
    threads.get_thread_async(aconn, id=1).id  # E: attr-defined
    print(found, page, changed)


def calls(conn: apsw.Connection, when: dt.datetime) -> None:
    found: ThreadRow | None = threads.get_thread(conn, id=1)
    page: list[ThreadRow] = threads.list_threads_before(conn, before_created_at=when, before_id=1, page_limit=5)
    threads.get_thread(conn, id="1")  # E: arg-type
    threads.get_thread(conn)  # E: call-arg
    threads.get_thread(conn, id=1, name="x")  # E: call-arg
    threads.get_thread(id=1)  # E: call-arg
    wrong: ThreadRow = threads.get_thread(conn, id=1)  # E: assignment
    threads.list_threads_before(conn, before_created_at="2024", before_id=1, page_limit=5)  # E: arg-type
    for message in messages.list_messages_first_iter(conn, thread_id=1, page_limit=5):
        message.nope  # E: attr-defined
    tags.delete_tag(conn, id=1) + 1  # E: operator
    print(found, page, wrong)


_QUERIES = QueryFile("queries/threads.sql")


@_QUERIES.select_one(thread_from_db)
def get_thread(*, id: dt.datetime) -> Params:
    return {"id": id}  # E: dict-item
"""


def test_mypy_checks_every_call_of_a_wrapper(tmp_path: Path) -> None:
    """The wrappers' types reach mypy: calls and results that do not fit are errors (no `Any` between)."""
    source = tmp_path / "calls.py"
    source.write_text(_CALLS, encoding="utf-8")
    marks = [(number, re.search(r"# E: ([\w-]+)$", line)) for number, line in enumerate(_CALLS.splitlines(), 1)]
    wanted = {(number, mark.group(1)) for number, mark in marks if mark is not None}
    assert len(wanted) == 13
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "mypy"),
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(source),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    found = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"calls\.py:(\d+): error: .*\[([\w-]+)\]$", done.stdout, re.MULTILINE)
    }
    assert found == wanted, textwrap.indent(done.stdout, "  ")


# -- the async variants -------------------------------------------------------------------------------

_MANY_SQL = """\
-- name: add_threads*!
-- Store threads, one statement per item.
INSERT INTO threads (id, name, created_at) VALUES (:id, :name, '2024-05-01T12:00:00.000000Z');

-- name: drop_threads#
-- Remove every thread.
DELETE FROM threads;
"""


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_each_wrapper_s_async_variant_gives_what_the_sync_one_gives(
    tmp_path: Path, queries: QueryFile, framework: str
) -> None:
    """Select, SelectOne, SelectValue, Execute, ExecuteMany and Script, awaited on `Connection.as_async`."""
    path = tmp_path / "chat.db"
    conn = connect(path)
    migrate(conn)
    _add_threads(conn, 3)

    @queries.select(thread_from_db)
    def list_threads() -> Params:
        return {}

    @queries.select_value(convert.str_from_db)
    def count_threads() -> Params:
        return {}

    @queries.execute
    def rename_thread(*, id: int, name: str) -> Params:
        return {"id": id, "name": name}

    many = QueryFile(_write(tmp_path / "many.sql", _MANY_SQL))

    @many.execute_many
    def add_threads(row: tuple[int, str]) -> Params:
        return {"id": row[0], "name": row[1]}

    @many.script
    def drop_threads() -> None:
        """Remove every thread."""

    expected = (threads.get_thread(conn, id=2), list_threads(conn), count_threads(conn))
    conn.close()

    async def main() -> tuple[object, ...]:
        aconn = await apsw.Connection.as_async(str(path))
        try:
            answers = (
                await threads.get_thread_async(aconn, id=2),
                await list_threads.aio(aconn),
                await count_threads.aio(aconn),
            )
            with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
                await threads.get_thread_async(aconn, nope=2)  # type: ignore[call-arg]
            renamed = await rename_thread.aio(aconn, id=1, name="renamed")
            missing = await rename_thread.aio(aconn, id=99, name="x")
            await add_threads.aio(aconn, [(10, "ten"), (11, "eleven")])
            names = [row.name for row in await list_threads.aio(aconn)]
            await drop_threads.aio(aconn)
            left = await count_threads.aio(aconn)
            return (*answers, renamed, missing, names, left)
        finally:
            await aconn.aclose()

    result = asyncio.run(main()) if framework == "asyncio" else trio.run(main)
    assert result == (*expected, 1, 0, ["renamed", "t2", "t3", "ten", "eleven"], "0")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
