"""Random operation sequences through `DualWriteRepositories(legacy, SQLite)`: the two sides never diverge.

The operations are those of the legacy-vs-SQLite machine (tests/test_legacy_stateful.py),
each run once, through the dual-write layer (legacy primary: it assigns the ids, SQLite
gets them). After every step both sides hold exactly the same rows, and no secondary
write failed or waits in a queue. Failing transactions must leave neither side changed.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import initialize, invariant

from pychat_db.database import Database
from pychat_db.switchover import DualWriteRepositories
from tests.test_legacy_stateful import Outcome, SameAnswers, outcome


class ThroughDualWrites(SameAnswers):
    def __init__(self) -> None:
        super().__init__()
        self.sql.close()
        self.sql = Database(":memory:", seed_modes=False)
        self.log = io.StringIO()
        self.dual = DualWriteRepositories(self.legacy, self.sql, on_failure="raise", log=self.log)

    @initialize()
    def seeded(self) -> None:
        seeded = self.dual.modes.seed_builtins()
        assert len(seeded) == 5 and self.sql.modes.list() == self.legacy.modes.list()
        self.populate()

    def both(self, call: Callable[[Any], Any]) -> Outcome:
        return outcome(lambda: call(self.dual))

    def create(self, table: str, obj: Any) -> Outcome:
        return self.both(lambda r: getattr(r, table).create(obj))

    @invariant()
    def never_diverged(self) -> None:
        assert self.dual.failures == [] and self.dual.pending == 0 and not self.dual.diverged, self.log.getvalue()


ThroughDualWrites.TestCase.settings = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_STATEFUL_EXAMPLES", "40")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDualWrites = ThroughDualWrites.TestCase
