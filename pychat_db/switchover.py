"""Switching the app from the legacy store to SQLite in phases, by configuration.

One setting picks the phase (`PYCHAT_DB_MODE`, or `Settings(phase=...)` in code), read
once at start-up; `open_repositories()` returns the repositories wired for it, with the
same attributes as `Database` (`configuration`, `threads`, `messages`, `modes`,
`mode_outputs`, `tags`, `transaction()`, `close()`):

| phase    | writes                           | reads answered by | compared with |
|----------|----------------------------------|-------------------|---------------|
| `legacy` | legacy store                     | legacy            | -             |
| `dual`   | legacy, then SQLite (same ids)   | legacy            | -             |
| `shadow` | legacy, then SQLite (same ids)   | legacy            | SQLite        |
| `sqlite` | SQLite                           | SQLite            | -             |

The legacy store stays the source of truth (it assigns the ids) until the cut-over to
`sqlite`; `shadow` proves SQLite's answers on real traffic before the app relies on them.

* `DualWriteRepositories(primary, secondary)`: each write goes to the primary, then the
  same write, carrying the ids the primary assigned, to the secondary. A secondary
  failure is recorded (`failures`) and, per `on_failure`, either raised
  (`SecondaryWriteError`; the primary's write is rolled back, so the two sides stay
  equal) or queued (`pending`; later writes queue behind it, in order, until
  `drain()` replays them). Inside `transaction()` the secondary's writes are applied
  as one batch when the block succeeds (all or none on the secondary too).
* `ShadowReadRepositories(primary, shadow, reporter)`: every read answers from the
  primary; a sample (`sample_rate`) is also read from the shadow and compared field by
  field. Each difference goes to the `MismatchReporter` as one JSON line (entity, id,
  field, both values; blobs as SHA-256 and size; the API key redacted), once per
  distinct difference, and is counted.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import json
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

from pychat_db.convert import timestamp_to_db
from pychat_db.database import Database
from pychat_db.errors import NotFound, PychatDbError
from pychat_db.exchange.contract import COLLECTIONS
from pychat_db.legacy import LegacyRepositories
from pychat_db.models import Configuration, Cursor, Message, Mode, ModeOutput, Tag, Thread
from pychat_db.repositories import protocols

__all__ = [
    "ENV_VARS",
    "DualWriteRepositories",
    "MismatchReporter",
    "OnSecondaryFailure",
    "OutOfSync",
    "Phase",
    "Repositories",
    "SecondaryFailure",
    "SecondaryWriteError",
    "Settings",
    "SettingsError",
    "ShadowReadRepositories",
    "check_in_sync",
    "open_repositories",
    "startup_settings",
]

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Settings


class Phase(enum.StrEnum):
    """Which store the app uses (see the module doc)."""

    LEGACY = "legacy"
    DUAL = "dual"
    SHADOW = "shadow"
    SQLITE = "sqlite"


class OnSecondaryFailure(enum.StrEnum):
    RAISE = "raise"  # roll the primary's write back and raise SecondaryWriteError
    QUEUE = "queue"  # keep the primary's write, queue the secondary's for drain()


class SettingsError(PychatDbError):
    """A switch-over setting has a value that means nothing (names the variable and the allowed values)."""


class SecondaryWriteError(PychatDbError):
    """A write reached the primary but failed on the secondary (with `raise`: the primary's write was undone)."""


class OutOfSync(PychatDbError):
    """The two stores do not hold the same data, so dual writes would start from diverged sides."""


ENV_VARS = {
    "phase": "PYCHAT_DB_MODE",
    "db_path": "PYCHAT_DB_PATH",
    "legacy_dir": "PYCHAT_DB_LEGACY_DIR",
    "on_secondary_failure": "PYCHAT_DB_ON_SECONDARY_FAILURE",
    "shadow_sample_rate": "PYCHAT_DB_SHADOW_SAMPLE_RATE",
    "shadow_log": "PYCHAT_DB_SHADOW_LOG",
    "legacy_autosave": "PYCHAT_DB_LEGACY_AUTOSAVE",
}


def _choice(kind: type[enum.StrEnum], name: str, value: object) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        allowed = "|".join(member.value for member in kind)
        raise SettingsError(f"{name}={value!r}: unknown value; use one of {allowed}") from None


def _rate(name: str, value: object) -> float:
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise SettingsError(f"{name}={value!r}: expected a number from 0 (never compare) to 1 (compare every read)")
    return rate


def _flag(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"", "0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={value!r}: expected 1 or 0")


@dataclass(frozen=True, slots=True)
class Settings:
    """The switch-over configuration; `Settings.from_env()` reads it from the environment (see ENV_VARS).

    phase: `legacy|dual|shadow|sqlite` (default sqlite, the end state); db_path: the SQLite file;
    legacy_dir: the legacy store's export directory; on_secondary_failure: `raise|queue`;
    shadow_sample_rate: share of reads compared in the shadow phase; shadow_log: file the
    mismatch JSON lines are appended to (None: stderr); legacy_autosave: save the legacy
    store after every committed write (else on close).
    """

    phase: Phase = Phase.SQLITE
    db_path: str = "chat.db"
    legacy_dir: str = "legacy_export"
    on_secondary_failure: OnSecondaryFailure = OnSecondaryFailure.RAISE
    shadow_sample_rate: float = 1.0
    shadow_log: str | None = None
    legacy_autosave: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", _choice(Phase, "phase", self.phase))
        object.__setattr__(
            self,
            "on_secondary_failure",
            _choice(OnSecondaryFailure, "on_secondary_failure", self.on_secondary_failure),
        )
        object.__setattr__(self, "shadow_sample_rate", _rate("shadow_sample_rate", self.shadow_sample_rate))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from `environ` (default `os.environ`); unset variables keep the defaults.

        Raises SettingsError naming the variable for a value that means nothing.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if (mode := env.get(ENV_VARS["phase"])) is not None and mode.strip():
            values["phase"] = _choice(Phase, ENV_VARS["phase"], mode)
        if (policy := env.get(ENV_VARS["on_secondary_failure"])) is not None and policy.strip():
            values["on_secondary_failure"] = _choice(OnSecondaryFailure, ENV_VARS["on_secondary_failure"], policy)
        if (rate := env.get(ENV_VARS["shadow_sample_rate"])) is not None and rate.strip():
            values["shadow_sample_rate"] = _rate(ENV_VARS["shadow_sample_rate"], rate)
        for key in ("db_path", "legacy_dir", "shadow_log"):
            if value := env.get(ENV_VARS[key]):
                values[key] = value
        if (autosave := env.get(ENV_VARS["legacy_autosave"])) is not None:
            values["legacy_autosave"] = _flag(ENV_VARS["legacy_autosave"], autosave)
        return cls(**values)


@functools.cache
def startup_settings() -> Settings:
    """The settings read from the environment the first time this is called; later calls return the same.

    The phase must not change under a running app: a process reads it once, at start-up.
    """
    return Settings.from_env()


# ---------------------------------------------------------------------------------------------
# What every wiring offers


class Repositories(Protocol):
    """The app's view of storage: `Database`, `LegacyRepositories` and the switch-over wrappers all offer it."""

    @property
    def configuration(self) -> protocols.ConfigurationRepository: ...

    @property
    def threads(self) -> protocols.ThreadRepository: ...

    @property
    def messages(self) -> protocols.MessageRepository: ...

    @property
    def modes(self) -> protocols.ModeRepository: ...

    @property
    def mode_outputs(self) -> protocols.ModeOutputRepository: ...

    @property
    def tags(self) -> protocols.TagRepository: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# Dual writes


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


class DualWriteRepositories:
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
        self.on_failure: OnSecondaryFailure = _choice(OnSecondaryFailure, "on_failure", on_failure)
        self.failures: list[SecondaryFailure] = []
        self.diverged = False
        self._queue: list[list[_Write]] = []
        self._batch: list[_Write] = []
        self._depth = 0
        self._log = log
        self.configuration = _DualConfiguration(self)
        self.threads = _DualThreads(self)
        self.messages = _DualMessages(self)
        self.modes = _DualModes(self)
        self.mode_outputs = _DualModeOutputs(self)
        self.tags = _DualTags(self)

    # -- state --------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Secondary writes queued (not applied yet)."""
        return sum(len(batch) for batch in self._queue)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def _record(self, what: str, exc: BaseException, outcome: str) -> None:
        failure = SecondaryFailure(
            what, f"{type(exc).__name__}: {exc}", outcome, timestamp_to_db(dt.datetime.now(dt.UTC))
        )
        self.failures.append(failure)
        print(f"pychat_db: secondary write {outcome}: {what}: {failure.error}", file=self._log or sys.stderr)

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


class _DualPart:
    def __init__(self, dual: DualWriteRepositories) -> None:
        self._dual = dual


class _DualConfiguration(_DualPart):
    def get(self) -> Configuration | None:
        return self._dual.primary.configuration.get()

    def upsert(self, configuration: Configuration) -> Configuration:
        return self._dual.write(
            lambda: self._dual.primary.configuration.upsert(configuration),
            lambda stored: _Write(f"configuration.upsert id={stored.id}", lambda r: r.configuration.upsert(stored)),
        )

    def delete(self) -> bool:
        return self._dual.write(
            self._dual.primary.configuration.delete,
            lambda _: _Write("configuration.delete", lambda r: r.configuration.delete()),
        )


class _DualThreads(_DualPart):
    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        return self._dual.primary.threads.list(limit, before)

    def get(self, id: int) -> Thread:
        return self._dual.primary.threads.get(id)

    def create(self, thread: Thread) -> Thread:
        return self._dual.write(
            lambda: self._dual.primary.threads.create(thread),
            lambda stored: _Write(f"threads.create id={stored.id}", lambda r: r.threads.create(stored)),
        )

    def update(self, thread: Thread) -> Thread:
        return self._dual.write(
            lambda: self._dual.primary.threads.update(thread),
            lambda stored: _Write(f"threads.update id={stored.id}", lambda r: r.threads.update(stored)),
        )

    def delete(self, id: int) -> None:
        self._dual.write(
            lambda: self._dual.primary.threads.delete(id),
            lambda _: _Write(f"threads.delete id={id}", lambda r: r.threads.delete(id)),
        )


class _DualMessages(_DualPart):
    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        return self._dual.primary.messages.list(thread_id, limit, after)

    def list_before(
        self, thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        return self._dual.primary.messages.list_before(thread_id, limit, before)

    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        return self._dual.primary.messages.list_by_tag(tag_id)

    def get(self, id: int) -> Message:
        return self._dual.primary.messages.get(id)

    def create(self, message: Message) -> Message:
        return self._dual.write(
            lambda: self._dual.primary.messages.create(message),
            lambda stored: _Write(f"messages.create id={stored.id}", lambda r: r.messages.create(stored)),
        )

    def update(self, message: Message) -> Message:
        return self._dual.write(
            lambda: self._dual.primary.messages.update(message),
            lambda stored: _Write(f"messages.update id={stored.id}", lambda r: r.messages.update(stored)),
        )

    def delete(self, id: int) -> None:
        self._dual.write(
            lambda: self._dual.primary.messages.delete(id),
            lambda _: _Write(f"messages.delete id={id}", lambda r: r.messages.delete(id)),
        )


def _create_modes(modes: Iterable[Mode]) -> Callable[[Repositories], object]:
    def apply(r: Repositories) -> object:
        return [r.modes.create(mode) for mode in modes]

    return apply


class _DualModes(_DualPart):
    def list(self) -> builtins.list[Mode]:
        return self._dual.primary.modes.list()

    def get(self, id: int) -> Mode:
        return self._dual.primary.modes.get(id)

    def create(self, mode: Mode) -> Mode:
        return self._dual.write(
            lambda: self._dual.primary.modes.create(mode),
            lambda stored: _Write(f"modes.create id={stored.id}", lambda r: r.modes.create(stored)),
        )

    def update(self, mode: Mode) -> Mode:
        return self._dual.write(
            lambda: self._dual.primary.modes.update(mode),
            lambda stored: _Write(f"modes.update id={stored.id}", lambda r: r.modes.update(stored)),
        )

    def delete(self, id: int) -> None:
        self._dual.write(
            lambda: self._dual.primary.modes.delete(id),
            lambda _: _Write(f"modes.delete id={id}", lambda r: r.modes.delete(id)),
        )

    def seed_builtins(self) -> builtins.list[Mode]:
        # The secondary gets the primary's modes with their ids (its own seeding could number them differently).
        return self._dual.write(
            self._dual.primary.modes.seed_builtins,
            lambda seeded: _Write(f"modes.seed_builtins ({len(seeded)} modes)", _create_modes(seeded)),
        )


class _DualModeOutputs(_DualPart):
    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        return self._dual.primary.mode_outputs.list_by_thread(thread_id)

    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        return self._dual.primary.mode_outputs.list_by_mode(mode_id)

    def get(self, id: int) -> ModeOutput:
        return self._dual.primary.mode_outputs.get(id)

    def create(self, output: ModeOutput) -> ModeOutput:
        return self._dual.write(
            lambda: self._dual.primary.mode_outputs.create(output),
            lambda stored: _Write(f"mode_outputs.create id={stored.id}", lambda r: r.mode_outputs.create(stored)),
        )

    def update(self, output: ModeOutput) -> ModeOutput:
        return self._dual.write(
            lambda: self._dual.primary.mode_outputs.update(output),
            lambda stored: _Write(f"mode_outputs.update id={stored.id}", lambda r: r.mode_outputs.update(stored)),
        )

    def delete(self, id: int) -> None:
        self._dual.write(
            lambda: self._dual.primary.mode_outputs.delete(id),
            lambda _: _Write(f"mode_outputs.delete id={id}", lambda r: r.mode_outputs.delete(id)),
        )


class _DualTags(_DualPart):
    def list(self) -> builtins.list[Tag]:
        return self._dual.primary.tags.list()

    def get(self, id: int) -> Tag:
        return self._dual.primary.tags.get(id)

    def of_message(self, message_id: int) -> builtins.list[Tag]:
        return self._dual.primary.tags.of_message(message_id)

    def create(self, tag: Tag) -> Tag:
        return self._dual.write(
            lambda: self._dual.primary.tags.create(tag),
            lambda stored: _Write(f"tags.create id={stored.id}", lambda r: r.tags.create(stored)),
        )

    def update(self, tag: Tag) -> Tag:
        return self._dual.write(
            lambda: self._dual.primary.tags.update(tag),
            lambda stored: _Write(f"tags.update id={stored.id}", lambda r: r.tags.update(stored)),
        )

    def delete(self, id: int) -> None:
        self._dual.write(
            lambda: self._dual.primary.tags.delete(id),
            lambda _: _Write(f"tags.delete id={id}", lambda r: r.tags.delete(id)),
        )

    def attach(self, message_id: int, tag_id: int) -> bool:
        return self._dual.write(
            lambda: self._dual.primary.tags.attach(message_id, tag_id),
            lambda _: _Write(f"tags.attach {message_id} {tag_id}", lambda r: r.tags.attach(message_id, tag_id)),
        )

    def detach(self, message_id: int, tag_id: int) -> bool:
        return self._dual.write(
            lambda: self._dual.primary.tags.detach(message_id, tag_id),
            lambda _: _Write(f"tags.detach {message_id} {tag_id}", lambda r: r.tags.detach(message_id, tag_id)),
        )

    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        wanted = list(tag_ids)
        return self._dual.write(
            lambda: self._dual.primary.tags.set_tags(message_id, wanted),
            lambda tags: _Write(
                f"tags.set_tags {message_id}",
                lambda r: r.tags.set_tags(message_id, [t.id for t in tags if t.id is not None]),
            ),
        )


# ---------------------------------------------------------------------------------------------
# Shadow reads

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


class _Outcome:
    """What one side answered: a value, or NotFound, or another error."""

    __slots__ = ("error", "value")

    def __init__(self, value: object = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error


def _outcome(call: Callable[[], object]) -> _Outcome:
    try:
        return _Outcome(call())
    except NotFound as exc:
        return _Outcome(error=exc)


class ShadowReadRepositories:
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
        self.primary = primary
        self.shadow = shadow
        self.reporter = reporter if reporter is not None else MismatchReporter()
        self.sample_rate = _rate("sample_rate", sample_rate)
        self._random = random.Random(seed)
        self._depth = 0
        self.configuration = _ShadowConfiguration(self)
        self.threads = _ShadowThreads(self)
        self.messages = _ShadowMessages(self)
        self.modes = _ShadowModes(self)
        self.mode_outputs = _ShadowModeOutputs(self)
        self.tags = _ShadowTags(self)

    def read(self, name: str, entity: str, call: Callable[[Repositories], T]) -> T:
        """Answer `call(primary)`; for a sampled read also run `call(shadow)` and report the differences."""
        if (
            self._depth
            or self.sample_rate <= 0.0
            or (self.sample_rate < 1.0 and self._random.random() >= self.sample_rate)
        ):
            self.reporter.skipped += 1
            return call(self.primary)
        mine = _outcome(lambda: call(self.primary))
        try:
            theirs = _outcome(lambda: call(self.shadow))
        except Exception as exc:  # the shadow must never break a read
            theirs = _Outcome(error=exc)
        self.reporter.compared += 1
        self._compare(name, entity, mine, theirs)
        if mine.error is not None:
            raise mine.error
        return mine.value  # type: ignore[return-value]

    def _compare(self, name: str, entity: str, mine: _Outcome, theirs: _Outcome) -> None:
        report = functools.partial(self.reporter.report, name)
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
            self._compare_lists(name, entity, a, b)
        elif a is None or b is None:
            if (a is None) != (b is None):
                id = getattr(a if a is not None else b, "id", None)
                report(
                    entity, id, "presence", "absent" if a is None else "present", "absent" if b is None else "present"
                )
        elif a != b:
            self._compare_objects(name, a, b)

    def _compare_lists(self, name: str, entity: str, a: builtins.list[Any], b: builtins.list[Any]) -> None:
        report = functools.partial(self.reporter.report, name)
        mine = {item.id: item for item in a}
        theirs = {item.id: item for item in b}
        for id in mine.keys() - theirs.keys():
            report(_ENTITY.get(type(mine[id]), entity), id, "presence", "present", "absent")
        for id in theirs.keys() - mine.keys():
            report(_ENTITY.get(type(theirs[id]), entity), id, "presence", "absent", "present")
        for id in mine.keys() & theirs.keys():
            if mine[id] != theirs[id]:
                self._compare_objects(name, mine[id], theirs[id])
        order_a = [item.id for item in a if item.id in theirs]
        order_b = [item.id for item in b if item.id in mine]
        if order_a != order_b:
            report(entity, None, "order", order_a, order_b)

    def _compare_objects(self, name: str, a: Any, b: Any) -> None:
        entity = _ENTITY.get(type(a), type(a).__name__)
        for f in dataclasses.fields(a):
            left, right = getattr(a, f.name), getattr(b, f.name, _ABSENT)
            if left != right:
                self.reporter.report(
                    name,
                    entity,
                    a.id,
                    f.name,
                    _json_value(entity, f.name, left),
                    _json_value(entity, f.name, right) if right is not _ABSENT else "absent",
                )

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


class _ShadowPart:
    def __init__(self, shadow: ShadowReadRepositories) -> None:
        self._s = shadow

    @property
    def _primary(self) -> Repositories:
        return self._s.primary


class _ShadowConfiguration(_ShadowPart):
    def get(self) -> Configuration | None:
        return self._s.read("configuration.get", "configuration", lambda r: r.configuration.get())

    def upsert(self, configuration: Configuration) -> Configuration:
        return self._primary.configuration.upsert(configuration)

    def delete(self) -> bool:
        return self._primary.configuration.delete()


class _ShadowThreads(_ShadowPart):
    def list(self, limit: int | None = None, before: Thread | Cursor | None = None) -> builtins.list[Thread]:
        return self._s.read("threads.list", "threads", lambda r: r.threads.list(limit, before))

    def get(self, id: int) -> Thread:
        return self._s.read("threads.get", "threads", lambda r: r.threads.get(id))

    def create(self, thread: Thread) -> Thread:
        return self._primary.threads.create(thread)

    def update(self, thread: Thread) -> Thread:
        return self._primary.threads.update(thread)

    def delete(self, id: int) -> None:
        self._primary.threads.delete(id)


class _ShadowMessages(_ShadowPart):
    def list(
        self, thread_id: int, limit: int | None = None, after: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        return self._s.read("messages.list", "messages", lambda r: r.messages.list(thread_id, limit, after))

    def list_before(
        self, thread_id: int, limit: int | None = None, before: Message | Cursor | None = None
    ) -> builtins.list[Message]:
        return self._s.read(
            "messages.list_before", "messages", lambda r: r.messages.list_before(thread_id, limit, before)
        )

    def list_by_tag(self, tag_id: int) -> builtins.list[Message]:
        return self._s.read("messages.list_by_tag", "messages", lambda r: r.messages.list_by_tag(tag_id))

    def get(self, id: int) -> Message:
        return self._s.read("messages.get", "messages", lambda r: r.messages.get(id))

    def create(self, message: Message) -> Message:
        return self._primary.messages.create(message)

    def update(self, message: Message) -> Message:
        return self._primary.messages.update(message)

    def delete(self, id: int) -> None:
        self._primary.messages.delete(id)


class _ShadowModes(_ShadowPart):
    def list(self) -> builtins.list[Mode]:
        return self._s.read("modes.list", "modes", lambda r: r.modes.list())

    def get(self, id: int) -> Mode:
        return self._s.read("modes.get", "modes", lambda r: r.modes.get(id))

    def create(self, mode: Mode) -> Mode:
        return self._primary.modes.create(mode)

    def update(self, mode: Mode) -> Mode:
        return self._primary.modes.update(mode)

    def delete(self, id: int) -> None:
        self._primary.modes.delete(id)

    def seed_builtins(self) -> builtins.list[Mode]:
        return self._primary.modes.seed_builtins()


class _ShadowModeOutputs(_ShadowPart):
    def list_by_thread(self, thread_id: int) -> builtins.list[ModeOutput]:
        return self._s.read(
            "mode_outputs.list_by_thread", "mode_outputs", lambda r: r.mode_outputs.list_by_thread(thread_id)
        )

    def list_by_mode(self, mode_id: int) -> builtins.list[ModeOutput]:
        return self._s.read("mode_outputs.list_by_mode", "mode_outputs", lambda r: r.mode_outputs.list_by_mode(mode_id))

    def get(self, id: int) -> ModeOutput:
        return self._s.read("mode_outputs.get", "mode_outputs", lambda r: r.mode_outputs.get(id))

    def create(self, output: ModeOutput) -> ModeOutput:
        return self._primary.mode_outputs.create(output)

    def update(self, output: ModeOutput) -> ModeOutput:
        return self._primary.mode_outputs.update(output)

    def delete(self, id: int) -> None:
        self._primary.mode_outputs.delete(id)


class _ShadowTags(_ShadowPart):
    def list(self) -> builtins.list[Tag]:
        return self._s.read("tags.list", "tags", lambda r: r.tags.list())

    def get(self, id: int) -> Tag:
        return self._s.read("tags.get", "tags", lambda r: r.tags.get(id))

    def of_message(self, message_id: int) -> builtins.list[Tag]:
        return self._s.read("tags.of_message", "tags", lambda r: r.tags.of_message(message_id))

    def create(self, tag: Tag) -> Tag:
        return self._primary.tags.create(tag)

    def update(self, tag: Tag) -> Tag:
        return self._primary.tags.update(tag)

    def delete(self, id: int) -> None:
        self._primary.tags.delete(id)

    def attach(self, message_id: int, tag_id: int) -> bool:
        return self._primary.tags.attach(message_id, tag_id)

    def detach(self, message_id: int, tag_id: int) -> bool:
        return self._primary.tags.detach(message_id, tag_id)

    def set_tags(self, message_id: int, tag_ids: Iterable[int]) -> builtins.list[Tag]:
        return self._primary.tags.set_tags(message_id, tag_ids)


# ---------------------------------------------------------------------------------------------
# Wiring a phase


def _sqlite_counts(db: Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in COLLECTIONS:
        (count,) = db.connection.execute(f"SELECT count(*) FROM {c.table}").fetchall()[0]
        assert isinstance(count, int)
        counts[c.name] = count
    return counts


def check_in_sync(legacy: LegacyRepositories, db: Database, legacy_dir: str) -> None:
    """Refuse to start dual writes over stores that differ in row counts (cheap; tools.verify proves content).

    Raises OutOfSync naming the first collection that differs and the commands that fix it.
    """
    counts = _sqlite_counts(db)
    for collection in COLLECTIONS:
        mine, theirs = legacy.store.count(collection), counts[collection.name]
        if mine != theirs:
            raise OutOfSync(
                f"{collection.name}: {mine} in the legacy store {legacy_dir}, {theirs} in {db.path}; "
                f"populate SQLite first: python -m tools.import {legacy_dir} --db {db.path} --force, "
                f"then python -m tools.verify {legacy_dir} --db {db.path}"
            )


def open_repositories(settings: Settings | None = None, *, log: IO[str] | None = None) -> Repositories:
    """The repositories wired for `settings.phase` (default: `startup_settings()`, the environment at start-up).

    legacy: the legacy store (built-in modes seeded when it has none, as `Database` does);
    sqlite: `Database(db_path)`; dual and shadow: both, after `check_in_sync` (OutOfSync
    when SQLite was not populated from the legacy store). `log` gets secondary-failure
    lines (default stderr); shadow mismatches go to `settings.shadow_log` (default stderr).
    """
    settings = settings if settings is not None else startup_settings()
    if settings.phase is Phase.SQLITE:
        return Database(settings.db_path)
    legacy = LegacyRepositories.open(settings.legacy_dir, autosave=settings.legacy_autosave)
    if settings.phase is Phase.LEGACY:
        legacy.modes.seed_builtins()
        return legacy
    try:
        db = Database(settings.db_path, seed_modes=False)
    except BaseException:
        legacy.close()
        raise
    try:
        check_in_sync(legacy, db, settings.legacy_dir)
    except BaseException:
        db.close()
        raise
    dual = DualWriteRepositories(legacy, db, on_failure=settings.on_secondary_failure, log=log)
    dual.modes.seed_builtins()
    if settings.phase is Phase.DUAL:
        return dual
    reporter = MismatchReporter(path=settings.shadow_log)
    return ShadowReadRepositories(dual, db, reporter, sample_rate=settings.shadow_sample_rate)


if TYPE_CHECKING:  # mypy checks that every wiring offers the Repositories protocol; never runs

    def _conforms(db: Database, legacy: LegacyRepositories) -> None:
        _db: Repositories = db
        _legacy: Repositories = legacy
        _dual: Repositories = DualWriteRepositories(legacy, db)
        _shadow: Repositories = ShadowReadRepositories(_dual, db)
