"""Repositories: the protocols the app codes against, and their SQLite implementations."""

from pychat_db.repositories.protocols import (
    ConfigurationRepository,
    MessageRepository,
    ModeOutputRepository,
    ModeRepository,
    TagRepository,
    ThreadRepository,
)
from pychat_db.repositories.sqlite import (
    SQLiteConfigurationRepository,
    SQLiteMessageRepository,
    SQLiteModeOutputRepository,
    SQLiteModeRepository,
    SQLiteTagRepository,
    SQLiteThreadRepository,
)

__all__ = [
    "ConfigurationRepository",
    "MessageRepository",
    "ModeOutputRepository",
    "ModeRepository",
    "SQLiteConfigurationRepository",
    "SQLiteMessageRepository",
    "SQLiteModeOutputRepository",
    "SQLiteModeRepository",
    "SQLiteTagRepository",
    "SQLiteThreadRepository",
    "TagRepository",
    "ThreadRepository",
]
