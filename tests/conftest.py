"""Standard fixtures shared by every test module.

Area-specific helpers live in `tests/support/` (importable as `tests.support.*`)
so that this file stays small and owned by no single area.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from pychat_db.connection import connect
from pychat_db.migrations import migrate
from tests.support.commands import run_module
from tests.support.switchover import copy_sides, populate


@pytest.fixture
def memory_db() -> Iterator[apsw.Connection]:
    """An in-memory database at the head schema version."""
    conn = connect(":memory:")
    migrate(conn)
    yield conn
    conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a database file in tmp_path at the head schema version (closed)."""
    path = tmp_path / "chat.db"
    conn = connect(path)
    migrate(conn)
    conn.close()
    return path


@pytest.fixture
def file_db(db_path: Path) -> Iterator[apsw.Connection]:
    """An open connection to `db_path`."""
    conn = connect(db_path)
    yield conn
    conn.close()


@pytest.fixture
def run() -> object:
    """`run(module, *args)` → CompletedProcess of `python -m module args...`."""
    return run_module


@pytest.fixture(scope="session")
def switchover_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both switch-over sides populated from examples/export once (`tests.support.switchover.populate`)."""
    return populate(tmp_path_factory.mktemp("switchover_template"))


@pytest.fixture
def sides(switchover_template: Path, tmp_path: Path) -> Path:
    """The test's own copy of both switch-over sides: `legacy/` and `chat.db` under tmp_path."""
    return copy_sides(switchover_template, tmp_path)
