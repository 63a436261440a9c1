"""Where the SQL sources of truth live: `schema/` and `queries/`.

In a checkout (and an editable install) they are the repository's top-level
folders; a built wheel carries them inside the package as `pychat_db/_sql/`.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_BUNDLED = _PACKAGE / "_sql"
_ROOT = _BUNDLED if (_BUNDLED / "schema").is_dir() else _PACKAGE.parent

SCHEMA_DIR = _ROOT / "schema"
QUERIES_DIR = _ROOT / "queries"
PRAGMAS_FILE = SCHEMA_DIR / "pragmas.sql"
