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
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from pychat_db.convert import timestamp_to_db
from pychat_db.errors import PychatDbError
from pychat_db.repositories.methods import Kind, Method
from pychat_db.repositories.protocols import Repositories
from pychat_db.switchover.forwarding import Forwarders, Part, forwarder_classes, to_primary
from pychat_db.switchover.settings import OnSecondaryFailure, parse_choice

__all__ = ["DualWriteRepositories", "SecondaryFailure", "SecondaryWriteError", "forward_dual", "record_failure"]

T = TypeVar("T")


class SecondaryWriteError(PychatDbError):
    """A write reached the primary but failed on the secondary (with `raise`: the primary's write was undone)."""


@dataclass(frozen=True, slots=True)
class _Write:
    """One write to replay on the secondary: what it is (no values: they may be secret) and how."""

    what: str
    apply: Callable[[Repositories], object]


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


class DualWriteRepositories(Forwarders):
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
        self.primary = primary
        self.secondary = secondary
        self.on_failure = parse_choice(OnSecondaryFailure, "on_failure", on_failure)
        self.failures: list[SecondaryFailure] = []
        self.diverged = False
        self._queue: list[list[_Write]] = []
        self._batch: list[_Write] = []
        self._depth = 0
        self._log = log
        self._forward(_PARTS)

    # -- state --------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Secondary writes queued (not applied yet)."""
        return sum(len(batch) for batch in self._queue)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def _record(self, what: str, exc: BaseException, outcome: str) -> None:
        self.failures.append(record_failure(what, exc, outcome, self._log))

    # -- applying -----------------------------------------------------------------------------

    def _apply(self, batch: list[_Write]) -> None:
        """Apply a batch on the secondary in one of its transactions; raise (_Failed) naming the write that failed."""
        current = batch[0]
        try:
            with self.secondary.transaction():
                for current in batch:
                    current.apply(self.secondary)
        except Exception as exc:
            raise _Failed(current, exc) from exc

    def _apply_now(self, batch: list[_Write]) -> None:
        """`raise` policy: apply or raise SecondaryWriteError (the caller's primary transaction then rolls back)."""
        if not batch:
            return
        try:
            self._apply(batch)
        except _Failed as failed:
            self._record(failed.write.what, failed.cause, "raised")
            raise SecondaryWriteError(
                f"secondary write failed, primary write rolled back: {failed.write.what}: {failed.cause}"
            ) from failed.cause

    def _apply_or_queue(self, batch: list[_Write]) -> None:
        """`queue` policy: apply, or queue the batch (behind any queued one, so the order is kept)."""
        if not batch:
            return
        if self._queue:
            self._queue.append(batch)
            return
        try:
            self._apply(batch)
        except _Failed as failed:
            self._record(failed.write.what, failed.cause, "queued")
            self._queue.append(batch)

    def drain(self) -> int:
        """Replay the queued secondary writes in order; return how many remain queued.

        Stops at the first batch that fails again (recorded; it stays queued, first).
        """
        while self._queue:
            if self._depth:
                raise SecondaryWriteError("drain() inside a transaction: call it after the transaction")
            try:
                self._apply(self._queue[0])
            except _Failed as failed:
                self._record(failed.write.what, failed.cause, "queued")
                break
            self._queue.pop(0)
        return self.pending

    # -- writing ------------------------------------------------------------------------------

    def write(self, primary: Callable[[], T], forward: Callable[[T], _Write]) -> T:
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
        outermost = self._depth == 0
        mark = len(self._batch)
        applied = False
        self._depth += 1
        try:
            with self.primary.transaction():
                yield
                if outermost and self.on_failure is OnSecondaryFailure.RAISE:
                    self._apply_now(self._batch)
                    applied = bool(self._batch)
        except BaseException as exc:
            del self._batch[mark:]
            if applied:  # the secondary committed, then the primary's commit failed
                self.diverged = True
                self._record("commit of the primary after the secondary's", exc, "diverged")
            raise
        finally:
            self._depth -= 1
            if outermost:
                batch, self._batch = self._batch, []
        if outermost and self.on_failure is OnSecondaryFailure.QUEUE:
            self._apply_or_queue(batch)

    def close(self) -> None:
        """Close both sides. Queued secondary writes cannot outlive the process: when some are
        left (drain() first), each is listed on the log and SecondaryWriteError is raised after
        closing, since the sides now differ (re-populate SQLite from the legacy store)."""
        left = [write.what for batch in self._queue for write in batch]
        for what in left:
            print(f"pychat_db: closing with a queued secondary write: {what}", file=self._log or sys.stderr)
        try:
            self.primary.close()
        finally:
            self.secondary.close()
        if left:
            raise SecondaryWriteError(
                f"closed with {len(left)} queued secondary write(s) not applied (first: {left[0]}); "
                "the two sides differ: re-import the legacy store into SQLite before dual writes resume"
            )


class _Failed(Exception):
    def __init__(self, write: _Write, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.write = write
        self.cause = cause


def forward_dual(method: Method) -> Callable[..., Any]:
    """The dual-write forwarder of one described method: a read asks the primary; a write goes through `write`."""
    if method.kind is Kind.READ:
        return to_primary(method)
    attribute, name, iterables = method.repository, method.name, bool(method.iterables)

    def write(part: Part[DualWriteRepositories], *args: Any, **kwargs: Any) -> Any:
        if iterables:  # read once, for both sides
            args, kwargs = method.materialize(args, kwargs)
        dual = part.owner
        call = getattr(getattr(dual.primary, attribute), name)

        def forward(result: Any) -> _Write:
            calls = method.replay_calls(args, kwargs, result)

            def apply(secondary: Repositories) -> None:
                repository = getattr(secondary, attribute)
                for replay in calls:
                    replay.on(repository)

            return _Write(method.label(args, kwargs, result), apply)

        return dual.write(lambda: call(*args, **kwargs), forward)

    return write


_PARTS = forwarder_classes("Dual", forward_dual)
