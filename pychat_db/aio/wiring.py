"""Wiring a phase in async: the repositories `open_async_repositories()` returns for the configured phase.

The same phases and settings as `pychat_db.switchover.open_repositories` (`PYCHAT_DB_MODE`, ...),
over the async stores: `sqlite` is `AsyncDatabase`; `legacy` is `AsyncLegacyRepositories`;
`dual` and `shadow` wrap both in `AsyncDualWriteRepositories` (and `AsyncShadowReadRepositories`)
after the same start-up check that the two stores hold the same row counts (`check_in_sync`,
run in a worker thread on a sync connection of its own). Nothing here blocks the loop: the
legacy store is read, and the check made, in worker threads.
"""

from __future__ import annotations

from typing import IO

from pychat_db.aio.database import AsyncDatabase
from pychat_db.aio.dual import AsyncDualWriteRepositories
from pychat_db.aio.framework import running
from pychat_db.aio.legacy import AsyncLegacyRepositories
from pychat_db.aio.protocols import AsyncRepositories
from pychat_db.aio.shadow import AsyncShadowReadRepositories
from pychat_db.database import Database
from pychat_db.legacy import LegacyRepositories
from pychat_db.switchover.settings import Phase, Settings, startup_settings
from pychat_db.switchover.shadow import MismatchReporter
from pychat_db.switchover.wiring import check_in_sync

__all__ = ["open_async_repositories"]


async def open_async_repositories(settings: Settings | None = None, *, log: IO[str] | None = None) -> AsyncRepositories:
    """The async repositories wired for `settings.phase` (default: `startup_settings()`), opened.

    As `open_repositories`: legacy seeds the built-in modes when the store has none; dual
    and shadow raise OutOfSync when SQLite was not populated from the legacy store; `log`
    gets secondary-failure lines, shadow mismatches go to `settings.shadow_log`.
    """
    settings = settings if settings is not None else startup_settings()
    if settings.phase is Phase.SQLITE:
        return await AsyncDatabase(settings.db_path).open()
    framework = running()
    legacy = await AsyncLegacyRepositories.open(
        settings.legacy_dir, autosave=settings.legacy_autosave, seed_modes=settings.phase is Phase.LEGACY
    )
    if settings.phase is Phase.LEGACY:
        return legacy

    def check(store: LegacyRepositories) -> None:
        with Database(settings.db_path, seed_modes=False) as db:
            check_in_sync(store, db, settings.legacy_dir)

    try:
        await framework.in_thread(check, legacy.legacy)
        db = await AsyncDatabase(settings.db_path, seed_modes=False).open()
    except BaseException:
        await legacy.close()
        raise
    dual = AsyncDualWriteRepositories(legacy, db, on_failure=settings.on_secondary_failure, log=log)
    await dual.modes.seed_builtins()
    if settings.phase is Phase.DUAL:
        return dual
    reporter = MismatchReporter(path=settings.shadow_log)
    return AsyncShadowReadRepositories(dual, db, reporter, sample_rate=settings.shadow_sample_rate)
