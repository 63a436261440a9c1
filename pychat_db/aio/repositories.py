"""The async repositories: one class per repository, derived from the method description and the plans.

For each method that `describe_all(Repositories)` describes, the async method builds
the method's plan (`pychat_db.repositories.plans`, the one body every repository
method has) and hands it to its owner: `read(plan)` for a `@reads` method,
`write(plan)` for a `@writes` one. Nothing here is written per method: a method added
to a protocol (with its mark and its plan) is async at once.

mypy cannot see inside classes made at import time, so `AsyncRepositoryAttributes`
declares each attribute with its async protocol type (the app's calls are checked
against the protocols), and tests/test_aio_protocols.py checks that each generated
class has every protocol method with the protocol's signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from pychat_db.aio import protocols
from pychat_db.repositories.methods import Kind, Method
from pychat_db.repositories.plans import PLANS, Plan
from pychat_db.switchover.forwarding import Part, forwarder_classes

__all__ = ["ASYNC_CLASSES", "AsyncRepositoryAttributes", "PlanRunner", "async_repository_classes", "to_primary"]

R = TypeVar("R")


class PlanRunner(Protocol):
    """What the async repositories' owner does with a method's plan."""

    async def read(self, plan: Plan[R]) -> R: ...

    async def write(self, plan: Plan[R]) -> R: ...


class AsyncRepositoryAttributes:
    """The repository attributes of an async owner, typed by their async protocols."""

    configuration: protocols.AsyncConfigurationRepository
    threads: protocols.AsyncThreadRepository
    messages: protocols.AsyncMessageRepository
    modes: protocols.AsyncModeRepository
    mode_outputs: protocols.AsyncModeOutputRepository
    tags: protocols.AsyncTagRepository

    def _attach(self, classes: Mapping[str, type[Part[Any]]]) -> None:
        for attribute, cls in classes.items():
            setattr(self, attribute, cls(self))


def _run_plan(method: Method) -> Callable[..., Any]:
    plan_of = getattr(PLANS[method.repository], method.name)
    if method.kind is Kind.READ:

        async def read(part: Part[PlanRunner], *args: Any, **kwargs: Any) -> Any:
            return await part.owner.read(plan_of(*args, **kwargs))

        return read

    async def write(part: Part[PlanRunner], *args: Any, **kwargs: Any) -> Any:
        return await part.owner.write(plan_of(*args, **kwargs))

    return write


class _HasPrimary(Protocol):
    @property
    def primary(self) -> protocols.AsyncRepositories: ...


def to_primary(method: Method) -> Callable[..., Any]:
    """The async forwarder that awaits the call on the owner's `primary` as it is (dual reads, shadow writes)."""
    attribute, name = method.repository, method.name

    async def forward(part: Part[_HasPrimary], *args: Any, **kwargs: Any) -> Any:
        return await getattr(getattr(part.owner.primary, attribute), name)(*args, **kwargs)

    return forward


def async_repository_classes() -> dict[str, type[Part[Any]]]:
    """For each described repository (by attribute), its async class (`AsyncThreads`, ...)."""
    return forwarder_classes("Async", _run_plan)


ASYNC_CLASSES = async_repository_classes()
