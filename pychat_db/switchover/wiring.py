"""Wiring a phase: the repositories `open_repositories()` returns for the configured phase."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from pychat_db.database import Database
from pychat_db.errors import PychatDbError
from pychat_db.exchange.contract import COLLECTIONS
from pychat_db.legacy import LegacyRepositories
from pychat_db.repositories.protocols import Repositories
from pychat_db.switchover.dual import DualWriteRepositories
from pychat_db.switchover.settings import Phase, Settings, startup_settings
from pychat_db.switchover.shadow import MismatchReporter, ShadowReadRepositories

__all__ = ["OutOfSync", "check_in_sync", "open_repositories"]


class OutOfSync(PychatDbError):
    """The two stores do not hold the same data, so dual writes would start from diverged sides."""


def _sqlite_counts(db: Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in COLLECTIONS:
        (count,) = db.connection.execute(f"SELECT count(*) FROM {c.table}").fetchall()[0]
        assert isinstance(count, int)
        counts[c.name] = count
    return counts


def check_in_sync(legacy: LegacyRepositories, db: Database, legacy_dir: str) -> None:
    """Refuse to start dual writes over stores that differ in row counts (cheap; tools.verify proves content).

    Raises OutOfSync naming the first collection that differs and the commands that fix it.
    """
    counts = _sqlite_counts(db)
    for collection in COLLECTIONS:
        mine, theirs = legacy.store.count(collection), counts[collection.name]
        if mine != theirs:
            raise OutOfSync(
                f"{collection.name}: {mine} in the legacy store {legacy_dir}, {theirs} in {db.path}; "
                f"populate SQLite first: python -m tools.import {legacy_dir} --db {db.path} --force, "
                f"then python -m tools.verify {legacy_dir} --db {db.path}"
            )


def open_repositories(settings: Settings | None = None, *, log: IO[str] | None = None) -> Repositories:
    """The repositories wired for `settings.phase` (default: `startup_settings()`, the environment at start-up).

    legacy: the legacy store (built-in modes seeded when it has none, as `Database` does);
    sqlite: `Database(db_path)`; dual and shadow: both, after `check_in_sync` (OutOfSync
    when SQLite was not populated from the legacy store). `log` gets secondary-failure
    lines (default stderr); shadow mismatches go to `settings.shadow_log` (default stderr).
    """
    settings = settings if settings is not None else startup_settings()
    if settings.phase is Phase.SQLITE:
        return Database(settings.db_path)
    legacy = LegacyRepositories.open(settings.legacy_dir, autosave=settings.legacy_autosave)
    if settings.phase is Phase.LEGACY:
        legacy.modes.seed_builtins()
        return legacy
    try:
        db = Database(settings.db_path, seed_modes=False)
    except BaseException:
        legacy.close()
        raise
    try:
        check_in_sync(legacy, db, settings.legacy_dir)
    except BaseException:
        db.close()
        raise
    dual = DualWriteRepositories(legacy, db, on_failure=settings.on_secondary_failure, log=log)
    dual.modes.seed_builtins()
    if settings.phase is Phase.DUAL:
        return dual
    reporter = MismatchReporter(path=settings.shadow_log)
    return ShadowReadRepositories(dual, db, reporter, sample_rate=settings.shadow_sample_rate)


if TYPE_CHECKING:  # mypy checks that every wiring offers the Repositories protocol; never runs

    def _conforms(db: Database, legacy: LegacyRepositories) -> None:
        _db: Repositories = db
        _legacy: Repositories = legacy
        _dual: Repositories = DualWriteRepositories(legacy, db)
        _shadow: Repositories = ShadowReadRepositories(_dual, db)
