"""The built wheel, installed into a fresh virtual environment, used from outside the repository.

What a user gets from `pip install pychat_db-*.whl`: the library finds its SQL through
`importlib.resources`, the `pychat-db` command works, and nothing but `pychat_db` lands in
site-packages. The environment's dependencies come from the runtime lock (`requirements/runtime.txt`),
hash-checked, as `make install` does for development.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "export"


def _run(
    *args: str | os.PathLike[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.fspath(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=900, check=False, env=env
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from this checkout with the locked build backend (no download)."""
    out = tmp_path_factory.mktemp("dist")
    done = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, ROOT, cwd=out)
    assert done.returncode == 0, done.stderr
    [built] = out.glob("pychat_db-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the wheel and the locked runtime dependencies; yields its bin directory."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    pip = [bin_dir / "python", "-m", "pip", "install", "--quiet"]
    deps = _run(*pip, "--require-hashes", "--no-deps", "-r", ROOT / "requirements" / "runtime.txt", cwd=env_dir)
    assert deps.returncode == 0, deps.stderr
    own = _run(*pip, "--no-deps", wheel, cwd=env_dir)
    assert own.returncode == 0, own.stderr
    yield bin_dir


def test_the_wheel_holds_only_pychat_db_and_its_sql(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"pychat_db"}
    for source in ("schema", "queries"):  # carried in from the repo's single source, file for file
        expected = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / source).rglob("*") if p.is_file())
        assert sorted(
            n.removeprefix("pychat_db/_sql/") for n in names if n.startswith(f"pychat_db/_sql/{source}/")
        ) == (expected)
    assert "pychat_db/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("codegen/", "tools/", "tests/")) for n in names)
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in metadata
    runtime = {
        m[0].lower()
        for m in re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)(.*)$", metadata, re.M)
        if "extra ==" not in m[1]
    }
    assert runtime == {"aiosql", "apsw", "clibmdbx", "msgspec", "rich"}  # no jinja2: codegen is a development tool


def test_pychat_db_command_from_outside_the_repo(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    cli = installed / "pychat-db"
    imported = _run(cli, "import", SAMPLE, "--db", "chat.db", "--quiet", "--report", "import.json", cwd=work)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[-1] == f"imported {SAMPLE} into chat.db"
    verified = _run(cli, "verify", SAMPLE, "--db", "chat.db", "--samples", "20", "--quiet", cwd=work)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[-1].startswith("database matches the export: 5,307 rows")
    status = _run(cli, "migrate", "--db", "chat.db", "status", cwd=work)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("database: chat.db\nversion:  ")
    exported = _run(cli, "export", "--db", "chat.db", "--out", "back", "--quiet", cwd=work)
    assert exported.returncode == 0, exported.stderr
    assert (work / "back" / "manifest.json").is_file()
    usage = _run(cli, "nonsense", cwd=work)
    assert usage.returncode == 2 and "invalid choice: 'nonsense'" in usage.stderr


def test_readme_library_snippet_runs_against_the_wheel(installed: Path, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using the library", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "snippet.py").write_text(snippet + "\nprint(len(page), len(chat))\n", encoding="utf-8")
    done = _run(installed / "python", "snippet.py", cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 1\n"
    assert (work / "chat.db").stat().st_mode & 0o777 == 0o600
    where = _run(installed / "python", "-c", "import pychat_db.resources as r; print(r.SCHEMA_DIR)", cwd=work)
    assert where.stdout.strip().endswith("site-packages/pychat_db/_sql/schema")


def test_readme_asyncio_snippet_runs_against_the_wheel(installed: Path, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using the library from asyncio", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "snippet.py").write_text(snippet, encoding="utf-8")
    done = _run(installed / "python", "snippet.py", cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 1\n"
    assert (work / "chat.db").stat().st_mode & 0o777 == 0o600
