"""Repositories: the protocols the app codes against, and their SQLite implementations."""

from pychat_db.repositories import protocols, sqlite
from pychat_db.repositories.protocols import *  # noqa: F403
from pychat_db.repositories.sqlite import *  # noqa: F403

__all__ = [*protocols.__all__, *sqlite.__all__]
