"""The steps a repository plan is made of, and the runner that carries a plan out on a session.

See `pychat_db.repositories.plans` for the plans themselves: this module is the machinery they share with
their runners (`Database`'s repositories here, `pychat_db.aio` in APSW's async worker).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Sequence
from typing import Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, cast

import apsw

from pychat_db.errors import ConstraintViolation, translate
from pychat_db.generated.queries import messages as messages_q
from pychat_db.generated.queries import modes as modes_q
from pychat_db.generated.queries import tags as tags_q
from pychat_db.generated.queries import threads as threads_q
from pychat_db.repositories import mapping
from pychat_db.repositories.session import Session

_P = ParamSpec("_P")
_R = TypeVar("_R")
_ALL = -1  # SQLite's LIMIT for "no limit"


class Atomicity(enum.Enum):
    TRANSACTION = "transaction"  # BEGIN IMMEDIATE … COMMIT, or a savepoint inside one
    SNAPSHOT = "snapshot"  # reads that see one state (a deferred read transaction unless one is open)


class Query(Generic[_R]):
    """One generated query to run: `function(conn, *args, **kwargs)`; APSW errors name `table`.

    (Plain slotted classes, not dataclasses: a step is made per query, and a frozen
    dataclass's constructor costs a few microseconds more.)
    """

    __slots__ = ("args", "function", "kwargs", "table")

    def __init__(self, table: str, function: Callable[..., _R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.table = table
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def __iter__(self) -> Generator[Step, Any, _R]:
        return cast(_R, (yield self))

    def __repr__(self) -> str:
        return f"Query({self.table!r}, {getattr(self.function, '__name__', self.function)!r})"


class Atomic(Generic[_R]):
    """A nested plan run as one transaction (or savepoint) or one snapshot."""

    __slots__ = ("atomicity", "plan")

    def __init__(self, atomicity: Atomicity, plan: Plan[_R]) -> None:
        self.atomicity = atomicity
        self.plan = plan

    def __iter__(self) -> Generator[Step, Any, _R]:
        return cast(_R, (yield self))


Step: TypeAlias = "Query[Any] | Atomic[Any]"
Plan: TypeAlias = Generator["Query[Any] | Atomic[Any]", Any, _R]


def query(
    table: str, function: Callable[Concatenate[apsw.Connection, _P], _R], *args: _P.args, **kwargs: _P.kwargs
) -> Query[_R]:
    """The step that runs a generated query (`function`, called with the connection first) on `table`."""
    return Query(table, function, args, kwargs)


def transaction(plan: Plan[_R]) -> Atomic[_R]:
    """The step that runs `plan` as one transaction: all of its writes kept, or none."""
    return Atomic(Atomicity.TRANSACTION, plan)


def snapshot(plan: Plan[_R]) -> Atomic[_R]:
    """The step that runs `plan`'s reads against one state of the database."""
    return Atomic(Atomicity.SNAPSHOT, plan)


def run_query(conn: apsw.Connection, step: Query[_R]) -> _R:
    """Run one query step on `conn`; APSW errors become the library's (naming the step's table)."""
    try:
        return step.function(conn, *step.args, **step.kwargs)
    except apsw.Error as exc:
        raise translate(exc, table=step.table) from exc


def run(session: Session, plan: Plan[_R]) -> _R:
    """Carry `plan` out on `session`, step by step; a step's error is raised inside the plan."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = plan.send(value) if error is None else plan.throw(error)
        except StopIteration as stop:
            return cast(_R, stop.value)
        value, error = None, None
        try:
            if isinstance(step, Query):
                value = run_query(session.conn, step)
            elif step.atomicity is Atomicity.TRANSACTION:
                with session.transaction():
                    value = run(session, step.plan)
            else:
                with session.snapshot():
                    value = run(session, step.plan)
        except BaseException as exc:  # handed to the plan, which re-raises what it does not handle
            error = exc


class SessionRepository:
    """A repository on one `Session`: each method runs its plan there (`run`).

    The base of the SQLite repositories, which are generated from the protocols
    (`pychat_db.generated.sqlite_repositories`, re-exported by `pychat_db.repositories.sqlite`).
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def _run(self, plan: Plan[_R]) -> _R:
        return run(self._session, plan)


def limit_of(limit: int | None) -> int:
    checked = mapping.page_limit(limit)
    return _ALL if checked is None else checked


def returned(row: _R | None, table: str) -> _R:
    """The row of an INSERT ... RETURNING (one that did not raise always returns it)."""
    if row is None:  # pragma: no cover - SQLite guarantees it
        raise AssertionError(f"{table}: INSERT returned no row")
    return row


def exists(table: str, id: int) -> Plan[bool]:
    """Whether `table` (threads, modes, messages or tags) has a row with `id`."""
    if table == "threads":
        row: object = yield from query(table, threads_q.get_thread, id=id)
    elif table == "modes":
        row = yield from query(table, modes_q.get_mode, id=id)
    elif table == "messages":
        row = yield from query(table, messages_q.get_message, id=id)
    else:
        row = yield from query(table, tags_q.get_tag, id=id)
    return row is not None


def missing_reference(
    table: str, refs: Sequence[tuple[str, str, int]], cause: ConstraintViolation
) -> Plan[ConstraintViolation]:
    """Name the column of a FOREIGN KEY failure: the first `(column, parent table, id)` whose parent is absent."""
    for column, parent, key in refs:
        if not (yield from exists(parent, key)):
            return ConstraintViolation(
                f"{table}.{column}: no {parent} row with id {key!r} (FOREIGN KEY constraint failed)",
                kind="FOREIGN KEY",
                table=table,
                column=column,
                code=cause.code,
            )
    return cause
