"""Typed execution of the named queries of `queries/*.sql`: what the generated wrappers are made of.

aiosql loads a query file (`QueryFile`, with aiosql's own loader, as `aiosql.from_path(path, "apsw")`
does: names, operations, declared parameters, the SQL). A generated wrapper is one description of one
query: a function whose signature is the query's parameters and whose body turns them into SQLite
values (`Params`), bound by a `QueryFile` decorator to the query's SQL and to a decoder of its rows.
The result (`Select`, `SelectOne`, ...) is the wrapper that callers call with a connection first;
its variants share that one description: `Select.iter` streams the rows, and every wrapper's `aio`
runs the same statement on an APSW async connection (`apsw.Connection.as_async`), awaited.

Every step is typed and checked by mypy: a caller's arguments against the description's signature,
the description's bindings against `Params` (a datetime left unconverted is an error), the decoder
against the rows, the result against the wrapper's return type. The statements run through APSW's
own typed API, making the calls aiosql's APSW adapter (its `GenericAdapter`) makes: `execute`, then
all rows, the first row or one row at a time; `executemany`; `Connection.changes()` for a count.
aiosql's loaded query functions are typed `(*Any, **Any) -> Any`, so they are not what runs.

The async variant binds the arguments in the caller (a wrong argument fails before anything is
sent) and runs the rest, the statement and the decoding of its rows, in the connection's worker
thread in one call (`AsyncConnection.async_run`), as the sync wrapper would. APSW types what
`async_run` returns as `Any`: `_in_worker` gives it the type of the function that ran.

Nothing here commits: writes belong in the caller's transaction (`with conn:`). APSW's exceptions
leave as they are; the repositories turn them into `pychat_db.errors` ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Generic, ParamSpec, TypeAlias, TypeVar

import apsw
from aiosql.adapters.generic import GenericAdapter
from aiosql.query_loader import QueryLoader
from aiosql.types import SQLOperationType

__all__ = [
    "Execute",
    "ExecuteMany",
    "Params",
    "QueryFile",
    "Row",
    "SQLiteValue",
    "Script",
    "Select",
    "SelectOne",
    "SelectValue",
]

# A value SQLite stores or returns. (APSW's own `apsw.SQLiteValue` names `collections.abc.Buffer`, which
# Python 3.11's typeshed lacks, so under 3.11 it holds `Any` and would let any value through.)
SQLiteValue: TypeAlias = int | float | str | bytes | None
# The named parameters of one statement, as SQLite values (what a description returns).
Params: TypeAlias = dict[str, SQLiteValue]
# One result row, columns in SELECT order.
Row: TypeAlias = tuple[SQLiteValue, ...]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")
_A = TypeVar("_A")

_Op = SQLOperationType


async def _in_worker(conn: apsw.AsyncConnection, run: Callable[[apsw.Connection, _A], _T], argument: _A) -> _T:
    """`run(connection, argument)` in the worker thread of the async connection `conn`, awaited.

    In its worker an async connection is the `Connection` it wraps, so `run` gets `conn` itself.
    """
    result: _T = await conn.async_run(run, conn, argument)  # async_run is typed `-> Any`: it returns run's result
    return result


def _rows(cursor: apsw.Cursor) -> Iterator[Row]:
    """The cursor as the iterator of rows it is.

    APSW's stub types a fetched row as `Any` because a row tracer may replace rows; pychat_db sets
    none, so a row is a tuple of SQLite values, the type the stub gives `Cursor.fetchall()`.
    """
    return cursor


class QueryFile:
    """The named queries of one `queries/*.sql` file, loaded by aiosql; its methods bind descriptions to them.

    A decorator finds the query by the name of the function it decorates, and fails at import when the
    file has no such query or the query's operation is not the decorator's: the SQL changed and
    `python -m codegen` was not rerun.
    """

    def __init__(self, path: str | Path) -> None:
        # What `aiosql.from_path(path, "apsw")` does before building its query functions: the APSW
        # adapter is aiosql's GenericAdapter, whose process_sql passes the SQL through.
        # (GenericAdapter's constructor, `__init__(self, *args, **kwargs)`, carries no annotations.)
        adapter = GenericAdapter()  # type: ignore[no-untyped-call]
        loader = QueryLoader(adapter, None, attribute="__", mandatory_parameters=True)
        self.path = Path(path)
        self._queries = {datum.query_name: datum for datum in loader.load_query_data_from_file(self.path)}

    def sql(self, name: str, *operations: SQLOperationType) -> str:
        """The SQL of query `name`, which must have one of `operations` (all when none is given)."""
        datum = self._queries.get(name)
        if datum is None:
            raise LookupError(f"{self.path}: no query named {name}; rerun python -m codegen")
        if operations and datum.operation_type not in operations:
            wanted = " or ".join(op.name for op in operations)
            raise LookupError(
                f"{self.path}: query {name} is {datum.operation_type.name}, its wrapper expects {wanted}; "
                "rerun python -m codegen"
            )
        if datum.attributes:
            raise LookupError(f"{self.path}: query {name} uses attribute parameters (:a.b); name each value")
        return datum.sql

    def select(self, decode: Callable[[Row], _R]) -> Callable[[Callable[_P, Params]], Select[_P, _R]]:
        """A select (no suffix): every row, decoded."""

        def bind(description: Callable[_P, Params]) -> Select[_P, _R]:
            return Select(self.sql(description.__name__, _Op.SELECT), description, decode)

        return bind

    def select_one(self, decode: Callable[[Row], _R]) -> Callable[[Callable[_P, Params]], SelectOne[_P, _R]]:
        """A `^` query (or a `<!` returning several columns): its first row, decoded, or None."""

        def bind(description: Callable[_P, Params]) -> SelectOne[_P, _R]:
            sql = self.sql(description.__name__, _Op.SELECT_ONE, _Op.INSERT_RETURNING)
            return SelectOne(sql, description, decode)

        return bind

    def select_value(
        self, decode: Callable[[SQLiteValue], _T]
    ) -> Callable[[Callable[_P, Params]], SelectValue[_P, _T]]:
        """A `$` query (or a `<!` returning one column): the first column of its first row, decoded, or None."""

        def bind(description: Callable[_P, Params]) -> SelectValue[_P, _T]:
            sql = self.sql(description.__name__, _Op.SELECT_VALUE, _Op.INSERT_RETURNING)
            return SelectValue(sql, description, decode)

        return bind

    def execute(self, description: Callable[_P, Params]) -> Execute[_P]:
        """A `!` statement: the number of rows it changed."""
        return Execute(self.sql(description.__name__, _Op.INSERT_UPDATE_DELETE), description)

    def execute_many(self, description: Callable[[_T], Params]) -> ExecuteMany[_T]:
        """A `*!` statement: run once per item, each bound by `description`."""
        return ExecuteMany(self.sql(description.__name__, _Op.INSERT_UPDATE_DELETE_MANY), description)

    def script(self, description: Callable[[], None]) -> Script:
        """A `#` script: run as it is, without parameters."""
        return Script(self.sql(description.__name__, _Op.SCRIPT), description)


class _Wrapper:
    """Carries the description's name and docstring, so the wrapper reads as the function it stands for."""

    def __init__(self, sql: str, description: Callable[..., object]) -> None:
        self.sql = sql
        self.__name__ = description.__name__
        self.__qualname__ = description.__qualname__
        self.__module__ = description.__module__
        self.__doc__ = description.__doc__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.__module__}.{self.__qualname__}>"


class Select(_Wrapper, Generic[_P, _R]):
    """`select(conn, **params) -> list[R]`, `select.iter(conn, ...) -> Iterator[R]`, `await select.aio(aconn, ...)`."""

    def __init__(self, sql: str, bind: Callable[_P, Params], decode: Callable[[Row], _R]) -> None:
        super().__init__(sql, bind)
        self.bind = bind
        self.decode = decode

    def __call__(self, conn: apsw.Connection, /, *args: _P.args, **kwargs: _P.kwargs) -> list[_R]:
        return self.run(conn, self.bind(*args, **kwargs))

    def run(self, conn: apsw.Connection, params: Params) -> list[_R]:
        """The statement with `params` bound already."""
        decode = self.decode
        return [decode(row) for row in conn.execute(self.sql, params).fetchall()]

    async def aio(self, conn: apsw.AsyncConnection, /, *args: _P.args, **kwargs: _P.kwargs) -> list[_R]:
        """The same, on an APSW async connection: one call to its worker thread."""
        return await _in_worker(conn, self.run, self.bind(*args, **kwargs))

    def iter(self, conn: apsw.Connection, /, *args: _P.args, **kwargs: _P.kwargs) -> Iterator[_R]:
        """The rows one at a time.

        The statement stays open until the iterator is exhausted or closed.
        """
        decode = self.decode
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, self.bind(*args, **kwargs))
            for row in _rows(cursor):
                yield decode(row)
        finally:
            cursor.close()


class SelectOne(_Wrapper, Generic[_P, _R]):
    """`select_one(conn, **params) -> R | None`: the first row (None when there is none)."""

    def __init__(self, sql: str, bind: Callable[_P, Params], decode: Callable[[Row], _R]) -> None:
        super().__init__(sql, bind)
        self.bind = bind
        self.decode = decode

    def __call__(self, conn: apsw.Connection, /, *args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        return self.run(conn, self.bind(*args, **kwargs))

    def run(self, conn: apsw.Connection, params: Params) -> _R | None:
        """The statement with `params` bound already."""
        cursor = conn.cursor()
        try:
            row = next(_rows(cursor.execute(self.sql, params)), None)
        finally:
            cursor.close()
        return None if row is None else self.decode(row)

    async def aio(self, conn: apsw.AsyncConnection, /, *args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        """The same, on an APSW async connection: one call to its worker thread."""
        return await _in_worker(conn, self.run, self.bind(*args, **kwargs))


class SelectValue(SelectOne[_P, _T]):
    """`select_value(conn, **params) -> T | None`: the first column of the first row (None when there is none).

    A `SelectOne` whose row is decoded by decoding its first column.
    """

    def __init__(self, sql: str, bind: Callable[_P, Params], decode: Callable[[SQLiteValue], _T]) -> None:
        super().__init__(sql, bind, lambda row: decode(row[0]))


class Execute(_Wrapper, Generic[_P]):
    """`execute(conn, **params) -> int`: the rows the statement changed (`Connection.changes()`)."""

    def __init__(self, sql: str, bind: Callable[_P, Params]) -> None:
        super().__init__(sql, bind)
        self.bind = bind

    def __call__(self, conn: apsw.Connection, /, *args: _P.args, **kwargs: _P.kwargs) -> int:
        return self.run(conn, self.bind(*args, **kwargs))

    def run(self, conn: apsw.Connection, params: Params) -> int:
        """The statement with `params` bound already."""
        conn.execute(self.sql, params).close()
        return conn.changes()

    async def aio(self, conn: apsw.AsyncConnection, /, *args: _P.args, **kwargs: _P.kwargs) -> int:
        """The same, on an APSW async connection: one call to its worker thread."""
        return await _in_worker(conn, self.run, self.bind(*args, **kwargs))


class ExecuteMany(_Wrapper, Generic[_T]):
    """`execute_many(conn, items) -> None`: the statement once per item."""

    def __init__(self, sql: str, bind: Callable[[_T], Params]) -> None:
        super().__init__(sql, bind)
        self.bind = bind

    def __call__(self, conn: apsw.Connection, rows: Iterable[_T], /) -> None:
        bind = self.bind
        self.run(conn, (bind(row) for row in rows))

    def run(self, conn: apsw.Connection, params: Iterable[Params]) -> None:
        """The statement once per item of `params`, each bound already."""
        conn.executemany(self.sql, params).close()

    async def aio(self, conn: apsw.AsyncConnection, rows: Iterable[_T], /) -> None:
        """The same, on an APSW async connection: one call to its worker thread (the items bound first)."""
        bind = self.bind
        params: Sequence[Params] = [bind(row) for row in rows]
        await _in_worker(conn, self.run, params)


class Script(_Wrapper):
    """`script(conn) -> None`: the statements as they are."""

    def __call__(self, conn: apsw.Connection, /) -> None:
        self.run(conn, None)

    def run(self, conn: apsw.Connection, params: None) -> None:
        """The statements (`params`: None, a script has none)."""
        conn.execute(self.sql).close()

    async def aio(self, conn: apsw.AsyncConnection, /) -> None:
        """The same, on an APSW async connection: one call to its worker thread."""
        await _in_worker(conn, self.run, None)
