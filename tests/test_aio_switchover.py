"""The async switch-over: each phase wired by the same setting, shadow reads compared and reported, as in sync."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import apsw
import pytest
import trio

from pychat_db.aio import AsyncDatabase
from pychat_db.aio.dual import AsyncDualWriteRepositories
from pychat_db.aio.legacy import AsyncLegacyRepositories
from pychat_db.aio.shadow import AsyncShadowReadRepositories
from pychat_db.aio.wiring import open_async_repositories
from pychat_db.errors import NotFound
from pychat_db.exchange.contract import THREADS
from pychat_db.legacy import LegacyRepositories, LegacyStore
from pychat_db.models import Thread
from pychat_db.switchover import MismatchReporter, OutOfSync, Settings
from tests.support.aio_scenario import at
from tests.support.switchover import env, thread_count

FREE_ID = 4_000_000


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
@pytest.mark.parametrize(
    ("phase", "kind", "landed"),
    [
        ("legacy", AsyncLegacyRepositories, (1, 0)),
        ("dual", AsyncDualWriteRepositories, (1, 1)),
        ("shadow", AsyncShadowReadRepositories, (1, 1)),
        ("sqlite", AsyncDatabase, (0, 1)),
    ],
)
def test_each_phase_is_wired_by_the_setting(
    sides: Path, phase: str, kind: type, landed: tuple[int, int], framework: str
) -> None:
    before = thread_count(sides)
    log = sides / "shadow.ndjson"
    settings = Settings.from_env(env(sides, PYCHAT_DB_MODE=phase, PYCHAT_DB_SHADOW_LOG=str(log)))

    async def main() -> None:
        repos = await open_async_repositories(settings)
        try:
            assert isinstance(repos, kind)
            if isinstance(repos, AsyncShadowReadRepositories):
                assert isinstance(repos.primary, AsyncDualWriteRepositories)
                assert repos.shadow is repos.primary.secondary
            if isinstance(repos, AsyncDualWriteRepositories):
                assert isinstance(repos.primary, AsyncLegacyRepositories)
                assert isinstance(repos.secondary, AsyncDatabase)
            created = await repos.threads.create(Thread(name=f"made in {phase}", created_at=at(0)))
            assert await repos.threads.get(created.id or 0) == created
            if isinstance(repos, AsyncShadowReadRepositories):
                assert (repos.reporter.compared, repos.reporter.mismatches) == (1, 0)
        finally:
            await repos.close()

    asyncio.run(main()) if framework == "asyncio" else trio.run(main)
    after = thread_count(sides)
    assert (after[0] - before[0], after[1] - before[1]) == landed
    assert not log.exists()  # nothing differed, so no mismatch line was written


def test_dual_writes_refuse_stores_that_were_not_populated_alike(sides: Path) -> None:
    (sides / "chat.db").unlink()
    expected = (
        r"^configuration: 1 in the legacy store .*, 0 in .*chat.db; populate SQLite first: python -m tools\.import"
    )
    with pytest.raises(OutOfSync, match=expected):
        asyncio.run(open_async_repositories(Settings.from_env(env(sides, PYCHAT_DB_MODE="dual"))))


def test_a_corrupted_shadow_value_is_reported_once_and_a_failing_shadow_never_breaks_a_read(sides: Path) -> None:
    async def main() -> None:
        legacy = await AsyncLegacyRepositories.open(sides / "legacy")
        db = await AsyncDatabase(sides / "chat.db", seed_modes=False).open()
        out = io.StringIO()
        shadow = AsyncShadowReadRepositories(legacy, db, MismatchReporter(stream=out))
        thread = (await shadow.threads.list(limit=1))[0]
        assert thread.id is not None
        page = await shadow.messages.list(thread.id)
        assert shadow.reporter.compared == 2 and shadow.reporter.mismatches == 0
        conn = apsw.Connection(str(sides / "chat.db"))
        conn.execute("UPDATE messages SET text = 'CORRUPT' WHERE id = ?", (page[0].id,))
        conn.close()
        assert (await shadow.messages.get(page[0].id or 0)).text == page[0].text  # answered by the primary
        assert await shadow.messages.list(thread.id) == page
        assert (shadow.reporter.mismatches, shadow.reporter.occurrences, shadow.reporter.compared) == (1, 2, 4)
        (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
        assert line == {
            "entity": "messages",
            "id": page[0].id,
            "field": "text",
            "primary": page[0].text,
            "shadow": "CORRUPT",
            "read": "messages.get",
        }
        async with shadow.transaction():  # the task's reads in a block are not compared
            await shadow.messages.get(page[0].id or 0)
        assert shadow.reporter.compared == 4
        await db.close()  # the shadow now fails: the primary's answers still reach the caller
        assert await shadow.threads.list(limit=2) == await legacy.threads.list(limit=2)
        with pytest.raises(NotFound):
            await shadow.threads.get(FREE_ID)
        errors = [json.loads(x) for x in out.getvalue().splitlines()][1:]
        assert [(e["entity"], e["field"], e["read"]) for e in errors] == [("threads", "error", "threads.list")]
        await shadow.close()

    asyncio.run(main())


def test_the_legacy_phase_saves_with_autosave(sides: Path) -> None:
    settings = Settings.from_env(env(sides, PYCHAT_DB_MODE="legacy", PYCHAT_DB_LEGACY_AUTOSAVE="1"))

    async def main() -> None:
        repos = await open_async_repositories(settings)
        await repos.threads.create(Thread(id=FREE_ID, name="saved at once", created_at=at(0)))
        assert LegacyStore.load(sides / "legacy").get(THREADS, FREE_ID) is not None  # before close
        await repos.close()

    asyncio.run(main())
    assert LegacyRepositories.open(str(sides / "legacy")).threads.get(FREE_ID).name == "saved at once"
