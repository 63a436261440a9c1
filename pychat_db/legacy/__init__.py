"""The old store's side of the switch-over: an in-memory document store with the Isar model's
semantics, persisted as an export directory, behind the same repository protocols as SQLite.

    repos = LegacyRepositories.open("legacy_export")     # LegacyStore.open + the repositories
    repos.threads.create(Thread(name="Hi", created_at=datetime.now(UTC)))
    repos.close()                                         # saves the export directory atomically

See `pychat_db.legacy.store` (objects, links, backlinks, Isar deletes, persistence) and
`pychat_db.legacy.repositories` (the protocols, and how deletes mirror SQLite's cascades).
"""

from pychat_db.legacy import repositories
from pychat_db.legacy.repositories import *  # noqa: F403 (its public names: repositories.__all__)
from pychat_db.legacy.store import LegacyStore, LegacyStoreError, ToMany, ToOne

__all__ = ["LegacyStore", "LegacyStoreError", "ToMany", "ToOne"]
__all__ += repositories.__all__
