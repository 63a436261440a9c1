"""Dual writes: every write to the primary and, carrying the ids the primary assigned, to the secondary.

`DualWriteRepositories(primary, secondary)`: each write goes to the primary, then the
same write, repeated as its method description says (`pychat_db.repositories.methods`:
the stored object, the same arguments, or a `create` per seeded object), to the
secondary. A secondary failure is recorded (`failures`) and, per `on_failure`, either
raised (`SecondaryWriteError`; the primary's write is rolled back, so the two sides stay
equal) or queued (`pending`; later writes queue behind it, in order, until `drain()`
replays them). Inside `transaction()` the secondary's writes are applied as one batch
when the block succeeds (all or none on the secondary too). Reads answer from the
primary. The forwarders (`DualThreads`, ...) are generated from the method description.

`DualWrites` holds all of this but the calls themselves (the policy, the records, the
queue, a block's batch), so the async wrapper (`pychat_db.aio.dual`) decides as this
one does and differs only where it awaits.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

from pychat_db.convert import timestamp_to_db
from pychat_db.errors import PychatDbError
from pychat_db.repositories.methods import Call, Kind, Method
from pychat_db.repositories.protocols import Repositories
from pychat_db.switchover.forwarding import Forwarders, Part, forwarder_classes, to_primary
from pychat_db.switchover.settings import OnSecondaryFailure, parse_choice

__all__ = [
    "Block",
    "DualWriteRepositories",
    "DualWrites",
    "Refusal",
    "Replaying",
    "SecondaryFailure",
    "SecondaryWrite",
    "SecondaryWriteError",
    "forward_dual",
    "record_failure",
]

T = TypeVar("T")
R = TypeVar("R")


class SecondaryWriteError(PychatDbError):
    """A write reached the primary but failed on the secondary (with `raise`: the primary's write was undone)."""


@dataclass(frozen=True, slots=True)
class SecondaryWrite:
    """One write to replay on the secondary: what it is (no values: they may be secret), on which repository
    (`Repositories` attribute), by which calls (`Method.replay_calls`: `call.on(repository)`)."""

    what: str
    repository: str
    calls: tuple[Call, ...]

    @classmethod
    def of(cls, method: Method, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> SecondaryWrite:
        """The replay of a described write made with `args`, `kwargs` that returned `result` on the primary."""
        return cls(method.label(args, kwargs, result), method.repository, method.replay_calls(args, kwargs, result))


@dataclass(frozen=True, slots=True)
class Refusal:
    """The secondary refused a batch: the write that failed and its error."""

    write: SecondaryWrite
    cause: Exception


class Replaying:
    """A batch being applied on the secondary: `calls()` gives its calls in order; an error leaving the
    `with` block is kept as the `refusal` naming the write that failed (not raised)."""

    def __init__(self, batch: list[SecondaryWrite], secondary: object) -> None:
        self.refusal: Refusal | None = None
        self._batch = batch
        self._secondary = secondary
        self._current = batch[0]

    def calls(self) -> Iterator[Callable[[], Any]]:
        """Each call of the batch, made on the secondary's repository (sync: a value; async: an awaitable)."""
        for write in self._batch:
            self._current = write
            repository = getattr(self._secondary, write.repository)
            for call in write.calls:
                yield functools.partial(call.on, repository)

    def __enter__(self) -> Replaying:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> bool:
        if isinstance(error, Exception):
            self.refusal = Refusal(self._current, error)
            return True
        return False


@dataclass(frozen=True, slots=True)
class SecondaryFailure:
    """A secondary write that failed: which write, the error, what was done about it."""

    what: str
    error: str
    outcome: str  # "raised" (primary rolled back), "queued", "diverged" (primary commit failed after)
    at: str


def record_failure(what: str, exc: BaseException, outcome: str, log: IO[str] | None) -> SecondaryFailure:
    """The record of a failed secondary write, and its one line on `log` (default stderr): the same for the
    sync and the async dual-write wrappers."""
    failure = SecondaryFailure(what, f"{type(exc).__name__}: {exc}", outcome, timestamp_to_db(dt.datetime.now(dt.UTC)))
    print(f"pychat_db: secondary write {outcome}: {what}: {failure.error}", file=log or sys.stderr)
    return failure


@dataclass(slots=True)
class Block:
    """One level of a dual-write `transaction()`: the outermost or not, where its writes start in the batch,
    whether the secondary has already applied them (`raise` policy, at the block's end)."""

    outermost: bool
    mark: int
    applied: bool = False


class DualWrites(Generic[R]):
    """What the sync and the async dual-write wrappers share: the sides, the policy (`on_failure`), the
    records (`failures`, `diverged`, the log lines), the queue and a block's batch, and every decision
    about them. A wrapper makes the calls (the primary's, a batch applied on the secondary: `Refusal`
    or None) and asks this what follows; only calling or awaiting differs between the two.
    """

    def __init__(self, primary: R, secondary: R, on_failure: OnSecondaryFailure | str, log: IO[str] | None) -> None:
        self.primary = primary
        self.secondary = secondary
        self.on_failure = parse_choice(OnSecondaryFailure, "on_failure", on_failure)
        self.failures: list[SecondaryFailure] = []
        self.diverged = False
        self._queue: list[list[SecondaryWrite]] = []
        self._batch: list[SecondaryWrite] = []
        self._depth = 0
        self._log = log

    @property
    def pending(self) -> int:
        """Secondary writes queued (not applied yet)."""
        return sum(len(batch) for batch in self._queue)

    def _record(self, what: str, exc: BaseException, outcome: str) -> None:
        self.failures.append(record_failure(what, exc, outcome, self._log))

    # -- the `raise` policy: a refused batch undoes the primary's writes -------------------------

    def _raised(self, refusal: Refusal) -> SecondaryWriteError:
        """The batch was refused: recorded; the error to raise (the caller's primary transaction then rolls back)."""
        self._record(refusal.write.what, refusal.cause, "raised")
        return SecondaryWriteError(
            f"secondary write failed, primary write rolled back: {refusal.write.what}: {refusal.cause}"
        )

    # -- the `queue` policy: a refused batch waits, and every later one behind it, in order ------

    def _to_apply(self, batch: list[SecondaryWrite]) -> bool:
        """Whether to apply `batch` now: not when it is empty, nor when others wait (it is queued behind them)."""
        if batch and self._queue:
            self._queue.append(batch)
            return False
        return bool(batch)

    def _queued(self, batch: list[SecondaryWrite], refusal: Refusal) -> None:
        """The secondary refused `batch`: recorded, and queued."""
        self._record(refusal.write.what, refusal.cause, "queued")
        self._queue.append(batch)

    def _next_queued(self) -> list[SecondaryWrite] | None:
        """`drain()`: the first queued batch to replay; None when none is left."""
        if self._queue and self._depth:
            raise SecondaryWriteError("drain() inside a transaction: call it after the transaction")
        return self._queue[0] if self._queue else None

    def _replayed(self, refusal: Refusal | None) -> bool:
        """`drain()`: the first queued batch was applied (it leaves the queue), or refused again (recorded; it
        stays first and the drain stops: False)."""
        if refusal is not None:
            self._record(refusal.write.what, refusal.cause, "queued")
            return False
        self._queue.pop(0)
        return True

    # -- a transaction() block ------------------------------------------------------------------

    def _begin(self) -> Block:
        block = Block(outermost=self._depth == 0, mark=len(self._batch))
        self._depth += 1
        return block

    def _copies_before_commit(self, block: Block) -> bool:
        """`raise` policy: the outermost block's batch is applied on the secondary before the primary commits."""
        return block.outermost and self.on_failure is OnSecondaryFailure.RAISE

    def _copies_after_commit(self, block: Block) -> bool:
        """`queue` policy: the outermost block's batch is applied (or queued) once the primary has committed."""
        return block.outermost and self.on_failure is OnSecondaryFailure.QUEUE

    def _abandoned(self, block: Block, exc: BaseException, *, diverged: bool) -> None:
        """The block raised `exc`: its writes are not for the secondary. `diverged`: the secondary had committed
        them, then the primary's commit failed, so the two sides differ (recorded)."""
        del self._batch[block.mark :]
        if diverged:
            self.diverged = True
            self._record("commit of the primary after the secondary's", exc, "diverged")

    def _end(self, block: Block) -> list[SecondaryWrite]:
        """The block is left: the outermost takes the batch (its writes for the secondary); an inner one, nothing."""
        self._depth -= 1
        if not block.outermost:
            return []
        batch, self._batch = self._batch, []
        return batch

    # -- closing ---------------------------------------------------------------------------------

    def _unapplied(self) -> list[str]:
        """`close()`: the queued writes that cannot outlive the process, each listed on the log."""
        left = [write.what for batch in self._queue for write in batch]
        for what in left:
            print(f"pychat_db: closing with a queued secondary write: {what}", file=self._log or sys.stderr)
        return left

    @staticmethod
    def _closed_with(left: list[str]) -> None:
        """`close()`, both sides closed: SecondaryWriteError when queued writes were `left` (the sides differ)."""
        if left:
            raise SecondaryWriteError(
                f"closed with {len(left)} queued secondary write(s) not applied (first: {left[0]}); "
                "the two sides differ: re-import the legacy store into SQLite before dual writes resume"
            )


class DualWriteRepositories(DualWrites[Repositories], Forwarders):
    """Every write to `primary` and, with the ids the primary assigned, to `secondary`; reads from the primary.

    `on_failure` (`raise` or `queue`) says what a secondary failure does (see the module doc).
    `failures` records every one; `pending` counts queued writes; `drain()` replays them.
    `log` (default stderr) gets one line per failure.
    """

    def __init__(
        self,
        primary: Repositories,
        secondary: Repositories,
        *,
        on_failure: OnSecondaryFailure | str = OnSecondaryFailure.RAISE,
        log: IO[str] | None = None,
    ) -> None:
        super().__init__(primary, secondary, on_failure, log)
        self._forward(_PARTS)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- applying -----------------------------------------------------------------------------

    def _apply(self, batch: list[SecondaryWrite]) -> Refusal | None:
        """Apply a batch on the secondary in one of its transactions; the refusal naming the write that failed."""
        with Replaying(batch, self.secondary) as replaying, self.secondary.transaction():
            for call in replaying.calls():
                call()
        return replaying.refusal

    def _apply_now(self, batch: list[SecondaryWrite]) -> None:
        """`raise` policy: apply or raise SecondaryWriteError (the caller's primary transaction then rolls back)."""
        if batch and (refusal := self._apply(batch)):
            raise self._raised(refusal) from refusal.cause

    def _apply_or_queue(self, batch: list[SecondaryWrite]) -> None:
        """`queue` policy: apply, or queue the batch (behind any queued one, so the order is kept)."""
        if self._to_apply(batch) and (refusal := self._apply(batch)):
            self._queued(batch, refusal)

    def drain(self) -> int:
        """Replay the queued secondary writes in order; return how many remain queued.

        Stops at the first batch that fails again (recorded; it stays queued, first).
        """
        while (batch := self._next_queued()) is not None:
            if not self._replayed(self._apply(batch)):
                break
        return self.pending

    # -- writing ------------------------------------------------------------------------------

    def write(self, primary: Callable[[], T], forward: Callable[[T], SecondaryWrite]) -> T:
        """Run `primary()` on the primary and forward the write `forward(result)` to the secondary."""
        if self._depth:
            result = primary()
            self._batch.append(forward(result))
            return result
        if self.on_failure is OnSecondaryFailure.RAISE:
            with self.transaction():
                return self.write(primary, forward)
        result = primary()
        self._apply_or_queue([forward(result)])
        return result

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction on the primary; the secondary gets the block's writes as one batch when it succeeds."""
        block = self._begin()
        try:
            with self.primary.transaction():
                yield
                if self._copies_before_commit(block):
                    self._apply_now(self._batch)
                    block.applied = bool(self._batch)
        except BaseException as exc:
            self._abandoned(block, exc, diverged=block.applied)  # applied: the primary's commit failed after
            raise
        finally:
            batch = self._end(block)
        if self._copies_after_commit(block):
            self._apply_or_queue(batch)

    def close(self) -> None:
        """Close both sides. Queued secondary writes cannot outlive the process: when some are
        left (drain() first), each is listed on the log and SecondaryWriteError is raised after
        closing, since the sides now differ (re-populate SQLite from the legacy store)."""
        left = self._unapplied()
        try:
            self.primary.close()
        finally:
            self.secondary.close()
        self._closed_with(left)


def forward_dual(method: Method) -> Callable[..., Any]:
    """The dual-write forwarder of one described method: a read asks the primary; a write goes through `write`."""
    if method.kind is Kind.READ:
        return to_primary(method)
    attribute, name = method.repository, method.name

    def write(part: Part[DualWriteRepositories], *args: Any, **kwargs: Any) -> Any:
        args, kwargs = method.materialize(args, kwargs)  # an iterable read once, for both sides
        call = getattr(getattr(part.owner.primary, attribute), name)
        return part.owner.write(
            lambda: call(*args, **kwargs), lambda result: SecondaryWrite.of(method, args, kwargs, result)
        )

    return write


_PARTS = forwarder_classes("Dual", forward_dual)
