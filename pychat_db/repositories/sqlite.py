"""The repositories on SQLite: each method runs its plan (`pychat_db.repositories.plans`) on the connection.

The classes are generated from the protocols (`pychat_db.generated.sqlite_repositories`, by
`python -m codegen`): a method's signature and docstring are its protocol's, its body runs its plan. The
plans hold every method's body once (which generated queries, in which order, what a missing row or a
FOREIGN KEY failure means); `pychat_db.aio` runs the same plans on APSW's async connection.
"""

from pychat_db.generated import sqlite_repositories
from pychat_db.generated.sqlite_repositories import *  # noqa: F403

__all__ = sqlite_repositories.__all__
