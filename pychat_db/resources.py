"""Where the SQL sources of truth live: `schema/` and `queries/`.

A built wheel carries the repository's top-level `schema/` and `queries/` inside the package, as
`pychat_db/_sql/schema` and `pychat_db/_sql/queries` (the build copies them in: see `pyproject.toml`,
`[tool.hatch.build.targets.wheel.force-include]`), and they are found through `importlib.resources`.
In a checkout (and an editable install) there is no `_sql/`: the repository's own folders are read, so
there is never a second copy to keep in step.
"""

from importlib.resources import files
from pathlib import Path

from pychat_db.errors import PychatDbError


def _sql_root() -> Path:
    package = files("pychat_db")
    if not isinstance(package, Path):  # e.g. a zip import: aiosql and SQLite need real files
        raise PychatDbError(f"pychat_db is installed where its SQL files are not plain files ({package})")
    bundled = package / "_sql"
    if (bundled / "schema").is_dir():
        return bundled
    checkout = package.parent
    if (checkout / "schema").is_dir() and (checkout / "queries").is_dir():
        return checkout
    raise PychatDbError(f"pychat_db's SQL files are missing: neither {bundled} nor {checkout}/schema exists")


_ROOT = _sql_root()

SCHEMA_DIR = _ROOT / "schema"
QUERIES_DIR = _ROOT / "queries"
PRAGMAS_FILE = SCHEMA_DIR / "pragmas.sql"
