"""Switching the app from the legacy store to SQLite in phases, by configuration.

One setting picks the phase (`PYCHAT_DB_MODE`, or `Settings(phase=...)` in code), read
once at start-up; `open_repositories()` returns the repositories wired for it, with the
same attributes as `Database` (`configuration`, `threads`, `messages`, `modes`,
`mode_outputs`, `tags`, `transaction()`, `close()`):

| phase    | writes                           | reads answered by | compared with |
|----------|----------------------------------|-------------------|---------------|
| `legacy` | legacy store                     | legacy            | -             |
| `dual`   | legacy, then SQLite (same ids)   | legacy            | -             |
| `shadow` | legacy, then SQLite (same ids)   | legacy            | SQLite        |
| `sqlite` | SQLite                           | SQLite            | -             |

The legacy store stays the source of truth (it assigns the ids) until the cut-over to
`sqlite`; `shadow` proves SQLite's answers on real traffic before the app relies on them.

One module per job:

* `settings`: `Settings`, the phase and its options, `startup_settings()`;
* `dual`: `DualWriteRepositories`, writes to both sides (raise or queue + drain);
* `shadow`: `ShadowReadRepositories` and `MismatchReporter`, reads compared;
* `wiring`: `open_repositories()` and `check_in_sync()`;
* `forwarding`: the per-repository forwarder classes of `dual` and `shadow`, generated
  from the method description in `pychat_db.repositories.methods` (a method added to
  a protocol with its `@reads`/`@writes` mark needs no edit here).
"""

from pychat_db.repositories.protocols import Repositories
from pychat_db.switchover.dual import DualWriteRepositories, SecondaryFailure, SecondaryWriteError
from pychat_db.switchover.settings import (
    ENV_VARS,
    OnSecondaryFailure,
    Phase,
    Settings,
    SettingsError,
    startup_settings,
)
from pychat_db.switchover.shadow import MismatchReporter, ShadowReadRepositories
from pychat_db.switchover.wiring import OutOfSync, check_in_sync, open_repositories

__all__ = [
    "ENV_VARS",
    "DualWriteRepositories",
    "MismatchReporter",
    "OnSecondaryFailure",
    "OutOfSync",
    "Phase",
    "Repositories",
    "SecondaryFailure",
    "SecondaryWriteError",
    "Settings",
    "SettingsError",
    "ShadowReadRepositories",
    "check_in_sync",
    "open_repositories",
    "startup_settings",
]
