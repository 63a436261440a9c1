"""The README stays true: its ER diagram is the generated one, its commands exist and have --help."""

from __future__ import annotations

import re

import pytest

from tests.support.commands import ROOT, run_module

MERMAID = re.compile(r"```mermaid\n.*?```", re.DOTALL)


def test_readme_er_diagram_is_the_generated_one() -> None:
    readme = MERMAID.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    generated = MERMAID.findall((ROOT / "docs" / "schema.md").read_text(encoding="utf-8"))
    assert readme == generated, "copy the mermaid block of docs/schema.md into README.md"


COMMANDS = sorted(set(re.findall(r"python -m ((?:tools|pychat_db)\.[a-z_]+)", (ROOT / "README.md").read_text())))


@pytest.mark.parametrize("module", [m for m in COMMANDS if m != "tools.bench"])
def test_every_command_in_the_readme_has_help(module: str) -> None:
    result = run_module(module, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: python -m {module}" in result.stdout


def test_readme_names_every_command() -> None:
    assert {"tools.import", "tools.export", "tools.verify", "tools.export_isar", "tools.generate"} <= set(COMMANDS)
