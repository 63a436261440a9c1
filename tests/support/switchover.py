"""The two sides of a switch-over, populated from examples/export, for the sync and the async switch-over tests.

`populate(root)` writes `legacy/` (the legacy store's own save) and `chat.db` (the real
importer) once; `copy_sides` gives a test its own copy (the `sides` fixture in conftest.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pychat_db.database import Database
from pychat_db.exchange.contract import THREADS
from pychat_db.exchange.loader import import_source
from pychat_db.exchange.reader import ExportDirectory
from pychat_db.legacy import LegacyStore
from tests.support.commands import ROOT

EXAMPLE = ROOT / "examples" / "export"


def populate(root: Path) -> Path:
    """Both sides from examples/export under `root`: `legacy/` and `chat.db`."""
    LegacyStore.load(EXAMPLE).save(root / "legacy")
    import_source(ExportDirectory(EXAMPLE), root / "chat.db")
    return root


def copy_sides(template: Path, into: Path) -> Path:
    shutil.copytree(template / "legacy", into / "legacy")
    shutil.copyfile(template / "chat.db", into / "chat.db")
    return into


def env(root: Path, **more: str) -> dict[str, str]:
    """The switch-over settings naming the sides under `root`, and `more`."""
    return {"PYCHAT_DB_PATH": str(root / "chat.db"), "PYCHAT_DB_LEGACY_DIR": str(root / "legacy")} | more


def thread_count(root: Path) -> tuple[int, int]:
    """Threads in (the saved legacy store, the SQLite file)."""
    with Database(root / "chat.db", seed_modes=False) as db:
        in_db = len(db.threads.list())
    return LegacyStore.load(root / "legacy").count(THREADS), in_db
