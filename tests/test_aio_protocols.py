"""The async protocols mirror the sync ones; the async repositories and the plans have every method they declare."""

from __future__ import annotations

import inspect
import typing

import pytest

from pychat_db.aio import dual, legacy, shadow
from pychat_db.aio import protocols as async_protocols
from pychat_db.aio.repositories import ASYNC_CLASSES
from pychat_db.repositories import protocols
from pychat_db.repositories.methods import Repository, describe_all
from pychat_db.repositories.plans import PLANS

REPOSITORIES = describe_all(protocols.Repositories)


def _async_protocol(repository: Repository) -> type:
    return typing.get_type_hints(async_protocols.AsyncRepositories.__dict__[repository.attribute].fget)["return"]


def _public_methods(cls: type) -> dict[str, object]:
    return {name: value for name, value in vars(cls).items() if inspect.isfunction(value) and not name.startswith("_")}


def _parameters(function: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.default, p.annotation) for p in signature.parameters.values()]


@pytest.mark.parametrize("repository", REPOSITORIES, ids=lambda r: r.attribute)
def test_each_async_protocol_has_the_sync_methods_with_the_same_signatures(repository: Repository) -> None:
    async_protocol = _async_protocol(repository)
    methods = _public_methods(async_protocol)
    assert list(methods) == [method.name for method in repository.methods]
    for method in repository.methods:
        function = methods[method.name]
        assert inspect.iscoroutinefunction(function), method.qualname
        assert _parameters(function) == _parameters(method.function), method.qualname
        sync_return = inspect.signature(method.function).return_annotation
        assert inspect.signature(function).return_annotation == sync_return, method.qualname  # type: ignore[arg-type]


def test_the_async_repositories_protocol_names_every_repository() -> None:
    declared = [name for name, value in vars(async_protocols.AsyncRepositories).items() if isinstance(value, property)]
    assert declared == [repository.attribute for repository in REPOSITORIES]


@pytest.mark.parametrize(
    "classes",
    [ASYNC_CLASSES, legacy.ASYNC_LEGACY_CLASSES, dual.ASYNC_DUAL_CLASSES, shadow.ASYNC_SHADOW_CLASSES],
    ids=["sqlite", "legacy", "dual", "shadow"],
)
@pytest.mark.parametrize("repository", REPOSITORIES, ids=lambda r: r.attribute)
def test_each_async_repository_class_has_every_method_as_a_coroutine(
    repository: Repository, classes: dict[str, type]
) -> None:
    cls = classes[repository.attribute]
    for method in repository.methods:
        function = getattr(cls, method.name)
        assert inspect.iscoroutinefunction(function), method.qualname
        assert inspect.signature(function) == inspect.signature(method.function), method.qualname


@pytest.mark.parametrize("repository", REPOSITORIES, ids=lambda r: r.attribute)
def test_each_plan_has_the_protocol_method_arguments(repository: Repository) -> None:
    plans = PLANS[repository.attribute]
    for method in repository.methods:
        plan = inspect.getattr_static(plans, method.name)
        assert isinstance(plan, staticmethod), method.qualname
        assert inspect.isgeneratorfunction(plan.__func__), method.qualname
        expected = _parameters(method.function)[1:]  # the protocol's, after self
        assert _parameters(plan.__func__) == expected, method.qualname
