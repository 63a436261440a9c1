"""Running the project's commands as real subprocesses, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_module(module: str, *args: str | os.PathLike[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m MODULE ARGS...` as a real subprocess; capture text output."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(os.fspath, args)],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
