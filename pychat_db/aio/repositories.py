"""The async repositories: one class per repository, derived from the method description and the plans.

For each method that `describe_all(Repositories)` describes, the async method builds
the method's plan (`pychat_db.repositories.plans`, the one body every repository
method has) and hands it to its owner: `read(plan)` for a `@reads` method,
`write(plan)` for a `@writes` one. Nothing here is written per method: a method added
to a protocol (with its mark and its plan) is async at once, and `make codegen` declares
it on its async protocol (`pychat_db.aio.protocols`, generated from the sync one).

mypy cannot see inside classes made at import time, so `AsyncRepositoryAttributes`
declares each attribute with its async protocol type (generated from the protocols by
`python -m codegen`; the app's calls are checked against the protocols), and
tests/test_aio_protocols.py checks that each generated class has every protocol method
with the protocol's signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from pychat_db.generated import repository_attributes
from pychat_db.repositories.methods import Kind, Method
from pychat_db.repositories.plans import PLANS, Plan
from pychat_db.switchover import forwarding
from pychat_db.switchover.forwarding import Part, forwarder_classes

__all__ = ["ASYNC_CLASSES", "AsyncRepositoryAttributes", "PlanRunner", "async_repository_classes", "to_primary"]

R = TypeVar("R")


class PlanRunner(Protocol):
    """What the async repositories' owner does with a method's plan."""

    async def read(self, plan: Plan[R]) -> R: ...

    async def write(self, plan: Plan[R]) -> R: ...


class AsyncRepositoryAttributes(repository_attributes.AsyncRepositoryAttributes):
    """The repository attributes of an async owner, typed by their async protocols (generated)."""

    def _attach(self, classes: Mapping[str, type[Part[Any]]]) -> None:
        forwarding.attach(self, classes)


def _run_plan(method: Method) -> Callable[..., Any]:
    plan_of = getattr(PLANS[method.repository], method.name)
    if method.kind is Kind.READ:

        async def read(part: Part[PlanRunner], *args: Any, **kwargs: Any) -> Any:
            return await part.owner.read(plan_of(*args, **kwargs))

        return read

    async def write(part: Part[PlanRunner], *args: Any, **kwargs: Any) -> Any:
        return await part.owner.write(plan_of(*args, **kwargs))

    return write


def to_primary(method: Method) -> Callable[..., Any]:
    """The async forwarder that awaits the call on the owner's `primary` as it is (dual reads, shadow writes)."""
    call = forwarding.to_primary(method)  # the sync forwarder: the primary's awaitable

    async def forward(part: Part[Any], *args: Any, **kwargs: Any) -> Any:
        return await call(part, *args, **kwargs)

    return forward


def async_repository_classes() -> dict[str, type[Part[Any]]]:
    """For each described repository (by attribute), its async class (`AsyncThreads`, ...)."""
    return forwarder_classes("Async", _run_plan)


ASYNC_CLASSES = async_repository_classes()
