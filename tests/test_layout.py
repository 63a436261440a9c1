"""The library's rooms keep to themselves: no module imports another's private names, nothing probes a
source's capabilities with getattr."""

from __future__ import annotations

import ast
import re

from tests.support.commands import ROOT

LIBRARY = ROOT / "pychat_db"


def _modules() -> list[tuple[str, str]]:
    return [
        (path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(LIBRARY.rglob("*.py"))
        if "generated" not in path.parts
    ]


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for name, text in _modules():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pychat_db"):
                found += [f"{name}:{node.lineno}: {a.name}" for a in node.names if re.match(r"_[^_]", a.name)]
    assert len(_modules()) > 50 and found == []


def test_source_capabilities_are_declared_not_probed() -> None:
    probe = re.compile(r"getattr\([^)]*\"(chunks|checked_chunks|reader|second_process)\"")
    assert [name for name, text in _modules() if probe.search(text)] == []
