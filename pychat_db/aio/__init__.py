"""pychat_db for asyncio, trio and anyio programs: `AsyncDatabase` on APSW's own async connection.

* `database`: `AsyncDatabase` (opening rules, readers and the writer, `transaction()`);
* `protocols`: the async repository protocols, generated from the sync ones;
* `repositories`: the async repository classes, derived from the method description
  (`pychat_db.repositories.methods`) and the method plans (`pychat_db.repositories.plans`);
* `session`: one async connection's transactions and plan runner (a method in one worker call);
* the switch-over in async, built from the same method description and settings as
  `pychat_db.switchover`: `legacy` (`AsyncLegacyRepositories`, the legacy store behind the async
  protocols, its I/O in a worker thread), `dual` (`AsyncDualWriteRepositories`), `shadow`
  (`AsyncShadowReadRepositories`) and `wiring` (`open_async_repositories()`: the phase by setting);
* `framework`: the lock, semaphore, shielded await and worker thread of the running framework.
"""

from pychat_db.aio import protocols
from pychat_db.aio.database import AsyncDatabase, open_async
from pychat_db.aio.protocols import *  # noqa: F403

__all__ = ["AsyncDatabase", "open_async", *protocols.__all__]
