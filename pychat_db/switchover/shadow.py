"""Shadow reads: every read answered by the primary; a sampled share also read from the shadow and compared.

`ShadowReadRepositories(primary, shadow, reporter)`: each difference goes to the
`MismatchReporter` as one JSON line (entity, id, field, both values; blobs as SHA-256
and size; the API key redacted), once per distinct difference, and is counted. Writes go
to the primary. The forwarders (`ShadowThreads`, ...) are generated from the method
description (`pychat_db.repositories.methods`): a described read is compared, a write
forwarded. `ShadowReads` (the sides, the sampling, what is compared and reported, what
the caller gets), `compare_outcomes` and `MismatchReporter` hold no I/O of a store, so the
async wrapper (`pychat_db.aio.shadow`) uses them as they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Generic, TypeVar, cast

from pychat_db.convert import timestamp_to_db
from pychat_db.errors import NotFound
from pychat_db.models import Configuration, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories.methods import Kind, Method
from pychat_db.repositories.protocols import Repositories
from pychat_db.switchover.forwarding import Forwarders, Part, forwarder_classes, to_primary
from pychat_db.switchover.settings import parse_rate

__all__ = [
    "REDACTED",
    "MismatchReporter",
    "Outcome",
    "ShadowReadRepositories",
    "ShadowReads",
    "compare_outcomes",
    "forward_shadow",
    "outcome",
]

T = TypeVar("T")
R = TypeVar("R")

REDACTED = "<redacted>"
_ENTITY = {
    Configuration: "configuration",
    Thread: "threads",
    Message: "messages",
    Mode: "modes",
    ModeOutput: "mode_outputs",
    Tag: "tags",
}
_SECRET_FIELDS = frozenset({("configuration", "api_key")})


def _blob(value: bytes) -> dict[str, object]:
    return {"sha256": hashlib.sha256(value).hexdigest(), "size": len(value)}


def _json_value(entity: str, name: str, value: object) -> object:
    """A field's value as it may appear in a report: JSON, blobs as hashes, the API key redacted."""
    if (entity, name) in _SECRET_FIELDS and value is not None:
        return REDACTED
    if isinstance(value, bytes):
        return _blob(value)
    if isinstance(value, dt.datetime):
        return timestamp_to_db(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_json_value(entity, name, item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = _ENTITY.get(type(value), entity)
        return {f.name: _json_value(inner, f.name, getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


@dataclass(slots=True)
class MismatchReporter:
    """Writes each distinct read mismatch as one JSON line and counts them.

    A line: `{"entity", "id", "field", "primary", "shadow", "read"}`; the same difference
    seen again (another read of the same object) is counted in `occurrences` but written
    once. `stream` (default stderr) or `path` (appended to, created 0600) receives the lines.
    """

    stream: IO[str] | None = None
    path: str | os.PathLike[str] | None = None
    mismatches: int = 0
    occurrences: int = 0
    compared: int = 0
    skipped: int = 0
    _seen: set[str] = field(default_factory=set)
    _file: IO[str] | None = None

    def _out(self) -> IO[str]:
        if self.stream is not None:
            return self.stream
        if self.path is not None:
            if self._file is None:
                fd = os.open(self.path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
                self._file = os.fdopen(fd, "a", encoding="utf-8")
            return self._file
        return sys.stderr

    def report(self, read: str, entity: str, id: int | None, field: str, primary: object, shadow: object) -> bool:
        """Record one difference (values already made safe by the caller); True when it was new."""
        self.occurrences += 1
        line = json.dumps(
            {"entity": entity, "id": id, "field": field, "primary": primary, "shadow": shadow, "read": read},
            ensure_ascii=False,
        )
        key = json.dumps([entity, id, field, primary, shadow], ensure_ascii=False)
        if key in self._seen:
            return False
        self._seen.add(key)
        self.mismatches += 1
        out = self._out()
        out.write(line + "\n")
        out.flush()
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


_ABSENT = object()


class Outcome:
    """What one side answered: a value, or NotFound, or another error."""

    __slots__ = ("error", "value")

    def __init__(self, value: object = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error


def outcome(call: Callable[[], object], *, keep: type[Exception] = NotFound) -> Outcome:
    """Run `call`: its value, or the error of kind `keep` it raised (default NotFound; any other propagates)."""
    try:
        return Outcome(call())
    except keep as exc:
        return Outcome(error=exc)


def compare_outcomes(reporter: MismatchReporter, read: str, entity: str, mine: Outcome, theirs: Outcome) -> None:
    """Report to `reporter` every difference between the primary's answer (`mine`) and the shadow's."""
    report = functools.partial(reporter.report, read)
    if theirs.error is not None and not isinstance(theirs.error, NotFound):
        report(entity, None, "error", None, f"{type(theirs.error).__name__}: {theirs.error}")
        return
    if mine.error is not None or theirs.error is not None:
        if (mine.error is None) != (theirs.error is None):
            key = getattr(mine.error or theirs.error, "key", None)
            report(
                entity,
                key if isinstance(key, int) else None,
                "presence",
                "absent" if mine.error else "present",
                "absent" if theirs.error else "present",
            )
        return
    a, b = mine.value, theirs.value
    if isinstance(a, list) and isinstance(b, list):
        _compare_lists(reporter, read, entity, a, b)
    elif a is None or b is None:
        if (a is None) != (b is None):
            id = getattr(a if a is not None else b, "id", None)
            report(entity, id, "presence", "absent" if a is None else "present", "absent" if b is None else "present")
    elif a != b:
        _compare_objects(reporter, read, a, b)


def _compare_lists(reporter: MismatchReporter, read: str, entity: str, a: list[Any], b: list[Any]) -> None:
    report = functools.partial(reporter.report, read)
    mine = {item.id: item for item in a}
    theirs = {item.id: item for item in b}
    for id in mine.keys() - theirs.keys():
        report(_ENTITY.get(type(mine[id]), entity), id, "presence", "present", "absent")
    for id in theirs.keys() - mine.keys():
        report(_ENTITY.get(type(theirs[id]), entity), id, "presence", "absent", "present")
    for id in mine.keys() & theirs.keys():
        if mine[id] != theirs[id]:
            _compare_objects(reporter, read, mine[id], theirs[id])
    order_a = [item.id for item in a if item.id in theirs]
    order_b = [item.id for item in b if item.id in mine]
    if order_a != order_b:
        report(entity, None, "order", order_a, order_b)


def _compare_objects(reporter: MismatchReporter, read: str, a: Any, b: Any) -> None:
    entity = _ENTITY.get(type(a), type(a).__name__)
    for f in dataclasses.fields(a):
        left, right = getattr(a, f.name), getattr(b, f.name, _ABSENT)
        if left != right:
            reporter.report(
                read,
                entity,
                a.id,
                f.name,
                _json_value(entity, f.name, left),
                _json_value(entity, f.name, right) if right is not _ABSENT else "absent",
            )


class ShadowReads(Generic[R]):
    """What the sync and the async shadow-read wrappers share: the sides, the reporter, the sampling, and
    what a compared read does with the two answers; a wrapper makes (or awaits) the calls."""

    def __init__(
        self, primary: R, shadow: R, reporter: MismatchReporter | None, sample_rate: float, seed: int | None
    ) -> None:
        self.primary = primary
        self.shadow = shadow
        self.reporter = reporter if reporter is not None else MismatchReporter()
        self.sample_rate = parse_rate("sample_rate", sample_rate)
        self._random = random.Random(seed)

    def _compares(self, in_block: bool) -> bool:
        """Whether this read is compared: never inside a block, else as sampled (one not compared is counted)."""
        if (
            in_block
            or self.sample_rate <= 0.0
            or (self.sample_rate < 1.0 and self._random.random() >= self.sample_rate)
        ):
            self.reporter.skipped += 1
            return False
        return True

    def _compare(self, name: str, entity: str, mine: Outcome, theirs: Outcome) -> None:
        """Count the compared read and report every difference between the two answers (writes the report)."""
        self.reporter.compared += 1
        compare_outcomes(self.reporter, name, entity, mine, theirs)

    @staticmethod
    def _answer(mine: Outcome) -> object:
        """What the caller gets: the primary's value, or the NotFound it raised."""
        if mine.error is not None:
            raise mine.error
        return mine.value


class ShadowReadRepositories(ShadowReads[Repositories], Forwarders):
    """Reads answered by `primary` and, for a sampled share, compared with `shadow`; writes go to `primary`.

    Each difference goes to `reporter` (see MismatchReporter). `sample_rate` in [0, 1]
    bounds the cost (0 never reads the shadow, 1 compares every read); `seed` makes the
    sampling repeatable. A shadow read that fails is reported (field "error") and never
    reaches the caller. Reads inside `transaction()` are not compared (the shadow may
    only get the block's writes when it commits).
    """

    def __init__(
        self,
        primary: Repositories,
        shadow: Repositories,
        reporter: MismatchReporter | None = None,
        *,
        sample_rate: float = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(primary, shadow, reporter, sample_rate, seed)
        self._depth = 0
        self._forward(_PARTS)

    def read(self, name: str, entity: str, call: Callable[[Repositories], T]) -> T:
        """Answer `call(primary)`; for a sampled read also run `call(shadow)` and report the differences."""
        if not self._compares(self._depth > 0):
            return call(self.primary)
        mine = outcome(lambda: call(self.primary))
        theirs = outcome(lambda: call(self.shadow), keep=Exception)  # the shadow must never break a read
        self._compare(name, entity, mine, theirs)
        return cast(T, self._answer(mine))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._depth += 1
        try:
            with self.primary.transaction():
                yield
        finally:
            self._depth -= 1

    def close(self) -> None:
        """Close the primary and the shadow (closing twice is harmless) and the reporter's file."""
        try:
            self.primary.close()
            self.shadow.close()
        finally:
            self.reporter.close()


def forward_shadow(method: Method) -> Callable[..., Any]:
    """The shadow-read forwarder of one described method: a read is compared, a write goes to the primary."""
    if method.kind is Kind.WRITE:
        return to_primary(method)
    attribute, name, read_name, iterables = method.repository, method.name, method.qualname, bool(method.iterables)

    def read(part: Part[ShadowReadRepositories], *args: Any, **kwargs: Any) -> Any:
        if iterables:  # read once, for both sides
            args, kwargs = method.materialize(args, kwargs)
        return part.owner.read(read_name, attribute, lambda r: getattr(getattr(r, attribute), name)(*args, **kwargs))

    return read


_PARTS = forwarder_classes("Shadow", forward_shadow)
