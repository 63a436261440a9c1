"""The switch-over's forwarders come from the method description (pychat_db.repositories.methods).

* every method of every repository protocol is described, and the generated dual and
  shadow forwarders have exactly the protocol's methods, with its signatures;
* a method added to a protocol is refused until it is described, then forwarded with no
  edit in pychat_db/switchover/;
* per described method, what the dual and shadow forwarders do with it, on two stores
  that record every call (the real stores are covered by test_switchover.py and
  test_dual_stateful.py).
"""

from __future__ import annotations

import asyncio
import inspect
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from pychat_db.database import Database
from pychat_db.legacy import LegacyRepositories
from pychat_db.repositories import protocols
from pychat_db.repositories.methods import (
    Kind,
    Method,
    Replay,
    UndescribedMethod,
    describe,
    describe_all,
    writes,
)
from pychat_db.repositories.protocols import Repositories, ThreadRepository
from pychat_db.switchover import DualWriteRepositories, MismatchReporter, ShadowReadRepositories
from pychat_db.switchover.dual import forward_dual
from pychat_db.switchover.forwarding import forwarder_classes
from pychat_db.switchover.shadow import forward_shadow

TABLE = describe_all(Repositories)
METHODS = [method for repository in TABLE for method in repository.methods]
PROTOCOLS = {
    "configuration": protocols.ConfigurationRepository,
    "threads": protocols.ThreadRepository,
    "messages": protocols.MessageRepository,
    "modes": protocols.ModeRepository,
    "mode_outputs": protocols.ModeOutputRepository,
    "tags": protocols.TagRepository,
}


def public_methods(cls: type) -> set[str]:
    return {name for name, value in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


# --- the description covers every protocol method ---------------------------------------------


def test_every_repository_of_the_protocol_is_described() -> None:
    assert {r.attribute: r.protocol for r in TABLE} == PROTOCOLS


@pytest.mark.parametrize("attribute", PROTOCOLS)
def test_every_protocol_method_is_described(attribute: str) -> None:
    (repository,) = [r for r in TABLE if r.attribute == attribute]
    assert {m.name for m in repository.methods} == public_methods(PROTOCOLS[attribute])
    for method in repository.methods:
        assert (method.kind is Kind.WRITE) == (method.replay is not None), method.qualname


@pytest.mark.parametrize("wrapper", ["dual", "shadow"])
@pytest.mark.parametrize("attribute", PROTOCOLS)
def test_the_forwarders_have_the_protocols_methods_and_signatures(wrapper: str, attribute: str) -> None:
    side = Side()
    repos = DualWriteRepositories(side, side) if wrapper == "dual" else ShadowReadRepositories(side, side)
    forwarder = type(getattr(repos, attribute))
    protocol = PROTOCOLS[attribute]
    assert public_methods(forwarder) == public_methods(protocol)
    for name in public_methods(protocol):
        assert inspect.signature(getattr(forwarder, name)) == inspect.signature(getattr(protocol, name)), name
        assert getattr(forwarder, name).__doc__ == getattr(protocol, name).__doc__


# --- a method added to a protocol -------------------------------------------------------------


class ArchivingThreads(ThreadRepository, Protocol):
    def archive(self, id: int) -> bool: ...


class DescribedArchivingThreads(ThreadRepository, Protocol):
    @writes("id", replay=Replay.ARGUMENTS)
    def archive(self, id: int) -> bool:
        """Hide the thread from listings; False when it already was."""
        ...


def test_a_method_added_to_a_protocol_is_refused_until_described() -> None:
    expected = r"^ArchivingThreads\.archive: not described; mark it @reads or @writes\(<id arguments>, replay=\.\.\.\)"
    with pytest.raises(UndescribedMethod, match=expected):
        describe(ArchivingThreads, "threads")


def test_a_write_naming_an_argument_it_does_not_have_is_refused() -> None:
    class Misnamed(ThreadRepository, Protocol):
        @writes("thread_id", replay=Replay.ARGUMENTS)
        def archive(self, id: int) -> bool: ...

    with pytest.raises(UndescribedMethod, match=r"^Misnamed\.archive: @writes names 'thread_id', which is not one"):
        describe(Misnamed, "threads")


def test_a_described_new_method_is_forwarded_with_no_edit_in_the_switch_over() -> None:
    repository = describe(DescribedArchivingThreads, "threads")
    assert [m.name for m in repository.methods][-1] == "archive"
    primary, secondary = Side(), Side(fail=True)
    dual = DualWriteRepositories(primary, secondary, on_failure="queue", log=io.StringIO())
    dual.threads = forwarder_classes("Dual", forward_dual, (repository,))["threads"](dual)
    assert dual.threads.archive(5) is True  # type: ignore[attr-defined]
    assert primary.calls == [("threads", "archive", (5,), {})]
    assert [f.what for f in dual.failures] == ["threads.archive id=5"] and dual.pending == 1
    secondary.fail = False
    assert dual.drain() == 0
    assert secondary.calls == [("threads", "archive", (5,), {})] * 2  # refused once, then replayed
    shadow = ShadowReadRepositories(primary, secondary)
    shadow.threads = forwarder_classes("Shadow", forward_shadow, (repository,))["threads"](shadow)
    assert inspect.signature(type(shadow.threads).archive) == inspect.signature(DescribedArchivingThreads.archive)
    recorded = len(secondary.calls)
    assert shadow.threads.archive(6) is True  # type: ignore[attr-defined]
    assert primary.calls[-1] == ("threads", "archive", (6,), {}) and len(secondary.calls) == recorded


# --- per described method: what the forwarders do ---------------------------------------------


@dataclass(frozen=True)
class Stored:
    id: int


CREATED = [Stored(21), Stored(22)]


def answer(method: str) -> Any:
    """What a recording side returns: a stored object, several, a flag, or a read's answer."""
    (described,) = [m for m in METHODS if m.name == method.split(".")[1] and m.repository == method.split(".")[0]]
    if described.replay is Replay.RESULT:
        return Stored(11)
    if described.replay is Replay.CREATE_EACH:
        return CREATED
    if described.kind is Kind.WRITE:
        return True
    return ("read", method)


class Side:
    """A store that records each repository call `(repository, method, args, kwargs)`; fails them all with fail=True."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail = fail
        self.transactions = 0
        for repository in PROTOCOLS:
            setattr(self, repository, _Recording(self, repository))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.transactions += 1
        yield

    def close(self) -> None:
        pass


class _Recording:
    def __init__(self, side: Side, repository: str) -> None:
        self._side, self._repository = side, repository

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self._side.calls.append((self._repository, method, args, kwargs))
            if self._side.fail:
                raise RuntimeError("refused")
            return answer(f"{self._repository}.{method}") if method != "archive" else True

        return call


ARGUMENTS = {"id": 7, "message_id": 3, "tag_id": 9}


def arguments(method: Method) -> tuple[Any, ...]:
    """Arguments for a call of `method`: ids by name, a one-shot iterator for an iterable, an object otherwise."""
    values: list[Any] = []
    for name, parameter in list(inspect.signature(method.function).parameters.items())[1:]:
        if parameter.default is not inspect.Parameter.empty:
            break
        if name in ARGUMENTS:
            values.append(ARGUMENTS[name])
        elif name == "tag_ids":
            values.append(iter([9, 4]))
        else:
            values.append(Stored(0))
    return tuple(values)


def read_once(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple([9, 4] if isinstance(a, Iterator) else a for a in args)


# The labels the hand-written forwarders logged before the description existed, kept exactly.
LABELS = {
    "configuration.upsert": "configuration.upsert id=11",
    "configuration.delete": "configuration.delete",
    "modes.seed_builtins": "modes.seed_builtins (2 modes)",
    "tags.attach": "tags.attach 3 9",
    "tags.detach": "tags.detach 3 9",
    "tags.set_tags": "tags.set_tags 3",
} | {
    f"{repository}.{name}": f"{repository}.{name} id={11 if name != 'delete' else 7}"
    for repository in ("threads", "messages", "modes", "mode_outputs", "tags")
    for name in ("create", "update", "delete")
}

WRITES = [m for m in METHODS if m.kind is Kind.WRITE]
READS = [m for m in METHODS if m.kind is Kind.READ]


def test_the_labels_cover_every_write() -> None:
    assert sorted(LABELS) == sorted(m.qualname for m in WRITES)


@pytest.mark.parametrize("method", READS, ids=lambda m: m.qualname)
def test_dual_reads_ask_the_primary_only(method: Method) -> None:
    primary, secondary = Side(), Side()
    dual = DualWriteRepositories(primary, secondary)
    args = arguments(method)
    assert getattr(getattr(dual, method.repository), method.name)(*args) == ("read", method.qualname)
    assert primary.calls == [(method.repository, method.name, args, {})]
    assert secondary.calls == [] and primary.transactions == secondary.transactions == 0


@pytest.mark.parametrize("method", WRITES, ids=lambda m: m.qualname)
def test_dual_writes_reach_the_secondary_with_what_the_primary_stored(method: Method) -> None:
    primary, secondary = Side(), Side()
    dual = DualWriteRepositories(primary, secondary)
    result = getattr(getattr(dual, method.repository), method.name)(*arguments(method))
    assert result == answer(method.qualname)
    args = read_once(arguments(method))
    assert primary.calls == [(method.repository, method.name, args, {})]
    expected = {
        Replay.RESULT: [(method.repository, method.name, (Stored(11),), {})],
        Replay.ARGUMENTS: [(method.repository, method.name, args, {})],
        Replay.CREATE_EACH: [(method.repository, "create", (stored,), {}) for stored in CREATED],
    }
    assert method.replay is not None
    assert secondary.calls == expected[method.replay]
    assert (primary.transactions, secondary.transactions) == (1, 1) and dual.failures == []


@pytest.mark.parametrize("method", WRITES, ids=lambda m: m.qualname)
def test_a_failed_secondary_write_is_named_by_its_label(method: Method) -> None:
    primary, secondary = Side(), Side(fail=True)
    dual = DualWriteRepositories(primary, secondary, on_failure="queue", log=io.StringIO())
    getattr(getattr(dual, method.repository), method.name)(*arguments(method))
    assert [(f.what, f.outcome) for f in dual.failures] == [(LABELS[method.qualname], "queued")]
    assert dual.pending == 1


@pytest.mark.parametrize("method", READS, ids=lambda m: m.qualname)
def test_shadow_reads_ask_both_and_compare(method: Method) -> None:
    primary, shadow_side = Side(), Side()
    shadow = ShadowReadRepositories(primary, shadow_side, MismatchReporter(stream=io.StringIO()))
    args = arguments(method)
    assert getattr(getattr(shadow, method.repository), method.name)(*args) == ("read", method.qualname)
    assert primary.calls == shadow_side.calls == [(method.repository, method.name, args, {})]
    assert (shadow.reporter.compared, shadow.reporter.mismatches) == (1, 0)


@pytest.mark.parametrize("method", READS, ids=lambda m: m.qualname)
def test_a_failing_shadow_read_is_reported_under_the_reads_name(method: Method) -> None:
    out = io.StringIO()
    shadow = ShadowReadRepositories(Side(), Side(fail=True), MismatchReporter(stream=out))
    getattr(getattr(shadow, method.repository), method.name)(*arguments(method))
    assert out.getvalue().count("\n") == 1
    assert f'"entity": "{method.repository}", "id": null, "field": "error"' in out.getvalue()
    assert f'"read": "{method.qualname}"' in out.getvalue()


@pytest.mark.parametrize("method", WRITES, ids=lambda m: m.qualname)
def test_shadow_writes_go_to_the_primary_only(method: Method) -> None:
    primary, shadow_side = Side(), Side()
    shadow = ShadowReadRepositories(primary, shadow_side)
    args = arguments(method)
    assert getattr(getattr(shadow, method.repository), method.name)(*args) == answer(method.qualname)
    assert primary.calls == [(method.repository, method.name, args, {})]
    assert shadow_side.calls == [] and shadow.reporter.compared == 0


@pytest.mark.parametrize(
    ("write", "called", "label"),
    [
        (
            lambda d: d.tags.set_tags(message_id=3, tag_ids=(i for i in (4, 9))),
            ("tags", "set_tags", (), {"message_id": 3, "tag_ids": [4, 9]}),
            "tags.set_tags 3",
        ),
        (lambda d: d.threads.delete(id=8), ("threads", "delete", (), {"id": 8}), "threads.delete id=8"),
    ],
)
def test_keyword_arguments_are_forwarded_and_named_in_the_label(write: Any, called: Any, label: str) -> None:
    primary, secondary = Side(), Side(fail=True)
    dual = DualWriteRepositories(primary, secondary, on_failure="queue", log=io.StringIO())
    write(dual)
    assert primary.calls == secondary.calls == [called]  # an iterable was read once, the same list for both
    assert [f.what for f in dual.failures] == [label]
    secondary.fail = False
    assert dual.drain() == 0
    assert secondary.calls == [called, called]


@pytest.mark.parametrize("attribute", PROTOCOLS)
def test_both_stores_implement_every_described_method(attribute: str, tmp_path: Path) -> None:
    (repository,) = [r for r in TABLE if r.attribute == attribute]
    legacy = LegacyRepositories.open(str(tmp_path / "legacy"))
    with Database(":memory:") as db:
        for store in (db, legacy):
            implementation = type(getattr(store, attribute))
            for method in repository.methods:
                assert inspect.signature(getattr(implementation, method.name)) == inspect.signature(method.function)


# --- the same description serves async forwarders (issue 17) ----------------------------------


class AsyncSide(Side):
    """The recording side with async repository methods."""

    def __init__(self) -> None:
        super().__init__()
        for repository in PROTOCOLS:
            setattr(self, repository, _AsyncRecording(self, repository))


class _AsyncRecording(_Recording):
    def __getattr__(self, method: str) -> Any:
        call = super().__getattr__(method)

        async def awaitable(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return call(*args, **kwargs)

        return awaitable


def forward_async_dual(method: Method) -> Any:
    """A minimal async dual forwarder built only from the description: the primary, then the replay calls."""

    async def forward(part: Any, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = method.materialize(args, kwargs)
        primary, secondary = part.owner
        result = await getattr(getattr(primary, method.repository), method.name)(*args, **kwargs)
        if method.kind is Kind.WRITE:
            for call in method.replay_calls(args, kwargs, result):
                await call.on(getattr(secondary, method.repository))
        return result

    return forward


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.qualname)
def test_the_description_drives_async_forwarders_too(method: Method) -> None:
    primary, secondary = AsyncSide(), AsyncSide()
    parts = forwarder_classes("AsyncDual", forward_async_dual)
    forwarder = parts[method.repository]((primary, secondary))
    assert inspect.iscoroutinefunction(getattr(type(forwarder), method.name))
    result = asyncio.run(getattr(forwarder, method.name)(*arguments(method)))
    assert result == answer(method.qualname)
    sync_primary, sync_secondary = Side(), Side()
    dual = DualWriteRepositories(sync_primary, sync_secondary)
    getattr(getattr(dual, method.repository), method.name)(*arguments(method))
    assert (primary.calls, secondary.calls) == (sync_primary.calls, sync_secondary.calls)
