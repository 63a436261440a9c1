"""The repository protocols → the SQLite repository classes and the async protocols.

The sync protocols (`pychat_db/repositories/protocols.py`), with their `@reads`/`@writes` marks, are the one
description of every repository method (`pychat_db.repositories.methods.describe_all`). From it, its
signatures (as written: the module says `from __future__ import annotations`, so every annotation is its
source text) and its docstrings, this renders:

* `sqlite_repositories.py`: per protocol, `SQLite<Protocol>` whose every method runs its plan
  (`<Name>Plans.<method>` of `pychat_db.repositories.plans`) on the session;
* `async_protocols.py`: per protocol, `Async<Protocol>` with the same methods as `async def`, and
  `AsyncRepositories` (a context manager becomes an async one, every other method a coroutine).

The protocols module is read from the repository at `root` (like `schema/` and `queries/`), under a name of
its own, so `--root` checks a copy against its own protocols.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen import render
from codegen.errors import CodegenError
from pychat_db.repositories.methods import Repository, UndescribedMethod, describe_all

PROTOCOLS = "pychat_db/repositories/protocols.py"
LINE_LENGTH = 120  # ruff's (pyproject.toml): a longer `def` line is split the way ruff format splits it


@dataclass(frozen=True, slots=True)
class Protocols:
    """The loaded protocols module: its description, its `Repositories` protocol, its imports and source."""

    repositories: tuple[Repository, ...]
    root_protocol: type  # `Repositories`
    imports: dict[str, list[str]]  # {module: [names]} as `render.python_imports` takes them
    source: render.Source


def load(root: Path) -> Protocols | None:
    """The protocols of the repository at `root`; None when it has none (a bare schema/ + queries/ tree)."""
    path = root / PROTOCOLS
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_codegen_repository_protocols", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CodegenError(f"{PROTOCOLS}: cannot be imported: {type(exc).__name__}: {exc}") from exc
    root_protocol = getattr(module, "Repositories", None)
    if not isinstance(root_protocol, type):
        raise CodegenError(f"{PROTOCOLS}: no `Repositories` protocol")
    try:
        repositories = describe_all(root_protocol)
    except UndescribedMethod as exc:
        raise CodegenError(f"{PROTOCOLS}: {exc}") from exc
    return Protocols(repositories, root_protocol, _imports(path), render.Source.of(path, root))


def _imports(path: Path) -> dict[str, list[str]]:
    """The module's own imports, the candidates for the names its annotations use."""
    found: dict[str, list[str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            found.setdefault(node.module, []).extend(a.name for a in node.names if a.asname is None)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, []).append(f"import {alias.name}")
    return found


def _annotation(function: Callable[..., Any], text: object) -> str:
    if not isinstance(text, str):
        where = f"{PROTOCOLS}: {function.__qualname__}"
        raise CodegenError(f"{where}: annotations must be source text (from __future__ import annotations)")
    return text


def _literal(value: object) -> str:
    """A default value as Python source, a string in double quotes as ruff format writes it."""
    text = repr(value)
    if isinstance(value, str) and text.startswith("'") and '"' not in value:
        text = '"' + text[1:-1].replace("\\'", "'") + '"'
    return text


def _parameters(function: Callable[..., Any]) -> tuple[list[str], list[str]]:
    """The parameters as declared (self included) and the arguments that pass them on (self left out)."""
    declared: list[str] = []
    passed: list[str] = []
    kinds = inspect.Parameter
    parameters = list(inspect.signature(function).parameters.values())
    for i, p in enumerate(parameters):
        bare_star = not any(q.kind in (kinds.KEYWORD_ONLY, kinds.VAR_POSITIONAL) for q in parameters[:i])
        if p.kind is kinds.KEYWORD_ONLY and bare_star:
            declared.append("*")
        star = "*" if p.kind is kinds.VAR_POSITIONAL else "**" if p.kind is kinds.VAR_KEYWORD else ""
        text = star + p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(function, p.annotation)}"
        if p.default is not p.empty:
            text += f" = {_literal(p.default)}" if p.annotation is not p.empty else f"={_literal(p.default)}"
        declared.append(text)
        if p.kind is kinds.POSITIONAL_ONLY and (i + 1 == len(parameters) or parameters[i + 1].kind is not p.kind):
            declared.append("/")
        if i:  # after self
            passed.append(f"{p.name}={p.name}" if p.kind is kinds.KEYWORD_ONLY else star + p.name)
    return declared, passed


def _def(indent: str, keyword: str, name: str, parameters: list[str], returns: str, end: str) -> str:
    """A `def` line as ruff format writes it: one line, else the parameters on one line, else one a line."""
    tail = f"){' -> ' + returns if returns else ''}{end}"
    line = f"{indent}{keyword} {name}({', '.join(parameters)}{tail}"
    if len(line) <= LINE_LENGTH:
        return line
    inner = f"{indent}    {', '.join(parameters)}"
    if len(inner) <= LINE_LENGTH:
        return f"{indent}{keyword} {name}(\n{inner}\n{indent}{tail}"
    return f"{indent}{keyword} {name}(\n" + "".join(f"{indent}    {p},\n" for p in parameters) + f"{indent}{tail}"


def _docstring(function: Callable[..., Any], indent: str) -> str | None:
    """The function's docstring as written (indentation normalised), or None."""
    if not function.__doc__:
        return None
    lines = inspect.cleandoc(function.__doc__).replace("\\", "\\\\").replace('"""', '\\"\\"\\"').splitlines()
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""'
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in lines[1:])
    return f'{indent}"""{lines[0]}\n{body}{indent}"""'


def _return(function: Callable[..., Any]) -> str:
    annotation = inspect.signature(function).return_annotation
    return "" if annotation is inspect.Signature.empty else _annotation(function, annotation)


def _method(function: Callable[..., Any], keyword: str, returns: str, body: str | None) -> dict[str, str | None]:
    """One method: its `def` (ending in `: ...` for a bodiless protocol method without a docstring)."""
    doc = _docstring(function, "        ")
    declared, _ = _parameters(function)
    end = ": ..." if body is None and doc is None else ":"
    return {
        "definition": _def("    ", keyword, function.__name__, declared, returns, end),
        "docstring": doc,
        "body": body if body is not None else (None if doc is None else "        ..."),
    }


_DOCSTRING = re.compile(r'"""(?:.|\n)*?"""')


def _imports_for(template: str, protocols: Protocols, extra: dict[str, list[str]], **context: Any) -> str:
    body = render.environment().get_template(template).render(sources=[], imports="", **context)
    body = _DOCSTRING.sub("", body)  # imports are chosen from the code, not from what the docstrings say
    candidates = {module: list(names) for module, names in protocols.imports.items()}
    for module, names in extra.items():
        candidates[module] = list(dict.fromkeys([*candidates.get(module, []), *names]))
    return render.python_imports(body, candidates)


def render_sqlite_repositories(protocols: Protocols) -> str:
    """`pychat_db/generated/sqlite_repositories.py`: the SQLite repository classes."""
    classes = []
    all_plans = []
    for repository in protocols.repositories:
        name = repository.protocol.__name__
        plans = name.removesuffix("Repository") + "Plans"  # ThreadRepository → ThreadPlans
        all_plans.append(plans)
        methods = []
        for method in repository.methods:
            _, passed = _parameters(method.function)
            call = f"        return self._run({plans}.{method.name}({', '.join(passed)}))"
            methods.append(_method(method.function, "def", _return(method.function), call))
        classes.append(
            {"name": f"SQLite{name}", "protocol": name, "plans": plans, "repository": repository, "methods": methods}
        )
    context = {"classes": classes}
    extra: dict[str, list[str]] = {
        "typing": ["TYPE_CHECKING"],
        "pychat_db.repositories": ["protocols"],
        "pychat_db.repositories.plans": all_plans,
        "pychat_db.repositories.session": ["Session"],
        "pychat_db.repositories.steps": ["SessionRepository"],
    }
    imports = _imports_for("sqlite_repositories.py.j2", protocols, extra, **context)
    return render.render("sqlite_repositories.py.j2", [protocols.source], imports=imports, **context)


_CONTEXT_MANAGER = re.compile(r"^((?:contextlib\.)?)AbstractContextManager\[")


def _async_member(function: Callable[..., Any]) -> dict[str, str | None]:
    """A member of `Repositories` in async: a context manager an async one, any other method a coroutine."""
    returns = _return(function)
    if typing.get_origin(typing.get_type_hints(function).get("return")) is contextlib.AbstractContextManager:
        if not _CONTEXT_MANAGER.match(returns):
            raise CodegenError(f"{PROTOCOLS}: {function.__qualname__}: write its return type AbstractContextManager[…]")
        return _method(function, "def", _CONTEXT_MANAGER.sub(r"\1AbstractAsyncContextManager[", returns), None)
    return _method(function, "async def", returns, None)


def render_async_protocols(protocols: Protocols) -> str:
    """`pychat_db/generated/async_protocols.py`: the async protocols."""
    classes = []
    for repository in protocols.repositories:
        methods = [_method(m.function, "async def", _return(m.function), None) for m in repository.methods]
        classes.append({"name": f"Async{repository.protocol.__name__}", "methods": methods})
    protocol_of = {r.attribute: f"Async{r.protocol.__name__}" for r in protocols.repositories}
    members: list[dict[str, str | None]] = []
    for name, value in vars(protocols.root_protocol).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property) and name in protocol_of:
            members.append({"property": name, "returns": protocol_of[name]})
        elif inspect.isfunction(value):
            members.append({"property": None, **_async_member(value)})
    root = {"name": f"Async{protocols.root_protocol.__name__}", "members": members}
    context = {"classes": classes, "root": root}
    extra = {"contextlib": ["AbstractAsyncContextManager"], "typing": ["Protocol"]}
    imports = _imports_for("async_protocols.py.j2", protocols, extra, **context)
    return render.render("async_protocols.py.j2", [protocols.source], imports=imports, **context)


def render_repository_attributes(protocols: Protocols) -> str:
    """`pychat_db/generated/repository_attributes.py`: an owner's repository attributes, typed by the protocols."""
    attributes = [(r.attribute, r.protocol.__name__) for r in protocols.repositories]
    context = {"attributes": attributes}
    extra = {"pychat_db.generated": ["async_protocols"], "pychat_db.repositories": ["protocols"]}
    imports = _imports_for("repository_attributes.py.j2", protocols, extra, **context)
    return render.render("repository_attributes.py.j2", [protocols.source], imports=imports, **context)
