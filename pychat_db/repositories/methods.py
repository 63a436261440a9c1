"""One description of every repository method: read or write, the ids it touches, how to repeat it.

The protocols (`pychat_db.repositories.protocols`) mark each method where it is
declared, `@reads` or `@writes(...)`, the way sqlc reads a query's `-- name: X :one`
line. `describe_all(Repositories)` turns the marks into a table: one `Repository` per
attribute of the `Repositories` protocol (`threads`, `messages`, ...), one `Method` per
method. Code that treats every method alike (the switch-over's dual-write and
shadow-read forwarders) is derived from that table, so a new method needs its mark and
its implementations, nothing else; a method without a mark is refused by `describe`
(`UndescribedMethod`), so none is forwarded by accident.

A write is repeated on another store (`Method.replay`) so that both end in the same
state with the same ids:

* `Replay.RESULT`: the same method given what it returned, the object as stored with
  the ids the first store assigned (`create`, `update`, `upsert`);
* `Replay.ARGUMENTS`: the same call; its arguments decide the outcome (`delete(id)`,
  `attach(message_id, tag_id)`, `set_tags(message_id, tag_ids)`);
* `Replay.CREATE_EACH`: `create` for each object it returned (`seed_builtins`: the
  other store could number its own seeding differently).

Everything here is data and pure functions (no I/O, no store): a `Call` names the
method and arguments, and `call.on(repository)` returns what the repository's method
returns, a value or, on an async repository, an awaitable. Sync and async forwarders
share the table, the labels and the replays.
"""

from __future__ import annotations

import collections.abc
import enum
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from pychat_db.errors import PychatDbError

__all__ = [
    "RESULT_ID",
    "Call",
    "Kind",
    "Method",
    "Replay",
    "Repository",
    "UndescribedMethod",
    "describe",
    "describe_all",
    "reads",
    "writes",
]

F = TypeVar("F", bound=Callable[..., Any])

RESULT_ID = "result.id"  # in `writes(...)`: the id of the object the write returned (assigned by the store)
_MARK = "__pychat_db_method__"
_NO_KEYWORDS: Mapping[str, Any] = MappingProxyType({})


class Kind(enum.StrEnum):
    READ = "read"  # changes nothing
    WRITE = "write"  # changes the store; `Method.replay` repeats it elsewhere


class Replay(enum.StrEnum):
    ARGUMENTS = "arguments"
    RESULT = "result"
    CREATE_EACH = "create each"


class UndescribedMethod(PychatDbError, TypeError):
    """A repository protocol method carries no `@reads`/`@writes` mark, or a mark that does not fit it."""


@dataclass(frozen=True, slots=True)
class _Mark:
    kind: Kind
    ids: tuple[str, ...] = ()
    replay: Replay | None = None


def reads(method: F) -> F:
    """Mark a protocol method as a read: it changes nothing."""
    setattr(method, _MARK, _Mark(Kind.READ))
    return method


def writes(*ids: str, replay: Replay) -> Callable[[F], F]:
    """Mark a protocol method as a write touching `ids` (argument names, or RESULT_ID), repeated by `replay`."""

    def mark(method: F) -> F:
        setattr(method, _MARK, _Mark(Kind.WRITE, ids, replay))
        return method

    return mark


class Call(NamedTuple):
    """One call to make on a repository: `getattr(repository, method)(*args, **kwargs)`."""

    method: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]

    def on(self, repository: object) -> Any:
        """Make the call; an async repository's answer is an awaitable."""
        return getattr(repository, self.method)(*self.args, **self.kwargs)


@dataclass(frozen=True, slots=True)
class Method:
    """One described method of one repository (see the module doc)."""

    repository: str  # the attribute of `Repositories` it belongs to: "threads"
    name: str  # "create"
    kind: Kind
    ids: tuple[str, ...]
    replay: Replay | None
    function: Callable[..., Any]  # the protocol's declaration (signature, docstring)
    parameters: tuple[str, ...]  # argument names after self, in order
    iterables: tuple[int, ...]  # positions of `Iterable[...]` arguments: read once, into lists
    qualname: str  # "threads.create"

    def materialize(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments with every iterable read into a list, so they can be passed twice."""
        if not self.iterables:
            return args, kwargs
        args = tuple(list(a) if i in self.iterables else a for i, a in enumerate(args))
        names = {self.parameters[i] for i in self.iterables}
        kwargs = {k: list(v) if k in names else v for k, v in kwargs.items()}
        return args, kwargs

    def argument(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """The value passed for parameter `name` (its default when not passed)."""
        position = self.parameters.index(name)
        if position < len(args):
            return args[position]
        if name in kwargs:
            return kwargs[name]
        return inspect.signature(self.function).parameters[name].default

    def label(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], result: Any) -> str:
        """What a write did, for logs (ids, never values: they may be secret).

        `threads.create id=7`, `threads.delete id=7`, `tags.attach 3 9` (a link's ends),
        `modes.seed_builtins (5 modes)`, `configuration.delete`.
        """
        if self.ids == (RESULT_ID,):  # the common case, made short: create, update, upsert
            return f"{self.qualname} id={result.id}"
        parts = [self.qualname]
        for name in self.ids:
            if name == RESULT_ID:
                parts.append(f"id={result.id}")
            else:
                value = self.argument(name, args, kwargs)
                parts.append(f"id={value}" if name == "id" else str(value))
        if self.replay is Replay.CREATE_EACH:
            parts.append(f"({len(result)} {self.repository})")
        return " ".join(parts)

    def replay_calls(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], result: Any) -> tuple[Call, ...]:
        """The calls that repeat this write on another store of the same repository (see the module doc)."""
        if self.replay is Replay.RESULT:
            return (Call(self.name, (result,), _NO_KEYWORDS),)
        if self.replay is Replay.ARGUMENTS:
            return (Call(self.name, args, kwargs),)
        if self.replay is Replay.CREATE_EACH:
            return tuple(Call("create", (item,), _NO_KEYWORDS) for item in result)
        raise UndescribedMethod(f"{self.qualname}: a read has nothing to replay")


@dataclass(frozen=True, slots=True)
class Repository:
    """The described methods of one repository: `attribute` of `Repositories`, typed by `protocol`."""

    attribute: str
    protocol: type
    methods: tuple[Method, ...]


def _is_iterable(annotation: object) -> bool:
    return typing.get_origin(annotation) is collections.abc.Iterable or annotation is collections.abc.Iterable


def _members(protocol: type) -> dict[str, Callable[..., Any]]:
    """The public methods a protocol declares or inherits from other protocols, in declaration order."""
    members: dict[str, Callable[..., Any]] = {}
    for cls in reversed(protocol.__mro__):
        if cls in (object, typing.Protocol, typing.Generic):
            continue
        for name, value in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(value):
                members.pop(name, None)
                members[name] = value
    return members


def _method(attribute: str, protocol: type, name: str, function: Callable[..., Any]) -> Method:
    where = f"{protocol.__name__}.{name}"
    mark = vars(function).get(_MARK)
    if not isinstance(mark, _Mark):
        raise UndescribedMethod(
            f"{where}: not described; mark it @reads or @writes(<id arguments>, replay=...) "
            "(pychat_db.repositories.methods)"
        )
    parameters = tuple(inspect.signature(function).parameters)[1:]
    for id in mark.ids:
        if id != RESULT_ID and id not in parameters:
            raise UndescribedMethod(f"{where}: @writes names {id!r}, which is not one of its arguments")
    hints = typing.get_type_hints(function)
    iterables = tuple(i for i, p in enumerate(parameters) if _is_iterable(hints.get(p)))
    return Method(
        attribute, name, mark.kind, mark.ids, mark.replay, function, parameters, iterables, f"{attribute}.{name}"
    )


def describe(protocol: type, attribute: str) -> Repository:
    """The description of every method of `protocol`; UndescribedMethod names the first one without a mark."""
    methods = tuple(_method(attribute, protocol, name, fn) for name, fn in _members(protocol).items())
    return Repository(attribute, protocol, methods)


@functools.cache
def describe_all(repositories: type) -> tuple[Repository, ...]:
    """One `Repository` per property of the `repositories` protocol (each typed by a repository protocol)."""
    described = []
    for name, value in vars(repositories).items():
        if isinstance(value, property) and value.fget is not None:
            protocol = typing.get_type_hints(value.fget).get("return")
            if isinstance(protocol, type):
                described.append(describe(protocol, name))
    return tuple(described)
